package daemon

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camftpd/camftpd/queue"
)

// workerCount counts the upload workers alive through the onWorker hook
// and keeps the most seen at once and how many ever started.
type workerCount struct {
	mu                   sync.Mutex
	alive, most, started int
}

func (c *workerCount) hook(delta int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.alive += delta
	c.most = max(c.most, c.alive)
	if delta > 0 {
		c.started++
	}
}

func (c *workerCount) get() (alive, most, started int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.alive, c.most, c.started
}

// stuckOpen makes the first lease's worker block before it opens the
// capture, ignoring cancellation, until release is closed.
func stuckOpen(d *Daemon) (entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	d.beforeOpen = func(queue.Item) {
		first := false
		once.Do(func() { first = true })
		if first {
			close(entered)
			<-release
		}
	}
	return entered, release
}

// TestShutdownStuckWorker: a worker that ignores cancellation makes Run
// return, within the 5 s a SIGTERM has, an error naming its upload (file
// and server); the queue stays open under it until it has ended, and what
// it writes then (the release of its lease) is kept.
func TestShutdownStuckWorker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.writeConfig("200ms", 1)
	d := New(cfg, testLogger(t))
	var wc workerCount
	d.onWorker = wc.hook
	entered, release := stuckOpen(d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer cancel()
	<-d.Ready()
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), 50<<10, 1)
	select {
	case <-entered:
	case <-time.After(within(10 * time.Second)):
		t.Fatal("no upload started")
	}
	start := time.Now()
	cancel()
	var err error
	select {
	case err = <-done:
	// shutdownGrace is the product's (its own timer); the margin for Run to
	// return after it is "not hung" and stretches under -race and qemu.
	case <-time.After(shutdownGrace + within(1500*time.Millisecond)):
		close(release)
		t.Fatal("Run did not return within 5 s of the cancel")
	}
	t.Logf("Run returned after %v: %v", time.Since(start), err)
	if !errors.Is(err, errShutdownLate) || !strings.Contains(err.Error(), "100TEST/DSC00001.JPG to server test") {
		close(release)
		t.Fatalf("Run's error %v: want errShutdownLate naming 100TEST/DSC00001.JPG and server test", err)
	}
	q := d.Queue()
	if c, err := q.Counts(); err != nil || c.InFlight != 1 {
		close(release)
		t.Fatalf("queue after Run returned: %+v, %v: want it open, the item in flight", c, err)
	}
	close(release)
	waitFor(t, 10*time.Second, "the stuck worker to end", func() bool { a, _, _ := wc.get(); return a == 0 })
	if c, err := q.Counts(); err != nil || c.InFlight != 0 || c.Pending != 1 {
		t.Fatalf("queue after the worker ended: %+v, %v: want the item released (pending)", c, err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReloadWaitsForOldGeneration: a reload while an upload is stuck (it
// ignores cancellation) starts the new workers only once the old one has
// ended: never more workers alive than configured; the run loop still
// takes the next reload meanwhile, and the capture is uploaded after.
func TestReloadWaitsForOldGeneration(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.writeConfig("200ms", 2)
	d := New(cfg, testLogger(t))
	var wc workerCount
	d.onWorker = wc.hook
	entered, release := stuckOpen(d)
	var once sync.Once
	unstick := func() { once.Do(func() { close(release) }) }
	defer unstick()
	runDaemon(t, d)
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), 50<<10, 1)
	select {
	case <-entered:
	case <-time.After(within(10 * time.Second)):
		t.Fatal("no upload started")
	}
	d.Reload(e.writeConfig("200ms", 2))
	waitFor(t, 5*time.Second, "the idle worker of the old generation to stop", func() bool { a, _, _ := wc.get(); return a == 1 })
	d.Reload(e.writeConfig("200ms", 2)) // the loop takes it while the old worker is stuck
	waitFor(t, 5*time.Second, "the second reload taken", func() bool { return len(d.reloadCh) == 0 })
	if a, most, started := wc.get(); a != 1 || most > 2 || started != 2 {
		t.Fatalf("while the old worker is stuck: %d alive, %d at most, %d started; want 1, 2, 2", a, most, started)
	}
	unstick()
	waitFor(t, 10*time.Second, "the new generation's workers", func() bool { _, _, s := wc.get(); return s == 4 })
	waitFor(t, 10*time.Second, "uploaded after the reload", func() bool { return counts(t, d.Queue()).Done == 1 })
	if _, most, _ := wc.get(); most > 2 {
		t.Fatalf("%d workers alive at once with workers = 2: two generations ran together", most)
	}
}
