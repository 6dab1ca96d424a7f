package queue

import (
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// twoClocks is a wall clock that can be stepped and a monotonic clock
// that only runs forward, both moved by the test.
type twoClocks struct {
	mu   sync.Mutex
	wall time.Time
	mono time.Duration
}

func (c *twoClocks) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall
}

func (c *twoClocks) Elapsed() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

// pass lets d go by on both clocks; step moves the wall clock only.
func (c *twoClocks) pass(d time.Duration) {
	c.mu.Lock()
	c.wall, c.mono = c.wall.Add(d), c.mono+d
	c.mu.Unlock()
}

func (c *twoClocks) step(d time.Duration) {
	c.mu.Lock()
	c.wall = c.wall.Add(d)
	c.mu.Unlock()
}

// TestClockStepKeepsDelays: a retry keeps the delay it had left when the
// wall clock is set back a day (before: frozen for a day) or forward a day
// (before: due at once); a lease does not expire because the clock jumped
// forward (before: a second worker got the item while the first sent it);
// after a restart, a retry is due at most BackoffMax ahead.
func TestClockStepKeepsDelays(t *testing.T) {
	clk := &twoClocks{wall: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "q.db")
	opts := &Options{Now: clk.Now, Elapsed: clk.Elapsed, BackoffMin: 10 * time.Second, BackoffMax: time.Minute}
	q := openT(t, path, opts)
	it, _, _ := q.Enqueue(capN(1))
	failAndWait := func(what string, stepBy time.Duration) {
		t.Helper()
		if got, ok, err := q.Lease("w"); err != nil || !ok || got.ID != it.ID {
			t.Fatalf("%s: lease %v %v %v", what, got.ID, ok, err)
		}
		next, err := q.Fail(it.ID, "421 busy")
		if err != nil {
			t.Fatal(err)
		}
		delay := next.Sub(clk.Now())
		clk.pass(delay / 2)
		clk.step(stepBy)
		if _, ok, err := q.Lease("w"); ok || err != nil {
			t.Fatalf("%s: leased (%v) with %s of the %s delay left", what, err, delay-delay/2, delay)
		}
		if in, ok := q.NextDueIn(); !ok || in != delay-delay/2 {
			t.Fatalf("%s: next due in %s (%v), want %s", what, in, ok, delay-delay/2)
		}
		clk.pass(delay - delay/2)
		if got, ok, err := q.Lease("w"); err != nil || !ok || got.ID != it.ID {
			t.Fatalf("%s: not leased once the delay has passed: %v %v", what, ok, err)
		}
		if err := q.Release(it.ID); err != nil {
			t.Fatal(err)
		}
	}
	failAndWait("clock set back a day", -24*time.Hour)
	failAndWait("clock set forward a day", 24*time.Hour)

	// A lease of 10 minutes, the clock set forward an hour.
	if got, ok, _ := q.Lease("w1"); !ok || got.ID != it.ID {
		t.Fatal("no lease")
	}
	clk.pass(time.Minute)
	clk.step(time.Hour)
	if got, ok, err := q.Lease("w2"); ok || err != nil {
		t.Fatalf("item leased again while its lease runs: %v to w2 (%v)", got.ID, err)
	}
	if _, err := q.Fail(it.ID, "421 busy"); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, q)

	// Stopped, and the clock set back a day meanwhile: nothing sees the
	// step; the retry is due at most BackoffMax ahead.
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	clk.step(-24 * time.Hour)
	q = openT(t, path, opts)
	if in, ok := q.NextDueIn(); !ok || in > opts.BackoffMax {
		t.Fatalf("after a restart: next due in %s (%v), want at most %s", in, ok, opts.BackoffMax)
	}
	mustVerify(t, q)
}
