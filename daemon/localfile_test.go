package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camftpd/camftpd/queue"
	"golang.org/x/sys/unix"
)

// fileEvents collects the daemon's events (in process) until stop is closed.
type fileEvents struct {
	mu  sync.Mutex
	evs []Event
}

func (l *fileEvents) run(ch <-chan Event, stop <-chan struct{}) {
	for {
		select {
		case ev := <-ch:
			l.mu.Lock()
			l.evs = append(l.evs, ev)
			l.mu.Unlock()
		case <-stop:
			return
		}
	}
}

func (l *fileEvents) count(file, typ string) (n int, last Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.evs {
		if ev.File == file && ev.Type == typ {
			n++
			last = ev
		}
	}
	return n, last
}

func watchEvents(t *testing.T, d *Daemon) *fileEvents {
	ch, unsub := d.hub.subscribe(1024)
	stop := make(chan struct{})
	l := &fileEvents{}
	done := make(chan struct{})
	go func() { defer close(done); l.run(ch, stop) }()
	t.Cleanup(func() { close(stop); <-done; unsub() })
	return l
}

// TestSwappedCaptureRefused: between the queue and the upload's open
// (forced through the beforeOpen hook), a queued capture is replaced by a
// symbolic link to another user's 0600 file outside the media folder, by a
// FIFO, and by a different regular file of the same size. One worker. The
// link and the FIFO are parked with the reason, reported once, never read
// (nothing of them on the server); the swapped regular file's item is not
// sent as the queued capture (vanished, changed); the FIFO does not block
// the worker: the next shot, written after it was refused, uploads.
func TestSwappedCaptureRefused(t *testing.T) {
	e := newEnv(t)
	cfg := e.writeConfig("150ms", 1)
	secret := filepath.Join(e.dir, "outside", "shadow")
	if err := os.MkdirAll(filepath.Dir(secret), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte("root only secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(secret, 65534, 65534); err != nil {
		t.Logf("chown to another user: %v (the link is refused as a link either way)", err)
	}
	d := New(cfg, testLogger(t))
	var mu sync.Mutex
	swapped := map[string]string{} // rel -> ID of the item swapped
	d.beforeOpen = func(it queue.Item) {
		mu.Lock()
		defer mu.Unlock()
		rel := it.Capture.Rel
		if _, done := swapped[rel]; done {
			return
		}
		p := filepath.Join(e.media, filepath.FromSlash(rel))
		var err error
		switch filepath.Base(rel) {
		case "A.JPG":
			if err = os.Remove(p); err == nil {
				err = os.Symlink(secret, p)
			}
		case "B.JPG":
			if err = os.Remove(p); err == nil {
				err = unix.Mkfifo(p, 0o644)
			}
		case "C.JPG":
			tmp := filepath.Join(e.dir, "other.jpg")
			writeCapture(t, tmp, int(it.Capture.Size), 99)
			err = os.Rename(tmp, p)
		default:
			return
		}
		if err != nil {
			t.Errorf("swap %s: %v", rel, err)
		}
		swapped[rel] = it.ID
	}
	evs := watchEvents(t, d)
	runDaemon(t, d)
	for i, n := range []string{"A.JPG", "B.JPG", "C.JPG"} {
		writeCapture(t, filepath.Join(e.media, "100CAM", n), 200<<10, uint64(i+1))
	}
	waitFor(t, 20*time.Second, "the three swapped shots settled", func() bool {
		a, _ := evs.count("100CAM/A.JPG", "parked")
		b, _ := evs.count("100CAM/B.JPG", "parked")
		c, _ := evs.count("100CAM/C.JPG", "vanished")
		return a > 0 && b > 0 && c > 0
	})
	writeCapture(t, filepath.Join(e.media, "100CAM", "D.JPG"), 200<<10, 4)
	waitFor(t, 20*time.Second, "the next shot uploaded (worker not blocked by the FIFO)", func() bool {
		n, _ := evs.count("100CAM/D.JPG", "done")
		return n == 1
	})

	for rel, want := range map[string]string{"100CAM/A.JPG": "symbolic link", "100CAM/B.JPG": "FIFO"} {
		n, ev := evs.count(rel, "parked")
		if n != 1 || !strings.Contains(ev.Error, want) {
			t.Errorf("%s: %d parked events, last %q; want one naming %q", rel, n, ev.Error, want)
		}
		mu.Lock()
		it, err := d.Queue().Get(swapped[rel])
		mu.Unlock()
		if err != nil || it.State != queue.Parked || !strings.Contains(it.Reason, want) {
			t.Errorf("%s: item %+v, %v; want parked naming %q", rel, it, err, want)
		}
		if _, err := os.Lstat(filepath.Join(e.root, rel)); err == nil {
			t.Errorf("%s is on the server", rel)
		}
	}
	mu.Lock()
	cid := swapped["100CAM/C.JPG"]
	mu.Unlock()
	if it, err := d.Queue().Get(cid); err != nil || it.State != queue.Parked || !it.Vanished || it.Remote != "" {
		t.Errorf("C.JPG swapped for another file: queued item %+v, %v; want vanished, never sent", it, err)
	}
	for rel, sum := range treeSHA(t, e.root) {
		if sum == fileSHA(t, secret) {
			t.Errorf("the link's target is on the server as %s", rel)
		}
	}
	if n, _ := evs.count("100CAM/C.JPG", "vanished"); n != 1 {
		t.Errorf("C.JPG: %d vanished events, want 1", n)
	}
}

// TestPausedWriterPublishedOnce: a writer writes half a movie, pauses with
// the file open until the daemon has tried it (the queueing after the
// settle window is forced: the half file is enqueued as the watcher
// would), writes the rest and closes. Under same_name rename the server
// then holds exactly one file under the final name, complete, no -1 copy
// and no temporary file; the half capture was never sent.
func TestPausedWriterPublishedOnce(t *testing.T) {
	e := newEnv(t)
	cfg := e.writeConfig("150ms", 1)
	d := New(cfg, testLogger(t))
	evs := watchEvents(t, d)
	runDaemon(t, d)

	rel := "100CAM/MVI_0001.MP4"
	full, data, w, half := halfWritten(t, e, d, rel, 1200<<10, 7, 2)
	waitFor(t, 20*time.Second, "an attempt on the half-written movie", func() bool {
		r, _ := evs.count(rel, "retry")
		n, _ := evs.count(rel, "done")
		return r+n > 0
	})
	if _, err := w.Write(data[len(data)/2:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the whole movie done", func() bool {
		_, ev := evs.count(rel, "done")
		return ev.Total == int64(len(data))
	})
	waitFor(t, 20*time.Second, "the half capture settled", func() bool {
		it, err := d.Queue().Get(half.ID)
		return err == nil && it.State != queue.Retry && it.State != queue.InFlight && it.State != queue.Pending
	})
	// The item of the half file either took the grown file (same inode)
	// and delivered it whole, or another item did and it vanished.
	it, err := d.Queue().Get(half.ID)
	if err != nil {
		t.Fatal(err)
	}
	tookGrown := it.State == queue.Done && it.Capture.Size == int64(len(data))
	vanished := it.State == queue.Parked && it.Vanished
	if !tookGrown && !vanished {
		t.Errorf("the half-written capture's item: %+v", it)
	}
	if c := counts(t, d.Queue()); c.Done != 1 {
		t.Errorf("%d items done, want 1 (one capture)", c.Done)
	}
	if names := serverNames(t, e.root); len(names) != 1 || names[0] != rel {
		t.Fatalf("server holds %v, want only %s", names, rel)
	}
	if got := fileSHA(t, filepath.Join(e.root, filepath.FromSlash(rel))); got != fileSHA(t, full) {
		t.Fatal("the file on the server is not the whole movie")
	}
}

// TestGrownCaptureKeepsItsItem: as TestPausedWriterPublishedOnce, with a
// settle window long enough that the watcher does not queue the grown
// file before the half file's item is tried again: that item takes the
// grown file (same inode) and delivers it whole, from byte 0; the grown
// file enqueued afterwards (as the watcher will) is that item, not a
// second one.
//
// It runs in the settle fallback (no leases): in lease mode the watcher
// queues the grown file at its close, before the half file's retry.
func TestGrownCaptureKeepsItsItem(t *testing.T) {
	e := newEnv(t)
	cfg := e.writeConfig("30s", 1)
	d := New(cfg, testLogger(t))
	d.writers = refuseLeases
	evs := watchEvents(t, d)
	runDaemon(t, d)

	rel := "100CAM/MVI_0002.MP4"
	full, data, w, half := halfWritten(t, e, d, rel, 900<<10, 8, 3)
	waitFor(t, 20*time.Second, "an attempt on the half-written movie", func() bool {
		n, _ := evs.count(rel, "retry")
		return n > 0
	})
	if _, err := w.Write(data[len(data)/3:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the whole movie done", func() bool {
		_, ev := evs.count(rel, "done")
		return ev.Total == int64(len(data))
	})
	_, ev := evs.count(rel, "done")
	if ev.ID != half.ID {
		t.Errorf("done as item %s, want the half file's item %s", ev.ID, half.ID)
	}
	// The done event comes before the queue's record (see attempt.done).
	waitFor(t, 20*time.Second, "the item done in the queue", func() bool {
		it, err := d.Queue().Get(half.ID)
		return err == nil && it.State == queue.Done
	})
	p := filepath.Join(e.media, filepath.FromSlash(rel))
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	grown, err := captureOf(p, rel, st)
	if err != nil {
		t.Fatal(err)
	}
	if it, added, err := d.Queue().Enqueue(grown); err != nil || added || it.ID != half.ID || it.State != queue.Done {
		t.Errorf("the grown file enqueued: %+v added %v %v; want the half file's item, done", it, added, err)
	}
	if names := serverNames(t, e.root); len(names) != 1 || names[0] != rel {
		t.Fatalf("server holds %v, want only %s", names, rel)
	}
	if got := fileSHA(t, filepath.Join(e.root, filepath.FromSlash(rel))); got != fileSHA(t, full) {
		t.Fatal("the file on the server is not the whole movie")
	}
}

// halfWritten starts a movie of size bytes at rel in the media folder,
// writes 1/part of it and keeps the writer open, and enqueues what is there
// as the watcher would once a settle window passed. It returns the whole
// movie's path outside the card and its bytes, the open writer (closed at
// the end of the test) and the half file's item.
func halfWritten(t *testing.T, e *testEnv, d *Daemon, rel string, size int, seed uint64, part int) (string, []byte, *os.File, queue.Item) {
	t.Helper()
	p := filepath.Join(e.media, filepath.FromSlash(rel))
	full := filepath.Join(e.dir, "full.mp4")
	writeCapture(t, full, size, seed)
	data, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() }) // the test closes it; a second Close is harmless
	if _, err := w.Write(data[:len(data)/part]); err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := captureOf(p, rel, st)
	if err != nil {
		t.Fatal(err)
	}
	half, _, err := d.Queue().Enqueue(c)
	if err != nil {
		t.Fatal(err)
	}
	return full, data, w, half
}
