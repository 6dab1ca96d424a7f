package daemon

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// nextEvent returns the next event of one of types, failing the test after
// timeout.
func nextEvent(t *testing.T, ch <-chan Event, timeout time.Duration, types ...string) Event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case e := <-ch:
			for _, ty := range types {
				if e.Type == ty {
					return e
				}
			}
		case <-deadline.C:
			t.Fatalf("no %v event within %s", types, timeout)
		}
	}
}

// TestCertNotYetValidBlocks: a server certificate valid from 3 hours ahead,
// with a sane clock, is a certificate error naming its validity dates: the
// daemon blocks and says so, after one attempt (before: a clock wait that
// ended at once, 6,103 connections in 10 s, status "idle").
func TestCertNotYetValidBlocks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	from, to := time.Now().Add(3*time.Hour).Truncate(time.Second), time.Now().Add(48*time.Hour).Truncate(time.Second)
	cert, err := e.ca.IssueCert(ftpstest.CertOptions{NotBefore: from, NotAfter: to})
	if err != nil {
		t.Fatal(err)
	}
	e.cert = cert
	e.stopServer()
	e.startServer()
	cfg := e.writeConfig("200ms", 2)
	d := New(cfg, testLogger(t))
	events, stop := d.Subscribe()
	defer stop()
	runDaemon(t, d)
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), 50<<10, 1)

	ev := nextEvent(t, events, within(10*time.Second), "blocked")
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	for _, s := range []string{"not valid before " + stamp(from), "valid to " + stamp(to), "device clock", "fix the device clock or the certificate's start date"} {
		if !strings.Contains(ev.Error, s) {
			t.Errorf("blocked event %q lacks %q", ev.Error, s)
		}
	}
	if ev.State != "certificate" {
		t.Errorf("blocked event class %q, want certificate", ev.State)
	}
	// What a hot loop would show: connections keep coming. Watch 2 s.
	time.Sleep(within(2 * time.Second)) // the window under test, not a wait
	if n := e.server().Stats().Connections; n > 6 {
		t.Fatalf("%d connections to a server whose certificate is not valid yet, want a handful (each worker's prewarm, the attempt, its TLS probe)", n)
	}
	st := d.Status().State
	if !strings.HasPrefix(st, "blocked: certificate") || !strings.Contains(st, stamp(from)) {
		t.Fatalf("status %q, want blocked: certificate with the dates", st)
	}
	if c := counts(t, d.Queue()); c.Pending != 1 || c.Done+c.Parked != 0 {
		t.Fatalf("the capture should wait pending: %+v", c)
	}
	t.Logf("state: %s; %d connections", st, e.server().Stats().Connections)
}

// TestHandshakeAlertRetried: internal_error alerts during the control
// handshake (the attempt and its TLS probe, and the prewarm's) are a
// transient error: the capture retries after retry_min, the status says
// it is retrying, and it is uploaded without a reload (before: one alert
// blocked uploads as a tls-policy error until a reload).
func TestHandshakeAlertRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.retryMin, e.retryMax = "1s", "1s"
	e.server().SetFaults(ftpstest.Faults{HandshakeFault: ftpstest.AlertInternalError, HandshakeFaults: 4})
	cfg := e.writeConfig("200ms", 1)
	d := New(cfg, testLogger(t))
	events, stop := d.Subscribe()
	defer stop()
	runDaemon(t, d)
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), 50<<10, 1)

	var retried time.Time
	for {
		ev := nextEvent(t, events, within(15*time.Second), "retry", "blocked", "done", "start")
		switch ev.Type {
		case "blocked":
			t.Fatalf("blocked by a handshake alert: %s", ev.Error)
		case "retry":
			if !strings.Contains(ev.Error, "internal error") {
				t.Fatalf("retry for %q, want the alert", ev.Error)
			}
			retried = ev.Time
			if st := d.Status().State; !strings.HasPrefix(st, "waiting for retry: ") || !strings.Contains(st, "internal error") {
				t.Errorf("status %q while retrying, want \"waiting for retry: \" and the alert", st)
			}
		case "start":
			if !retried.IsZero() {
				if gap := ev.Time.Sub(retried); gap < 900*time.Millisecond {
					t.Fatalf("attempt %s after the failure, want at least retry_min (1s)", gap)
				}
			}
		}
		if ev.Type == "done" {
			break
		}
	}
	if retried.IsZero() {
		t.Fatal("uploaded without meeting an alert: the test did not test")
	}
	if n := e.server().Stats().HandshakeFaults; n < 2 {
		t.Fatalf("%d handshakes faulted", n)
	}
	if st := d.Status().State; st != "idle" && st != "uploading" {
		t.Fatalf("status %q after the upload", st)
	}
	verifyArrived(t, e.media, e.root)
}

// steppedClock is a wall clock the test steps (time.Now plus an offset).
type steppedClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *steppedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *steppedClock) step(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// TestRetriesSurviveClockSteps: the server answers 421 to every connection;
// with the wall clock set back a day, then forward two days (and the
// dispatcher woken at once by a state change), each retry still comes
// retry_min after its failure (before: set back, it froze for a day; set
// forward, it came at once).
func TestRetriesSurviveClockSteps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.retryMin, e.retryMax = "1s", "1s"
	e.server().SetFaults(ftpstest.Faults{Reply421OnConnect: true})
	cfg := e.writeConfig("200ms", 1)
	clk := &steppedClock{}
	d := New(cfg, testLogger(t))
	d.wallClock = clk.Now
	events, stop := d.Subscribe()
	defer stop()
	runDaemon(t, d)
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), 50<<10, 1)

	for _, s := range []struct {
		name string
		step time.Duration
	}{{"set back a day", -24 * time.Hour}, {"set forward two days", 48 * time.Hour}} {
		failed := nextEvent(t, events, within(10*time.Second), "retry")
		clk.step(s.step)
		d.Pause() // a state change wakes the dispatcher now
		d.Resume()
		next := nextEvent(t, events, within(5*time.Second), "start")
		gap := next.Time.Sub(failed.Time)
		if gap < 900*time.Millisecond {
			t.Fatalf("clock %s: next attempt %s after the failure, want retry_min (1s)", s.name, gap)
		}
		t.Logf("clock %s: next attempt %s after the failure", s.name, gap)
	}
	clk.step(-24 * time.Hour) // right again: the certificate checks follow this clock too
	e.server().SetFaults(ftpstest.Faults{})
	nextEvent(t, events, within(10*time.Second), "done")
}

// TestClockUnsetWaitsRetryMin: certificates judged on a device clock in
// 1975 (not set, says tlspolicy) while the board deems the clock set, so
// the clock wait ends at once: each attempt still comes retry_min after
// the last, and status says why (before: the item was released and leased
// again at once, a hot loop, status "idle").
func TestClockUnsetWaitsRetryMin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.retryMin, e.retryMax = "1s", "1s"
	cfg := e.writeConfig("200ms", 1)
	clk := &steppedClock{off: time.Until(time.Date(1975, 6, 1, 12, 0, 0, 0, time.UTC))}
	d := New(cfg, testLogger(t))
	d.wallClock = clk.Now
	events, stop := d.Subscribe()
	defer stop()
	runDaemon(t, d)
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), 50<<10, 1)

	ev := nextEvent(t, events, within(10*time.Second), "retry")
	if !strings.Contains(ev.Error, "device clock is 1975") {
		t.Fatalf("retry for %q, want the clock error", ev.Error)
	}
	if st := d.Status().State; !strings.Contains(st, "clock") {
		t.Errorf("status %q, want it to name the clock", st)
	}
	last, starts := ev.Time, 0
	window := time.NewTimer(within(2500 * time.Millisecond))
	defer window.Stop()
	for done := false; !done; {
		select {
		case ev := <-events:
			switch ev.Type {
			case "start":
				starts++
				if gap := ev.Time.Sub(last); gap < 900*time.Millisecond {
					t.Fatalf("attempt %d came %s after the last failure, want retry_min (1s)", starts, gap)
				}
			case "retry":
				last = ev.Time
			case "blocked":
				t.Fatalf("blocked: %s", ev.Error)
			}
		case <-window.C:
			done = true
		}
	}
	if starts == 0 {
		t.Fatal("no attempt after the first in 2.5 s: the clock wait did not end (the test did not test)")
	}
	t.Logf("%d attempts in 2.5 s after the first failure; %d connections", starts, e.server().Stats().Connections)
}
