package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// burst writes n captures at rate shots per second like a camera: a new
// DCIM/1xxTEST folder every 100 shots, JPEG and RAW alternating, sizes 20-200 KB.
func burst(t *testing.T, media string, n int, rate float64, during func(i int)) {
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
			time.Sleep(d) // the camera's shot rate under test
		}
		ext := "JPG"
		if i%2 == 1 {
			ext = "ARW"
		}
		p := filepath.Join(media, fmt.Sprintf("%dTEST", 100+i/100), fmt.Sprintf("DSC%05d.%s", i, ext))
		writeCapture(t, p, 20<<10+(i*7919)%(180<<10), uint64(i))
		if during != nil {
			during(i)
		}
	}
}

func waitAllDone(t *testing.T, d *Daemon, n int, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%d captures done", n), func() bool {
		c := counts(t, d.Queue())
		return c.Done == n && c.Pending+c.InFlight+c.Retry+c.Parked == 0
	})
}

// TestE2EBurst300: 300 captures at 30 shots/s all arrive exactly once
// with matching SHA-256.
func TestE2EBurst300(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.writeConfig("300ms", 2)
	d, _, _ := startDaemon(t, cfg, testLogger(t))
	burst(t, e.media, 300, 30, nil)
	waitAllDone(t, d, 300, 60*time.Second)
	verifyArrived(t, e.media, e.root)
	st := d.Status()
	if st.UploadedFiles != 300 || st.TLS == nil || st.TLS.Version == "" {
		t.Fatalf("status after burst: %+v", st)
	}
	lat := d.Latencies()
	t.Logf("capture-complete to upload-start latency over %d captures: p50 %v p99 %v (settle %v); TLS %s %s (%s)",
		len(lat), percentile(lat, 50), percentile(lat, 99), cfg.Settle, st.TLS.Version, st.TLS.Suite, st.TLS.Class)
}

// TestE2EServerOutage: the server is stopped mid-burst and started
// again later; everything arrives once, nothing partial is left visible.
func TestE2EServerOutage(t *testing.T) {
	t.Parallel()
	outage := 20 * time.Second
	if testing.Short() {
		outage = 5 * time.Second
	}
	if s := os.Getenv("CAMFTPD_OUTAGE"); s != "" {
		outage, _ = time.ParseDuration(s)
	}
	e := newEnv(t)
	cfg := e.writeConfig("300ms", 2)
	d, _, _ := startDaemon(t, cfg, testLogger(t))
	// The timer's goroutine must not call t.Fatal (FailNow off the test
	// goroutine would leave restarted open and the test blocked on it): it
	// hands its error back. The cleanup joins it if the test stops early.
	restarted := make(chan struct{})
	var restartErr error
	burst(t, e.media, 300, 30, func(i int) {
		if i == 90 {
			e.stopServer()
			checkNoPartial(t, e.media, e.root)
			t.Logf("server stopped after shot %d for %v", i, outage)
			timer := time.AfterFunc(outage, func() {
				restartErr = e.tryStartServer()
				close(restarted)
			})
			t.Cleanup(func() {
				if !timer.Stop() {
					<-restarted
				}
			})
		}
	})
	<-restarted
	if restartErr != nil {
		t.Fatalf("after the outage: %v", restartErr)
	}
	t.Log("server back")
	checkNoPartial(t, e.media, e.root)
	c := counts(t, d.Queue())
	t.Logf("queue when the server came back: %+v", c)
	if c.Done >= 300 {
		t.Fatal("everything done during the outage?")
	}
	waitAllDone(t, d, 300, 60*time.Second)
	verifyArrived(t, e.media, e.root)
}
