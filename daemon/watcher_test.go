package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camftpd/camftpd/queue"
)

type watchEnv struct {
	t     *testing.T
	media string
	q     *queue.Queue
	w     *watcher
	stop  func()
}

func startWatcher(t *testing.T, media string, q *queue.Queue, cfgMod func(*Config)) *watchEnv {
	t.Helper()
	return startWatcherWith(t, media, q, cfgMod, nil)
}

// noLeases makes the watcher's writer check answer as a kernel that gives
// no leases (errNoLease), for the settle fallback.
func noLeases(w *watcher) { w.lease.writers = refuseLeases }

// refuseLeases answers as openForWriting where the kernel refuses leases
// (not the file's owner, no CAP_LEASE: see TestWatcherLeaseRefusedByKernel).
func refuseLeases(p string) (bool, error) {
	return false, fmt.Errorf("%w: %s: %w", errNoLease, p, syscall.EACCES)
}

// startWatcherWith is startWatcher with wMod applied to the watcher
// before it runs.
func startWatcherWith(t *testing.T, media string, q *queue.Queue, cfgMod func(*Config), wMod func(*watcher)) *watchEnv {
	t.Helper()
	if q == nil {
		var err error
		q, err = queue.Open(filepath.Join(t.TempDir(), "q.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
	}
	cfg := &Config{MediaDir: media, Settle: 300 * time.Millisecond, Include: DefaultPatterns, RawJPEG: "both"}
	if cfgMod != nil {
		cfgMod(cfg)
	}
	w := newWatcher(cfg, q, testLogger(t))
	if wMod != nil {
		wMod(w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.run(ctx) }()
	// Wait for the start rescan to be done (the loop runs hooks after it).
	ran := make(chan struct{})
	select {
	case w.hooks <- func() { close(ran) }:
		<-ran
	case err := <-done:
		t.Fatalf("watcher stopped: %v", err)
	}
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watcher: %v", err)
		}
	}
	t.Cleanup(func() {
		select {
		case <-ctx.Done():
		default:
			stop()
		}
	})
	return &watchEnv{t: t, media: media, q: q, w: w, stop: stop}
}

func (we *watchEnv) rels() []string {
	items, err := we.q.List()
	if err != nil {
		we.t.Fatal(err)
	}
	var out []string
	for _, it := range items {
		out = append(out, it.Capture.Rel)
	}
	sort.Strings(out)
	return out
}

func (we *watchEnv) queued(rel string) bool {
	for _, r := range we.rels() {
		if r == rel {
			return true
		}
	}
	return false
}

// TestWatcherSettleWindow: where the kernel gives no leases, a file
// completes when a settle window passed without events.
func TestWatcherSettleWindow(t *testing.T) {
	t.Parallel()
	media := t.TempDir()
	we := startWatcherWith(t, media, nil, func(c *Config) { c.Settle = 400 * time.Millisecond }, noLeases)
	p := filepath.Join(media, "100TEST", "DSC00001.JPG")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	// Writes 250 ms apart (inside the settle window) keep it incomplete.
	var last time.Time
	for range 4 {
		last = time.Now() // before the write: its event cannot come earlier
		if _, err := f.Write(make([]byte, 100<<10)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond) // the writer's pause (inside the settle window) under test
		if we.queued("100TEST/DSC00001.JPG") {
			t.Fatal("queued while still being written")
		}
	}
	f.Close()
	waitFor(t, 3*time.Second, "queued", func() bool { return we.queued("100TEST/DSC00001.JPG") })
	// Timed from the last write itself: timing from after the 250 ms sleep
	// failed 1 run in 10-20 under -race when the sleep overshot.
	if el := time.Since(last); el < 400*time.Millisecond {
		t.Fatalf("queued %v after the last write, before the settle window", el)
	}
	items, _ := we.q.List()
	if len(items) != 1 || items[0].Capture.Size != 400<<10 {
		t.Fatalf("want one complete item, got %+v", items)
	}
	time.Sleep(within(600 * time.Millisecond)) // a quiet window under test: the capture is not queued twice
	if n := len(we.rels()); n != 1 {
		t.Fatalf("queued %d times", n)
	}
}

func TestWatcherRenameIntoPlaceCountsAtOnce(t *testing.T) {
	t.Parallel()
	media := t.TempDir()
	if err := os.MkdirAll(filepath.Join(media, "100TEST"), 0o755); err != nil {
		t.Fatal(err)
	}
	we := startWatcher(t, media, nil, func(c *Config) { c.Settle = 10 * time.Second })
	tmp := filepath.Join(media, "100TEST", "DSC00002.JPG.tmp")
	writeCapture(t, tmp, 300<<10, 2)
	start := time.Now()
	if err := os.Rename(tmp, filepath.Join(media, "100TEST", "DSC00002.JPG")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "renamed file queued without waiting for settle", func() bool {
		return we.queued("100TEST/DSC00002.JPG")
	})
	t.Logf("renamed file queued after %v (settle window 10s)", time.Since(start))
	if r := we.rels(); len(r) != 1 {
		t.Fatalf("queued: %v", r)
	}
}

func TestWatcherRecursiveNewFolders(t *testing.T) {
	t.Parallel()
	media := t.TempDir()
	we := startWatcher(t, media, nil, nil)
	// Folders appear while shooting; files land in them at once.
	var want []string
	for d := 100; d < 103; d++ {
		for i := range 5 {
			rel := fmt.Sprintf("%dMSDCF/sub/DSC%05d.JPG", d, d*10+i)
			writeCapture(t, filepath.Join(media, rel), 10<<10, uint64(i))
			want = append(want, rel)
		}
	}
	waitFor(t, 5*time.Second, "all files in new folders", func() bool { return len(we.rels()) == len(want) })
	sort.Strings(want)
	if got := fmt.Sprint(we.rels()); got != fmt.Sprint(want) {
		t.Fatalf("got %v want %v", got, want)
	}
}

// TestWatcherOverflowRescan overflows the real inotify queue (the loop is
// held while more than fs.inotify.max_queued_events events arrive): the
// captures whose events were lost are found by the rescan.
func TestWatcherOverflowRescan(t *testing.T) {
	t.Parallel()
	media := t.TempDir()
	junk := filepath.Join(media, "junk")
	if err := os.MkdirAll(junk, 0o755); err != nil {
		t.Fatal(err)
	}
	we := startWatcher(t, media, nil, nil)
	maxq := 16384
	if b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events"); err == nil {
		if _, err := fmt.Sscan(string(b), &maxq); err != nil {
			t.Fatalf("max_queued_events %q: %v", b, err)
		}
	}
	hold, release := make(chan struct{}), make(chan struct{})
	go func() { we.w.hooks <- func() { close(hold); <-release } }()
	<-hold
	for i := range maxq + 2000 {
		f, err := os.Create(filepath.Join(junk, fmt.Sprintf("n%06d.txt", i)))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	// These events are lost: the kernel queue is full.
	for i := range 5 {
		writeCapture(t, filepath.Join(media, "100TEST", fmt.Sprintf("DSC%05d.JPG", i)), 4<<10, uint64(i))
	}
	close(release)
	waitFor(t, 20*time.Second, "captures found by the overflow rescan", func() bool { return len(we.rels()) == 5 })
	if we.w.overflows.Load() == 0 {
		t.Fatal("no overflow was seen")
	}
	t.Logf("overflows %d, rescans %d", we.w.overflows.Load(), we.w.rescans.Load())
}

func TestWatcherStartRescanPatternsAndRawJPEG(t *testing.T) {
	t.Parallel()
	media := t.TempDir()
	files := []string{
		"100TEST/DSC00001.JPG", "100TEST/DSC00001.ARW", // pair: jpeg only -> JPG
		"100TEST/DSC00002.arw",                         // lone RAW: sent
		"100TEST/DSC00003.HIF", "100TEST/DSC00003.CR3", // pair: HIF
		"100TEST/C0001.MP4",
		"100TEST/DSC00001.XMP", "100TEST/.hidden.JPG", "100TEST/notes.txt",
		"100TEST/skip/DSC00009.JPG", // excluded
	}
	q := cardBeforeStart(t, media, files)
	// The files are there before the first start and are to be queued:
	// backlog = "all" (the default "new" holds them).
	mod := func(c *Config) { c.RawJPEG = "jpeg"; c.Exclude = []string{"*/skip/*"}; c.Backlog = "all" }
	we := startWatcher(t, media, q, mod)
	want := []string{"100TEST/C0001.MP4", "100TEST/DSC00001.JPG", "100TEST/DSC00002.arw", "100TEST/DSC00003.HIF"}
	waitFor(t, 3*time.Second, "start rescan", func() bool { return len(we.rels()) >= len(want) })
	time.Sleep(within(100 * time.Millisecond)) // a quiet window under test: nothing beyond want is queued
	if got := fmt.Sprint(we.rels()); got != fmt.Sprint(want) {
		t.Fatalf("got %v want %v", got, want)
	}
	items, _ := q.List()
	for _, it := range items {
		if it.Capture.Rel == "100TEST/DSC00001.JPG" && it.Capture.Priority <= 0 {
			t.Errorf("JPEG without priority: %+v", it.Capture)
		}
	}
	// A second start (daemon restarted) finds everything queued already.
	we.stop()
	we2 := startWatcher(t, media, q, mod) // returns once its start rescan is done (a hook run after it)
	if got := fmt.Sprint(we2.rels()); got != fmt.Sprint(want) {
		t.Fatalf("after restart got %v want %v", got, want)
	}
	// raw_jpeg = "raw" keeps the RAW of a pair.
	m := newMatcher(&Config{Include: DefaultPatterns, RawJPEG: "raw"})
	if !m.pairSkip(filepath.Join(media, "100TEST/DSC00001.JPG")) || m.pairSkip(filepath.Join(media, "100TEST/DSC00001.ARW")) {
		t.Fatal("raw_jpeg=raw should skip the JPEG of a pair and keep the RAW")
	}
}

// cardBeforeStart writes files (relative to media) as captures an hour
// old, there before the watcher's first start, and opens a fresh queue
// (closed at the test's end).
func cardBeforeStart(t *testing.T, media string, files []string) *queue.Queue {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	for i, f := range files {
		p := filepath.Join(media, f)
		writeCapture(t, p, 1000+i, uint64(i))
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	q, err := queue.Open(filepath.Join(t.TempDir(), "q.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// TestWatcherRootFolderReconciled: captures directly in media_dir (a
// camera whose media_dir is the DCIM subfolder itself) are reconciled at
// the next start like any folder's: known ones are not queued again, one
// deleted from the card is marked absent, and no reconcile error is logged
// (the queue refused the root folder's empty key, and every start logged
// an ERROR and considered the files one at a time).
func TestWatcherRootFolderReconciled(t *testing.T) {
	t.Parallel()
	media := t.TempDir()
	q := cardBeforeStart(t, media, []string{"DSC00001.JPG", "DSC00002.JPG"})
	var logs lockedBuffer
	logTo := func(w *watcher) { w.log = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, tWriter{t}), nil)) }
	mod := func(c *Config) { c.Backlog = "all" }
	we := startWatcherWith(t, media, q, mod, logTo)
	want := []string{"DSC00001.JPG", "DSC00002.JPG"}
	waitFor(t, 3*time.Second, "the root folder's captures queued", func() bool { return len(we.rels()) == len(want) })
	we.stop()
	if err := os.Remove(filepath.Join(media, "DSC00002.JPG")); err != nil {
		t.Fatal(err)
	}
	we2 := startWatcherWith(t, media, q, mod, logTo) // returns once its start rescan is done
	if got := fmt.Sprint(we2.rels()); got != fmt.Sprint(want) {
		t.Fatalf("after the restart the queue holds %v, want %v (each once)", got, want)
	}
	items, err := q.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if absent := !it.AbsentSince.IsZero(); absent != (it.Capture.Rel == "DSC00002.JPG") {
			t.Errorf("%s: absent %v after the restart; want only the deleted DSC00002.JPG absent", it.Capture.Rel, absent)
		}
	}
	if l := logs.String(); strings.Contains(l, "cannot reconcile") {
		t.Errorf("the root folder was not reconciled:\n%s", l)
	}
}

// TestWatcherBurstQueuedInCaptureOrder: files that complete in the same
// settle check are queued by modification time (then name), not in map
// order, so a burst goes out in the order it was shot.
func TestWatcherBurstQueuedInCaptureOrder(t *testing.T) {
	t.Parallel()
	media := t.TempDir()
	we := startWatcher(t, media, nil, func(c *Config) { c.Settle = 500 * time.Millisecond })
	dir := filepath.Join(media, "100TEST")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the new folder watched", func() bool { return slices.Contains(we.w.fw.WatchList(), dir) })
	// Modification times inside the settle window: a scan that meets a
	// file does not take it as complete at once.
	base := time.Now()
	var want []string
	for i := range 30 {
		// Names in reverse of capture order, to tell mtime order from name order.
		name := fmt.Sprintf("DSC%05d.JPG", 100-i)
		writeCapture(t, filepath.Join(dir, name), 1000, uint64(i))
		mt := base.Add(time.Duration(i) * time.Millisecond)
		if err := os.Chtimes(filepath.Join(dir, name), mt, mt); err != nil {
			t.Fatal(err)
		}
		want = append(want, "100TEST/"+name)
	}
	waitFor(t, 5*time.Second, "30 queued", func() bool { return len(we.rels()) == 30 })
	items, err := we.q.List()
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Seq < items[j].Seq })
	for i, it := range items {
		if it.Capture.Rel != want[i] {
			t.Fatalf("queue position %d holds %s, want %s (capture order)", i, it.Capture.Rel, want[i])
		}
	}
}
