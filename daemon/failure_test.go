package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/camftpd/camftpd/board"
	"github.com/camftpd/camftpd/queue"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// fillDisk writes dir/filler until the file system is full and returns its
// path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	if err := f.Close(); err != nil {
		t.Logf("close filler: %v", err)
	}
	return filler
}

// TestEnqueueRetriedAfterDiskFull: the state directory is a 1 MiB tmpfs
// filled up (root); a capture completed then cannot be queued: the
// failure is counted in the status, and once space is back the capture is
// queued again (backoff) and uploaded, without a rescan or restart.
func TestEnqueueRetriedAfterDiskFull(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := syscall.Mount("tmpfs", e.state, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v: this test needs root (CAP_SYS_ADMIN) to mount a small tmpfs", e.state, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(e.state, syscall.MNT_DETACH) })
	cfg := e.writeConfig("200ms", 1)
	d, _, _ := startDaemon(t, cfg, testLogger(t))
	d.Pause() // only the watcher writes to the queue while the disk is full
	filler := fillDisk(t, e.state)
	// Captures with long paths (2 KiB), a few at a time, until the queue
	// needs a page the full disk cannot give.
	deep := filepath.Join(e.media, "100TEST")
	for i := range 8 {
		deep = filepath.Join(deep, fmt.Sprintf("%d%s", i, strings.Repeat("d", 250)))
	}
	n := 0
	for n < 64 && d.Status().QueueWriteErrors == 0 {
		for range 4 {
			n++
			writeCapture(t, filepath.Join(deep, fmt.Sprintf("DSC%05d.JPG", n)), 4<<10, uint64(n))
		}
		waitFor(t, 10*time.Second, "the captures queued or failed", func() bool {
			st := d.Status()
			return st.QueueWriteErrors > 0 || counts(t, d.Queue()).Pending == n
		})
	}
	st := d.Status()
	t.Logf("after %d captures: %d failed queue writes, last %q", n, st.QueueWriteErrors, st.LastQueueWriteError)
	if !strings.HasPrefix(st.LastQueueWriteError, "enqueue 100TEST/") || !strings.Contains(st.LastQueueWriteError, "space") {
		t.Fatalf("last queue write error %q: want the enqueue, the file and the cause", st.LastQueueWriteError)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	d.Resume()
	waitFor(t, 30*time.Second, "all uploaded once space is back", func() bool { return counts(t, d.Queue()).Done == n })
	verifyArrived(t, e.media, e.root)
}

// monitorHook returns watch hooks whose calls are counted; each call
// returns a new channel, sent to chans.
type monitorHook[E any] struct {
	mu    sync.Mutex
	calls int
	chans chan chan E
}

func newMonitorHook[E any]() *monitorHook[E] { return &monitorHook[E]{chans: make(chan chan E, 8)} }

func (h *monitorHook[E]) watch(context.Context, string) (<-chan E, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	ch := make(chan E, 4)
	h.chans <- ch
	return ch, nil
}

func (h *monitorHook[E]) next(t *testing.T) chan E {
	t.Helper()
	select {
	case ch := <-h.chans:
		return ch
	case <-time.After(within(10 * time.Second)):
		t.Fatal("the monitor was not started (again)")
		return nil
	}
}

// TestLinkMonitorRestarts: the link monitor's channel closes after "link
// down" (the board's socket failed): the status shows it degraded and the
// uploads stop waiting for the link; the monitor is started again after
// its backoff and its first event counts.
func TestLinkMonitorRestarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.writeConfig("200ms", 1)
	cfg.Profile.Interface = "fake0"
	d := New(cfg, testLogger(t))
	h := newMonitorHook[board.LinkEvent]()
	d.watchLink = h.watch
	runDaemon(t, d)
	link := h.next(t)
	link <- board.LinkEvent{Iface: "fake0", Up: false}
	waitFor(t, 5*time.Second, "waiting for the link", func() bool { return d.Status().State == "waiting: network link down" })
	close(link)
	waitFor(t, 5*time.Second, "link monitor degraded", func() bool { return d.Status().Degraded["link"] != "" })
	t.Logf("degraded: %v", d.Status().Degraded)
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), 50<<10, 1)
	waitFor(t, 10*time.Second, "uploaded without the link monitor", func() bool { return counts(t, d.Queue()).Done == 1 })
	link = h.next(t)
	waitFor(t, 5*time.Second, "degraded cleared", func() bool { return d.Status().Degraded["link"] == "" })
	link <- board.LinkEvent{Iface: "fake0", Up: false}
	waitFor(t, 5*time.Second, "the restarted monitor's event", func() bool { return d.Status().State == "waiting: network link down" })
	link <- board.LinkEvent{Iface: "fake0", Up: true}
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00002.JPG"), 50<<10, 2)
	waitFor(t, 10*time.Second, "uploaded after link up", func() bool { return counts(t, d.Queue()).Done == 2 })
}

// TestMountMonitorRestarts: the mount monitor's channel closes while the
// card is unmounted: the status shows it degraded; the restarted monitor's
// first event (mounted) resumes the uploads.
func TestMountMonitorRestarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.writeConfig("200ms", 1)
	cfg.Profile.StorageMount = "/fake/card"
	d := New(cfg, testLogger(t))
	h := newMonitorHook[board.MountEvent]()
	d.watchMount = h.watch
	runDaemon(t, d)
	mount := h.next(t)
	mount <- board.MountEvent{Path: "/fake/card", Mounted: true}
	mount <- board.MountEvent{Path: "/fake/card", Mounted: false}
	waitFor(t, 5*time.Second, "paused", func() bool { return d.Status().State == "paused: media unmounted" })
	close(mount)
	waitFor(t, 5*time.Second, "mount monitor degraded", func() bool { return d.Status().Degraded["mount"] != "" })
	mount = h.next(t)
	waitFor(t, 5*time.Second, "degraded cleared", func() bool { return d.Status().Degraded["mount"] == "" })
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), 50<<10, 1)
	mount <- board.MountEvent{Path: "/fake/card", Mounted: true}
	waitFor(t, 10*time.Second, "uploaded after the restarted monitor's mount event", func() bool { return counts(t, d.Queue()).Done == 1 })
}

// TestLeaseRenewedWhileStalled: the server stops reading the data
// connection; the stall outlasts the (shortened) lease time. The lease is
// renewed on time, so the second worker, which meanwhile uploads another
// capture, never leases the stalled one; once the stall ends it is
// uploaded once.
func TestLeaseRenewedWhileStalled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.writeConfig("200ms", 2)
	cfg.Servers[0].Timeout = time.Minute // the stall must not fail the upload during the window
	d := New(cfg, testLogger(t))
	d.lease = time.Second
	var mu sync.Mutex
	opens := map[string][]string{} // capture -> workers that opened it
	d.beforeOpen = func(it queue.Item) {
		mu.Lock()
		defer mu.Unlock()
		opens[it.Capture.Rel] = append(opens[it.Capture.Rel], it.Worker)
	}
	e.server().SetFaults(ftpstest.Faults{Stall: true, StallAfterBytes: 64 << 10})
	runDaemon(t, d)
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), 1<<20, 1)
	var stalled queue.Item
	waitFor(t, 10*time.Second, "the upload to stall", func() bool {
		its, err := d.Queue().List(queue.InFlight)
		if err != nil || len(its) != 1 {
			return false
		}
		stalled = its[0]
		return e.server().Stats().BytesReceived >= 64<<10
	})
	// The window under test: until the first lease would have ended a
	// whole lease time ago (on the queue's clock, the wall clock here).
	end := stalled.LeaseUntil.Add(d.lease)
	for time.Now().Before(end) {
		time.Sleep(50 * time.Millisecond) // a window, not a wait for an event
	}
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00002.JPG"), 20<<10, 2) // under StallAfterBytes: not stalled
	waitFor(t, 10*time.Second, "the second capture uploaded", func() bool {
		it, err := d.Queue().Get(stalled.ID)
		if err != nil || it.State != queue.InFlight || it.Worker != stalled.Worker {
			t.Fatalf("stalled item: %v, %+v: want it still leased to %s", err, it, stalled.Worker)
		}
		mu.Lock()
		defer mu.Unlock()
		return len(opens["100TEST/DSC00002.JPG"]) > 0 && counts(t, d.Queue()).Done >= 1
	})
	e.server().UpdateFaults(func(f *ftpstest.Faults) { f.Stall = false })
	waitFor(t, 20*time.Second, "both uploaded", func() bool { return counts(t, d.Queue()).Done == 2 })
	mu.Lock()
	defer mu.Unlock()
	if w := opens["100TEST/DSC00001.JPG"]; len(w) != 1 {
		t.Fatalf("the stalled capture was opened by %v: want one worker", w)
	}
	verifyArrived(t, e.media, e.root)
}
