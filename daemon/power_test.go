package daemon

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/queue"
)

// fakeBattery is a power_supply folder on the host, as sysfs shows one.
type fakeBattery string

func newFakeBattery(t *testing.T, capacity, status string) fakeBattery {
	t.Helper()
	b := fakeBattery(filepath.Join(t.TempDir(), "battery"))
	if err := os.Mkdir(string(b), 0o755); err != nil {
		t.Fatal(err)
	}
	b.set(t, capacity, status)
	return b
}

// set writes the values ("" leaves a file as it is), each by a rename so
// that a reader never sees half of one.
func (b fakeBattery) set(t *testing.T, capacity, status string) {
	t.Helper()
	for name, v := range map[string]string{"capacity": capacity, "status": status} {
		if v == "" {
			continue
		}
		tmp := filepath.Join(string(b), "."+name)
		if err := os.WriteFile(tmp, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(string(b), name)); err != nil {
			t.Fatal(err)
		}
	}
}

func doneFiles(t *testing.T, q *queue.Queue) []string {
	t.Helper()
	items, err := q.List(queue.Done)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, it := range items {
		files = append(files, it.Capture.Rel)
	}
	return files
}

// TestBatteryLowSendsOnlyProtected: a fake sysfs battery at 12 %,
// discharging, below battery_low 15 % with battery_low_send = "protected":
// only the protected shot is STORed, the status says why the others wait;
// once the battery charges (read again on its period) the rest goes. A
// garbled capacity file is a one-line error in the status, and the
// policy is off meanwhile.
func TestBatteryLowSendsOnlyProtected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bat := newFakeBattery(t, "12", "Discharging")
	e.extra = "power_supply = \"" + string(bat) + "\"\nbattery_low = 15\nbattery_low_send = \"protected\"\nslow_link = \"off\""
	cfg := e.writeConfig("100ms", 2)
	d := New(cfg, testLogger(t))
	d.gate.every = 100 * time.Millisecond
	runDaemon(t, d)

	writeCapture(t, filepath.Join(e.media, "100CAM/DSC00001.JPG"), 80<<10, 1)
	writeCapture(t, filepath.Join(e.media, "100CAM/MOV00002.MP4"), 300<<10, 2)
	pro := filepath.Join(e.media, "100CAM/PRO00003.JPG")
	writeCapture(t, pro, 70<<10, 3)
	if err := os.Chmod(pro, 0o444); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the protected shot sent", func() bool { return counts(t, d.Queue()).Done == 1 })
	waitFor(t, 5*time.Second, "the other two queued", func() bool { return counts(t, d.Queue()).Pending == 2 })
	time.Sleep(within(500 * time.Millisecond)) // a quiet window: nothing else is STORed
	if got := doneFiles(t, d.Queue()); len(got) != 1 || got[0] != "100CAM/PRO00003.JPG" || stors(e) != 1 {
		t.Fatalf("done %v, %d STORs: want only the protected shot", got, stors(e))
	}
	st := d.Status()
	const why = "battery 12 % (discharging) is below battery_low 15 %: only protected shots are sent"
	if st.Power.Waiting != why || st.Power.Battery != "12 % (discharging)" {
		t.Fatalf("status power %+v, want waiting %q", st.Power, why)
	}
	var out bytes.Buffer
	printStatus(&out, st)
	if !strings.Contains(out.String(), "waiting:    "+why) {
		t.Fatalf("status CLI does not say why:\n%s", out.String())
	}

	start := time.Now()
	bat.set(t, "", "Charging")
	waitFor(t, 5*time.Second, "the rest sent once charging", func() bool { return counts(t, d.Queue()).Done == 3 })
	t.Logf("charging to all sent: %v", time.Since(start))
	if w := d.Status().Power.Waiting; w != "" {
		t.Fatalf("status still says %q", w)
	}

	bat.set(t, "1x2", "Discharging")
	waitFor(t, 5*time.Second, "the garbled capacity in the status", func() bool {
		return strings.Contains(d.Status().Power.BatteryErr, `capacity holds "1x2", not a percentage from 0 to 100`)
	})
	writeCapture(t, filepath.Join(e.media, "100CAM/DSC00004.JPG"), 60<<10, 4)
	waitFor(t, 10*time.Second, "a shot sent while the battery cannot be read", func() bool { return counts(t, d.Queue()).Done == 4 })
	verifyArrived(t, e.media, e.root)
}
