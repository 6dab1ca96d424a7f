package daemon

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// fsEventsUntil returns the fsnotify events for each name that arrived
// before the Create of sentinel (which it makes): events come in order, so
// nothing for those names is left behind. It fails when none comes.
func fsEventsUntil(t *testing.T, fw *fsnotify.Watcher, sentinel string) map[string][]fsnotify.Op {
	t.Helper()
	if err := os.WriteFile(sentinel, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := map[string][]fsnotify.Op{}
	for {
		select {
		case ev := <-fw.Events:
			if ev.Name == sentinel && ev.Has(fsnotify.Create) {
				return got
			}
			got[ev.Name] = append(got[ev.Name], ev.Op)
		case err := <-fw.Errors:
			t.Fatalf("watch error: %v", err)
		case <-time.After(within(30 * time.Second)):
			t.Fatalf("no event for %s", sentinel)
		}
	}
}

// TestWatcherFsnotifyRenameOps pins what the watcher relies on in fsnotify
// against real inotify, through its exported Op bits and Name only: a file
// renamed into a watched folder (from the same folder or from outside the
// tree) shows as Create on its new name, its old name (when watched) as
// Rename, and the rename brings no Write; a file created in place shows
// as Create too.
func TestWatcherFsnotifyRenameOps(t *testing.T) {
	t.Parallel()
	dir, outside := t.TempDir(), t.TempDir()
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	if err := fw.Add(dir); err != nil {
		t.Fatal(err)
	}
	tmp, final := filepath.Join(dir, "DSC00001.JPG.tmp"), filepath.Join(dir, "DSC00001.JPG")
	writeCapture(t, tmp, 10<<10, 1)
	if ops := fsEventsUntil(t, fw, filepath.Join(dir, "s1"))[tmp]; len(ops) == 0 || ops[0] != fsnotify.Create {
		t.Fatalf("file created in place: %v, want Create first", ops)
	}
	if err := os.Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	src, moved := filepath.Join(outside, "x"), filepath.Join(dir, "DSC00002.JPG")
	writeCapture(t, src, 10<<10, 2)
	if err := os.Rename(src, moved); err != nil {
		t.Fatal(err)
	}
	got := fsEventsUntil(t, fw, filepath.Join(dir, "s2"))
	if ops := got[tmp]; len(ops) != 1 || ops[0] != fsnotify.Rename {
		t.Fatalf("old name of a rename: %v, want Rename alone", ops)
	}
	if ops := got[final]; len(ops) != 1 || ops[0] != fsnotify.Create {
		t.Fatalf("new name of a rename: %v, want Create alone", ops)
	}
	if ops := got[moved]; len(ops) != 1 || ops[0] != fsnotify.Create {
		t.Fatalf("file moved in from outside the tree: %v, want Create alone", ops)
	}
}

// TestWatcherWriterLease pins the kernel behaviour writerCheck relies
// on, on the file system the tests run on: a file open for writing (by
// anyone) is reported as such, and no longer once closed; a reader does
// not count.
func TestWatcherWriterLease(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "DSC00001.JPG")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if w, err := openForWriting(p); err != nil || !w {
		t.Fatalf("file open for writing: writing=%v err=%v", w, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if w, err := openForWriting(p); err != nil || w {
		t.Fatalf("closed file (open for reading only): writing=%v err=%v", w, err)
	}
	rw, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	if w, err := openForWriting(p); err != nil || !w {
		t.Fatalf("file open read-write: writing=%v err=%v", w, err)
	}
}

// TestWatcherRenameOfOpenFileSettles: a file renamed into place while its
// writer still has it open is not complete at once; it completes once the
// writer closed it.
func TestWatcherRenameOfOpenFileSettles(t *testing.T) {
	t.Parallel()
	media := t.TempDir()
	if err := os.MkdirAll(filepath.Join(media, "100TEST"), 0o755); err != nil {
		t.Fatal(err)
	}
	we := startWatcher(t, media, nil, func(c *Config) { c.Settle = 400 * time.Millisecond })
	tmp := filepath.Join(media, "100TEST", "DSC00003.JPG.tmp")
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(media, "100TEST", "DSC00003.JPG")); err != nil {
		t.Fatal(err)
	}
	// Until the watcher handled the Create (a hook runs in its loop).
	final := filepath.Join(media, "100TEST", "DSC00003.JPG")
	for {
		var pending bool
		done := make(chan struct{})
		we.w.hooks <- func() { _, pending = we.w.pending[final]; close(done) }
		<-done
		if pending || we.queued("100TEST/DSC00003.JPG") {
			break
		}
	}
	if we.queued("100TEST/DSC00003.JPG") {
		t.Fatal("a file still open for writing was queued when renamed into place")
	}
	if _, err := f.Write(make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "queued after the close", func() bool { return we.queued("100TEST/DSC00003.JPG") })
	items, err := we.q.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Capture.Size != 200<<10 {
		t.Fatalf("want the whole file queued once, got %+v", items)
	}
}
