package daemon

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/camftpd/camftpd/queue"
)

// watcher turns file system events into complete captures on the queue.
// Events are hints: one goroutine (run) owns all state. A wanted file
// that had an event is looked at after a quiet gap: complete as soon as
// no process holds it open for writing and its size and mtime held still
// (lease mode, see leasemode.go); where the kernel cannot tell (no file
// leases), complete when a settle window passed without events (settle
// mode). A file renamed into place is no special case: its Create comes
// with no writer. At start and on an inotify overflow the whole tree is
// rescanned against the queue. Its methods are also in rescan.go,
// backlog.go and leasemode.go, which call each other with these (see
// doc.go's file layers).
type watcher struct {
	root   string
	settle time.Duration
	match  *matcher
	q      *queue.Queue
	log    *slog.Logger
	now    func() time.Time

	// onComplete is called (from the run goroutine) after a capture was
	// enqueued; added is false when the queue already knew it.
	onComplete    func(it queue.Item, added bool, completedAt time.Time)
	beforeEnqueue func(path string, completedAt time.Time)
	// onSettling is called (from the run goroutine) when a file starts its
	// settle window: an upload is likely within a settle window.
	onSettling func()
	// onWanted is called (from the run goroutine) when a held capture was
	// made pending because it was protected.
	onWanted func(it queue.Item, why string)

	backlogAll    bool // backlog = "all"
	onlyProtected bool
	// firstScan is true during the start rescan of a queue without a
	// baseline: the captures it completes are the card's backlog.
	firstScan bool
	heldNow   int // captures held as backlog by the current rescan
	// scanReady collects, during a rescan, the captures found complete
	// (nil otherwise: they are enqueued at once).
	scanReady []doneFile

	pending map[string]*pendingFile
	fw      *fsnotify.Watcher
	timer   *time.Timer
	armed   bool
	due     time.Time

	// retry holds, by path, the captures whose enqueue failed (a full
	// state disk): they are enqueued again at retryAt (nil: none planned),
	// after a backoff of 1 s doubling to 1 min (see keepForRetry).
	retry        map[string]doneFile
	retryAt      <-chan time.Time
	retryBackoff time.Duration
	// onQueueErr is called (from the run goroutine) when an enqueue failed.
	onQueueErr func(file string, err error)

	hooks chan func() // tests: run a function inside the loop
	// lease: where file leases tell when a capture is closed.
	lease leases
	// ctx is run's: a rescan stops when it ends.
	ctx context.Context

	rescans   atomic.Int64
	overflows atomic.Int64
	tracking  atomic.Int64
}

type pendingFile struct {
	last  time.Time // last event
	size  int64
	mtime time.Time
	ok    bool // size/mtime valid
	// settle: it waits for the settle window (no leases in its folder, or
	// empty with no writer: a camera may create it first and write later);
	// otherwise it is looked at quietGap after its last event.
	settle bool
	// recheck: a writer held it at the last look; not looked at again
	// before this (lease mode).
	recheck time.Time
}

func newWatcher(c *Config, q *queue.Queue, log *slog.Logger) *watcher {
	return &watcher{
		root:    filepath.Clean(c.MediaDir),
		settle:  c.Settle,
		match:   newMatcher(c),
		q:       q,
		log:     log,
		now:     time.Now,
		pending: map[string]*pendingFile{},
		hooks:   make(chan func()),
		lease:   leases{writers: openForWriting},

		backlogAll:    c.Backlog == "all",
		onlyProtected: c.OnlyProtected,
	}
}

// run watches until ctx ends. It returns an error when the media directory
// cannot be watched at all.
func (w *watcher) run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return errors.New("cannot start inotify: " + err.Error() + " (raise fs.inotify.max_user_instances)")
	}
	defer fw.Close()
	w.fw = fw
	w.timer = time.NewTimer(time.Hour)
	w.timer.Stop()
	defer w.timer.Stop()
	if err := fw.Add(w.root); err != nil {
		return errors.New("cannot watch media directory " + w.root + ": " + unwrapPathErr(err) + " (is the card mounted?)")
	}
	w.ctx = ctx
	w.startScan()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			w.event(ev)
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.overflows.Add(1)
				w.log.Warn("inotify queue overflowed; rescanning the media directory")
				w.rescanBatched("overflow")
			} else {
				w.log.Warn("watch error", "err", err)
			}
		case <-w.timer.C:
			w.armed = false
			w.checkDue()
		case <-w.retryAt:
			w.retryEnqueue()
		case f := <-w.hooks:
			f()
		}
		w.tracking.Store(int64(len(w.pending)))
	}
}

// walk watches dir and its subdirectories and calls fn for every file.
func (w *watcher) walk(dir string, fn func(string, fs.DirEntry)) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if w.stopped() {
			// SIGTERM: what is left is found by the next start's rescan.
			return filepath.SkipAll
		}
		if err != nil {
			if p == dir {
				return err
			}
			return nil
		}
		if d.IsDir() {
			if p != w.root && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if err := w.fw.Add(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				w.log.Warn("cannot watch directory", "dir", p, "err", err)
			}
			return nil
		}
		if d.Type().IsRegular() {
			fn(p, d)
		}
		return nil
	})
}

func (w *watcher) rel(p string) (string, bool) { return relUnder(w.root, p) }

// relUnder returns p relative to root with forward slashes (a capture's
// Rel), false when p is root itself or outside it.
func relUnder(root, p string) (string, bool) {
	r, err := filepath.Rel(root, p)
	if err != nil || r == "." || strings.HasPrefix(r, "..") {
		return "", false
	}
	return filepath.ToSlash(r), true
}

func (w *watcher) event(ev fsnotify.Event) {
	p := ev.Name
	switch {
	case ev.Has(fsnotify.Create):
		st, err := os.Lstat(p)
		if err != nil {
			return
		}
		if st.IsDir() {
			if rel, ok := w.rel(p); ok && !strings.HasPrefix(filepath.Base(rel), ".") {
				// A new folder (DCIM/101XXXXX): watch it, then look at what
				// was written into it before the watch existed.
				w.walk(p, func(f string, _ fs.DirEntry) { w.consider(f) })
			}
			return
		}
		if !st.Mode().IsRegular() {
			return
		}
		w.touch(p, st)
	case ev.Has(fsnotify.Write) || ev.Has(fsnotify.Chmod):
		st, err := os.Lstat(p)
		if err != nil || !st.Mode().IsRegular() {
			return
		}
		if !ev.Has(fsnotify.Write) && w.protectedNow(p, st) {
			return
		}
		w.touch(p, st)
	case ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename):
		delete(w.pending, p)
	}
}

// touch records an event on a wanted file: it is pending, looked at
// quietGap after its last event (settle window: without leases).
func (w *watcher) touch(p string, st os.FileInfo) {
	if rel, ok := w.rel(p); !ok || !w.match.wanted(rel) {
		return
	}
	now := w.now()
	pf := w.pending[p]
	if pf == nil {
		pf = &pendingFile{}
		w.pending[p] = pf
		w.settling()
	}
	pf.last, pf.settle = now, w.noLeaseIn(p)
	pf.size, pf.mtime, pf.ok = st.Size(), st.ModTime(), true
	w.arm(w.dueOf(pf))
}

// dueOf is when a pending file is looked at next.
func (w *watcher) dueOf(pf *pendingFile) time.Time {
	if pf.settle {
		return pf.last.Add(w.settle)
	}
	return leaseDue(pf)
}

// consider looks at a file found by a scan that the queue does not know:
// quiet for a settle window, it is complete now; otherwise it waits.
func (w *watcher) consider(p string) {
	f, ok := w.considerFile(p)
	switch {
	case !ok:
	case w.scanReady != nil:
		w.scanReady = append(w.scanReady, f)
		if len(w.scanReady) == scanBatch {
			w.flushScan()
		}
	default:
		w.completeAll([]doneFile{f})
	}
}

// scanBatch is how many complete captures a rescan enqueues in one queue
// transaction (one fsync): a first start on a card of 2,000 shots took
// 1.9-4.1 s with one transaction per shot, 0.65-0.88 s with batches
// (BenchmarkFirstStartBacklog, 3 runs each).
const scanBatch = 256

// rescanBatched is rescan with the captures it finds complete enqueued
// scanBatch at a time instead of one by one.
func (w *watcher) rescanBatched(why string) (complete bool) {
	w.scanReady = make([]doneFile, 0, scanBatch)
	complete = w.rescan(why)
	w.flushScan()
	w.scanReady = nil
	return complete
}

func (w *watcher) flushScan() {
	ready := w.scanReady
	w.scanReady = make([]doneFile, 0, scanBatch)
	w.completeAll(ready)
}

// considerFile is consider without the enqueue: it returns the file when
// it is complete now.
func (w *watcher) considerFile(p string) (doneFile, bool) {
	rel, ok := w.rel(p)
	if !ok || !w.match.wanted(rel) {
		return doneFile{}, false
	}
	if _, busy := w.pending[p]; busy {
		return doneFile{}, false
	}
	st, err := os.Lstat(p)
	if err != nil || !st.Mode().IsRegular() {
		return doneFile{}, false
	}
	now := w.now()
	if now.Sub(st.ModTime()) >= w.settle {
		return doneFile{p, rel, st, now}, true
	}
	// Recent: complete once no writer holds it (after the settle window
	// without leases).
	pf := &pendingFile{last: now, size: st.Size(), mtime: st.ModTime(), ok: true, settle: w.noLeaseIn(p)}
	w.pending[p] = pf
	w.settling()
	w.arm(w.dueOf(pf))
	return doneFile{}, false
}

func (w *watcher) settling() {
	if w.onSettling != nil {
		w.onSettling()
	}
}

func (w *watcher) arm(at time.Time) {
	if w.armed && !at.Before(w.due) {
		return
	}
	w.timer.Stop()
	w.armed, w.due = true, at
	w.timer.Reset(max(at.Sub(w.now()), 0))
}

// checkDue completes every pending file that is complete now and plans
// the next look at the others.
func (w *watcher) checkDue() {
	now := w.now()
	var next time.Time
	var ready []doneFile
	for p, pf := range w.pending {
		due := w.dueOf(pf)
		if !due.After(now) {
			f, done, gone := w.look(p, pf, now)
			switch {
			case gone:
				delete(w.pending, p) // gone before it was complete: nothing was queued
				continue
			case done:
				delete(w.pending, p)
				ready = append(ready, f)
				continue
			}
			due = w.dueOf(pf)
		}
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	w.completeAll(ready)
	if !next.IsZero() {
		w.arm(next)
	}
}

// look decides, at its due time, whether pending file p is complete
// (done), gone, or waits (pf updated for its next look).
func (w *watcher) look(p string, pf *pendingFile, now time.Time) (f doneFile, done, gone bool) {
	st, err := os.Lstat(p)
	if err != nil || !st.Mode().IsRegular() {
		return doneFile{}, false, true
	}
	at := pf.last.Add(w.settle)
	if !pf.settle {
		writing, settle := w.writerCheck(p)
		switch {
		case settle:
			pf.settle = true
			return doneFile{}, false, false
		case writing:
			pf.recheck = now.Add(recheckIn(pf.last, now))
			return doneFile{}, false, false
		case st.Size() == 0 && now.Before(at):
			// No writer and empty: a camera may create a file first and
			// write it later; it waits for the settle window.
			pf.recheck = at
			return doneFile{}, false, false
		}
		at = now
	}
	if !pf.ok || st.Size() != pf.size || !st.ModTime().Equal(pf.mtime) {
		// Changed without an event (events are hints; or the writer's
		// last events are still queued): look again.
		pf.last, pf.size, pf.mtime, pf.ok = now, st.Size(), st.ModTime(), true
		return doneFile{}, false, false
	}
	rel, _ := w.rel(p)
	return doneFile{p, rel, st, at}, true, false
}

type doneFile struct {
	path, rel string
	st        os.FileInfo
	at        time.Time
}

// completeAll queues files that completed together in capture order
// (modification time, then name) and in one queue transaction: a burst's
// shots go out in the order they were taken, and 20 files cost one fsync,
// not 20.
func (w *watcher) completeAll(files []doneFile) {
	sort.Slice(files, func(i, j int) bool {
		a, b := files[i].st.ModTime(), files[j].st.ModTime()
		if !a.Equal(b) {
			return a.Before(b)
		}
		return files[i].path < files[j].path
	})
	var caps []queue.Capture
	var keep []doneFile
	for _, f := range files {
		if w.match.pairSkip(f.path) {
			w.log.Debug("skipped by raw_jpeg choice", "file", f.rel, "raw_jpeg", w.match.rawJPEG)
			continue
		}
		c, err := captureOf(f.path, f.rel, f.st)
		if err != nil {
			// Gone or changed since it settled: a later event or rescan
			// looks at it again.
			w.log.Warn("cannot read a completed capture; not queued", "file", f.rel, "err", err)
			continue
		}
		c.Hold = w.holdReason(f.st)
		if w.beforeEnqueue != nil {
			w.beforeEnqueue(f.path, f.at)
		}
		caps = append(caps, c)
		keep = append(keep, f)
	}
	if len(caps) == 0 {
		return
	}
	its, added, err := w.q.EnqueueBatch(caps)
	if err != nil && len(keep) > 1 {
		// One bad record must not hold the others back: one by one.
		w.log.Warn("cannot queue captures in one transaction; queuing one by one", "files", len(caps), "err", err)
		for _, f := range keep {
			w.completeAll([]doneFile{f})
		}
		return
	}
	if err != nil {
		w.keepForRetry(keep[0], err)
		return
	}
	for i, it := range its {
		if added[i] && it.State == queue.Held {
			if it.Reason == HoldBacklog {
				w.heldNow++
			}
			w.log.Debug("held", "file", keep[i].rel, "id", it.ID, "reason", it.Reason)
		} else if added[i] {
			w.log.Debug("queued", "file", keep[i].rel, "id", it.ID, "size", keep[i].st.Size())
		}
		if w.onComplete != nil {
			w.onComplete(it, added[i], keep[i].at)
		}
	}
}

// keepForRetry keeps a capture whose enqueue failed, to enqueue it again
// after a backoff: it is not forgotten until the next rescan.
func (w *watcher) keepForRetry(f doneFile, err error) {
	if w.retry == nil {
		w.retry = map[string]doneFile{}
	}
	w.retry[f.path] = f
	if w.onQueueErr != nil {
		w.onQueueErr(f.rel, err)
	}
	if w.retryAt != nil {
		w.log.Error("cannot queue capture; it is queued again with the others", "file", f.rel, "err", err)
		return
	}
	in := max(w.retryBackoff, time.Second)
	w.retryAt = time.After(in)
	w.retryBackoff = min(2*in, time.Minute)
	w.log.Error("cannot queue capture; trying again", "file", f.rel, "err", err, "retry_in", in)
}

// retryEnqueue enqueues again the captures kept by keepForRetry.
func (w *watcher) retryEnqueue() {
	files := slices.Collect(maps.Values(w.retry))
	w.retry, w.retryAt = nil, nil
	w.completeAll(files)
	if len(w.retry) == 0 {
		w.retryBackoff = 0
		w.log.Info("captures whose enqueue had failed are queued", "files", len(files))
	}
}

// captureOf describes a completed file for the queue, with its content
// fingerprint (its identity with rel and size).
func captureOf(p, rel string, st os.FileInfo) (queue.Capture, error) {
	c := queue.Capture{Path: p, Rel: rel, Size: st.Size(), ModTime: st.ModTime(), Priority: capturePriority(p, isProtected(st))}
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		c.Inode = uint64(s.Ino)
	}
	fp, now, err := fingerprintStat(p)
	if err != nil {
		return c, err
	}
	if now.Size() != c.Size || !now.ModTime().Equal(c.ModTime) {
		return c, errors.New("changed since it settled")
	}
	c.Fingerprint = fp
	return c, nil
}

// fingerprintFile returns the content fingerprint of the file at p.
func fingerprintFile(p string) ([]byte, error) {
	fp, _, err := fingerprintStat(p)
	return fp, err
}

// fingerprintStat returns the fingerprint of the file at p and what its
// open descriptor says of it.
func fingerprintStat(p string) ([]byte, os.FileInfo, error) {
	f, err := openNoFollow(p) // a link or FIFO put there after the Lstat: refused, never blocks
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	fp, err := queue.Fingerprint(f, st.Size())
	return fp, st, err
}
