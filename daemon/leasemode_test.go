package daemon

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"
)

// holdsPending runs in the watcher's loop and reports whether p is
// pending there (a hook: the watcher handled every event read before).
func (we *watchEnv) holdsPending(p string) bool {
	var pending bool
	done := make(chan struct{})
	we.w.hooks <- func() { _, pending = we.w.pending[p]; close(done) }
	<-done
	return pending
}

// TestWatcherLeaseCompletesAtClose: with leases, a capture written in chunks
// with pauses longer than the quiet gap is not complete while its writer
// holds it open, and is complete as soon as the writer closed it: long
// before the settle window (10 s here). With the settle window alone it
// is queued 10 s after its last write.
func TestWatcherLeaseCompletesAtClose(t *testing.T) {
	t.Parallel()
	media := t.TempDir()
	dir := filepath.Join(media, "100TEST")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	we := startWatcher(t, media, nil, func(c *Config) { c.Settle = 10 * time.Second })
	p := filepath.Join(dir, "DSC00001.JPG")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range 4 {
		if _, err := f.Write(make([]byte, 256<<10)); err != nil {
			t.Fatal(err)
		}
		// The camera's pause between chunks, under test: 30 quiet gaps,
		// many lease checks that find the writer.
		time.Sleep(150 * time.Millisecond)
		if we.queued("100TEST/DSC00001.JPG") {
			t.Fatal("queued while its writer still holds it open")
		}
	}
	if !we.holdsPending(p) {
		t.Fatal("the file being written is not pending")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	closed := time.Now()
	waitFor(t, 3*time.Second, "queued after the writer closed it (settle window 10 s)", func() bool {
		return we.queued("100TEST/DSC00001.JPG")
	})
	t.Logf("queued %v after the close (settle window 10 s)", time.Since(closed))
	items, err := we.q.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Capture.Size != 1<<20 {
		t.Fatalf("want the whole file queued once, got %+v", items)
	}
	if m := we.w.completionMode(); m.Mode != ModeLease || !strings.Contains(m.Why, "granted") {
		t.Fatalf("completion mode %+v, want lease (granted)", m)
	}
}

// TestWatcherLeaseWriterProcessIdle: another process holds a capture open and
// idle (no event for longer than leaseIdleAfter: the backed-off
// rechecks); it stays pending until that process closes the file, while
// the process itself lives on. Then it is queued without waiting for the
// settle window, and appended to afterwards it is queued again with its
// new size.
func TestWatcherLeaseWriterProcessIdle(t *testing.T) {
	t.Parallel()
	media := t.TempDir()
	dir := filepath.Join(media, "100TEST")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	we := startWatcher(t, media, nil, func(c *Config) { c.Settle = 10 * time.Second })
	p := filepath.Join(dir, "MVI_0001.MP4")
	ctl := filepath.Join(t.TempDir(), "close")
	if err := unix.Mkfifo(ctl, 0o600); err != nil {
		t.Fatal(err)
	}
	// The writer: opens the file, writes, waits for a line on the FIFO,
	// closes the file, then lives on for a while (a close, not an exit).
	sh := exec.Command("/bin/sh", "-c", `exec 3>"$1"; head -c 100000 /dev/zero >&3; read x <"$2"; exec 3>&-; echo closed; sleep 3`, "sh", p, ctl)
	out, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sh.Process.Kill(); _ = sh.Wait() })
	waitFor(t, 5*time.Second, "the writer's file pending", func() bool { return we.holdsPending(p) })
	time.Sleep(leaseIdleAfter + 500*time.Millisecond) // idle and open, under test
	if we.queued("100TEST/MVI_0001.MP4") {
		t.Fatal("queued while another process holds it open")
	}
	if err := os.WriteFile(ctl, []byte("go\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf[:6]) != "closed" {
		t.Fatalf("writer: %q %v", buf, err)
	}
	closed := time.Now()
	waitFor(t, 3*time.Second, "queued after the close", func() bool { return we.queued("100TEST/MVI_0001.MP4") })
	t.Logf("queued %v after the close of an idle writer", time.Since(closed))

	// Re-opened and appended after completion: queued again, grown.
	a, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(make([]byte, 50000)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // open after its append, under test
	if sizes := queuedSizes(t, we); sizes[150000] {
		t.Fatal("the grown file was queued while still open")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "the grown file queued", func() bool { return queuedSizes(t, we)[150000] })
}

func queuedSizes(t *testing.T, we *watchEnv) map[int64]bool {
	items, err := we.q.List()
	if err != nil {
		t.Fatal(err)
	}
	m := map[int64]bool{}
	for _, it := range items {
		m[it.Capture.Size] = true
	}
	return m
}

// TestWatcherLeaseProbeAtStart: the start rescan decides the mode from a capture
// on the card, before any event.
func TestWatcherLeaseProbeAtStart(t *testing.T) {
	t.Parallel()
	media := t.TempDir()
	writeCapture(t, filepath.Join(media, "100TEST", "DSC00001.JPG"), 1000, 1)
	we := startWatcher(t, media, nil, nil)
	if m := we.w.completionMode(); m.Mode != ModeLease || !strings.Contains(m.Why, filepath.Join(media, "100TEST")) {
		t.Fatalf("completion mode after the start rescan: %+v", m)
	}
}

// TestWatcherLeaseFallbackSettle: where the kernel gives no leases, the watcher
// says so (mode settle, with the folder and the reason) and a capture
// completes after the settle window, not at its close.
func TestWatcherLeaseFallbackSettle(t *testing.T) {
	t.Parallel()
	media := t.TempDir()
	dir := filepath.Join(media, "100TEST")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	settle := 700 * time.Millisecond
	we := startWatcherWith(t, media, nil, func(c *Config) { c.Settle = settle }, noLeases)
	start := time.Now()
	writeCapture(t, filepath.Join(dir, "DSC00001.JPG"), 100<<10, 1)
	waitFor(t, 5*time.Second, "queued", func() bool { return we.queued("100TEST/DSC00001.JPG") })
	if el := time.Since(start); el < settle {
		t.Fatalf("queued %v after it was written, before the settle window %v", el, settle)
	}
	m := we.w.completionMode()
	if m.Mode != ModeSettle || !strings.Contains(m.Why, "leases refused on "+dir) || !strings.Contains(m.Why, "CAP_LEASE") {
		t.Fatalf("completion mode %+v, want settle with the folder and CAP_LEASE", m)
	}
}

// TestWatcherLeaseRefusedByKernel pins the kernel's refusal the fallback relies
// on: a lease on a file of another owner, without CAP_LEASE, is refused
// (EACCES), reported as errNoLease, and leaseWhy names CAP_LEASE. As root,
// CAP_LEASE is dropped from one locked thread's effective set (the thread
// is discarded afterwards).
func TestWatcherLeaseRefusedByKernel(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "DSC00001.JPG")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	} else {
		p = "/etc/passwd" // another owner's readable file
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if os.Geteuid() == 0 {
			if err := dropThreadCap(unix.CAP_LEASE); err != nil {
				errc <- err
				return
			}
		}
		_, err := openForWriting(p)
		errc <- err
	}()
	err := <-errc
	if !errors.Is(err, errNoLease) || !errors.Is(err, unix.EACCES) {
		t.Fatalf("lease on another owner's file without CAP_LEASE: %v, want errNoLease (EACCES)", err)
	}
	if why := leaseWhy(err); !strings.Contains(why, "CAP_LEASE") {
		t.Fatalf("leaseWhy: %q", why)
	}
}

// dropThreadCap removes capability c from the calling thread's effective
// set.
func dropThreadCap(c int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[c/32].Effective &^= 1 << (uint(c) % 32)
	return unix.Capset(&hdr, &data[0])
}

// BenchmarkOpenForWriting is the cost of one writer check (open, lease
// taken and dropped, close) on a file nobody writes; the poll interval
// leaseRecheck rests on it.
func BenchmarkOpenForWriting(b *testing.B) {
	p := filepath.Join(b.TempDir(), "DSC00001.JPG")
	if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if w, err := openForWriting(p); err != nil || w {
			b.Fatalf("writing=%v err=%v", w, err)
		}
	}
}

// BenchmarkInotifyDelivery is the time from a write to its fsnotify event
// in the reader (a write, then the event waited for), an upper bound of
// what quietGap waits for: the last Write events of a writer that closed.
func BenchmarkInotifyDelivery(b *testing.B) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		b.Fatal(err)
	}
	defer fw.Close()
	dir := b.TempDir()
	if err := fw.Add(dir); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "DSC00001.JPG"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	<-fw.Events // its Create
	buf := make([]byte, 64<<10)
	var worst time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		for ev := range fw.Events {
			if ev.Has(fsnotify.Write) {
				break
			}
		}
		worst = max(worst, time.Since(t0))
	}
	b.ReportMetric(float64(worst.Microseconds()), "max-µs")
}
