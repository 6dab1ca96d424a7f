package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Completion on the card (issue 14 item 1): the guest's daemon must run in
// lease mode on the card's file system (a capture is complete once no
// process holds it open for writing, not after the settle window), and
// the time from the camera's close to the capture queued is measured on
// the guest's clock.
//
// The camera writes completionShots captures of 300 KiB, 0.5 s apart,
// each line "CLOSED name seconds" printed right after its writer exited
// (BusyBox ash's EPOCHREALTIME where it has one, else date +%s.%N: then
// the figure is short by the start of one date process), and one capture
// written in two halves 1.5 s apart with the file held open (longer than
// the 1 s settle window: the settle window alone would queue the half).
// The daemon's "queued" log lines on the console carry its clock.

const completionShots = 10

// queuedLine matches the daemon's log line for a capture queued.
var queuedLine = regexp.MustCompile(`time=(\S+) level=DEBUG msg=queued .*file=100TEST/(\S+) id=\S+ size=(\d+)`)

// completionStep checks the mode in the guest's status and measures close
// to queued.
func (t *cardTest) completionStep() error {
	before := t.snapshot()
	dir := t.mnt + "/DCIM/100TEST"
	mark := t.g.Mark()
	stamp := `${EPOCHREALTIME:-$(date +%s.%N)}`
	cmd := fmt.Sprintf(`d=%s; mkdir -p $d; i=1; while [ $i -le %d ]; do n=LC_$(printf %%04d $i).JPG; `+
		`dd if=/dev/urandom of=$d/$n bs=1024 count=300 2>/dev/null; echo "CLOSED $n %s"; `+
		`echo "SYNCED $n $(sha256sum <$d/$n | cut -d' ' -f1)"; usleep 500000; i=$((i+1)); done; `+
		`{ dd if=/dev/urandom bs=1024 count=150 2>/dev/null; usleep 1500000; dd if=/dev/urandom bs=1024 count=150 2>/dev/null; } >$d/LP_0001.JPG; `+
		`echo "CLOSED LP_0001.JPG %s"; echo "SYNCED LP_0001.JPG $(sha256sum <$d/LP_0001.JPG | cut -d' ' -f1)"; sleep 2`,
		dir, completionShots, stamp, stamp)
	if _, code, err := t.g.Run(cmd, 120*time.Second); err != nil {
		return fmt.Errorf("writing the completion captures: %w", err)
	} else if code != 0 {
		return fmt.Errorf("writing the completion captures: exit %d", code)
	}
	lines := t.g.Lines(mark)
	got := map[string]string{}
	synced(lines, got)
	var names []string
	for n, sum := range got {
		t.want[n] = sum
		names = append(names, n)
	}
	sort.Strings(names)
	t.checkMode()
	t.closeToQueued(lines)
	t.verify("completion (lease mode)", before, names, nil)
	return nil
}

// checkMode asks the guest's daemon which completion mode it runs in.
func (t *cardTest) checkMode() {
	out, code, err := t.g.Run(`camftpd status -json; echo`, 30*time.Second)
	if err != nil || code != 0 {
		t.fails = append(t.fails, fmt.Sprintf("camftpd status -json in the guest: exit %d %v", code, err))
		return
	}
	var st struct {
		Completion struct{ Mode, Why string } `json:"completion"`
	}
	// The JSON is indented over many console lines.
	all := strings.Join(out, "\n")
	i, j := strings.Index(all, "{"), strings.LastIndex(all, "}")
	found := i >= 0 && j > i && json.Unmarshal([]byte(all[i:j+1]), &st) == nil
	switch {
	case !found:
		t.fails = append(t.fails, "no status JSON from camftpd status -json in the guest")
	case st.Completion.Mode != "lease":
		t.fails = append(t.fails, fmt.Sprintf("completion mode on the %s card is %q (%s), want lease", t.fs, st.Completion.Mode, st.Completion.Why))
	default:
		t.figures = append(t.figures, fmt.Sprintf("completion on %s: %s (%s)", t.fs, st.Completion.Mode, st.Completion.Why))
	}
}

// closeToQueued reads the close and queued times of the completion
// captures from the console and records the figures; a half of the paused
// capture queued is a failure.
func (t *cardTest) closeToQueued(lines []string) {
	closed, queued := map[string]float64{}, map[string]float64{}
	for _, l := range lines {
		if i := strings.Index(l, "CLOSED "); i >= 0 {
			if f := strings.Fields(l[i:]); len(f) == 3 {
				if s, err := strconv.ParseFloat(strings.Replace(f[2], ",", ".", 1), 64); err == nil {
					closed[f[1]] = s
				}
			}
		}
		m := queuedLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if m[2] == "LP_0001.JPG" && m[3] != strconv.Itoa(300<<10) {
			t.fails = append(t.fails, "the capture held open during its pause was queued at "+m[3]+" bytes, before its writer closed it")
		}
		if at, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
			if _, dup := queued[m[2]]; !dup {
				queued[m[2]] = float64(at.UnixNano()) / 1e9
			}
		}
	}
	var ms []float64
	var missing []string
	for n, c := range closed {
		q, ok := queued[n]
		if !ok {
			missing = append(missing, n)
			continue
		}
		ms = append(ms, (q-c)*1000)
	}
	if len(missing) > 0 || len(ms) == 0 {
		sort.Strings(missing)
		t.fails = append(t.fails, fmt.Sprintf("no queued log line for %d of %d completion captures: %s", len(missing), len(closed), short(missing, 6)))
		return
	}
	sort.Float64s(ms)
	t.figures = append(t.figures, fmt.Sprintf("close->queued in the guest (%s, %d captures): p50 %.0f ms, max %.0f ms (settle window 1 s)",
		t.fs, len(ms), ms[len(ms)/2], ms[len(ms)-1]))
}
