package daemon

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// How the watcher tells that a capture is complete. In lease mode a
// capture is complete as soon as no process holds it open for writing
// (openForWriting: a read lease is refused while a writer holds the file);
// in settle mode, the fallback where the kernel gives no leases (a file
// system without them, a daemon that is neither the files' owner nor has
// CAP_LEASE), when no event came for a settle window.
const (
	ModeLease  = "lease"
	ModeSettle = "settle"
)

// quietGap is how long a wanted file must be without events before its
// writer is looked for. Correctness does not rest on it (no writer means
// the content is final; a late event costs a second look, and the queue
// knows the capture): it spares a lease check per event while a writer
// writes, and lets fsnotify hand over the events already queued (a
// writer's last Write events precede its close), so that a burst's files
// that closed together are queued in one pass. Measured on the 2-core test
// host at load 9 (BenchmarkInotifyDelivery): a 64 KiB write's event
// reaches the reader in 60-120 µs on average (the worst of a run, 20-100
// ms, is the process not scheduled, which delays any check as much). 2 ms
// is 15-30 times the average and a fifth of the 10 ms goal from close to
// upload start (5 ms first: close to start p50 was 10-13 ms on loopback,
// of which the gap was half).
const quietGap = 2 * time.Millisecond

// leaseRecheck is how often a quiet file that a writer still holds open
// (a camera pausing between chunks, a file closed a little later) is
// looked at again: Linux exports no close event through fsnotify, so a
// close is seen by polling, at most leaseRecheck late. A check costs one
// open, two fcntl and one close (5.7-8.6 µs on the test host,
// BenchmarkOpenForWriting): 100 a second for an open file is under 0.1 %
// of a core (a few times that on a camera core). After leaseIdleAfter
// without an event (a file held open and idle) the interval becomes
// leaseRecheckIdle, which keeps a close seen within 25 ms.
const (
	leaseRecheck     = 10 * time.Millisecond
	leaseRecheckIdle = 25 * time.Millisecond
	leaseIdleAfter   = 2 * time.Second
)

// CompletionMode is the mode the watcher runs in and why.
type CompletionMode struct {
	Mode string `json:"mode"` // ModeLease or ModeSettle
	Why  string `json:"why"`
}

// leases is the watcher's knowledge of where file leases work: by folder,
// learnt from the captures themselves (the daemon's own probe file would
// be its own, so a lease on it says nothing of CAP_LEASE on the camera's
// files). Only the run goroutine uses dirs; mode is read by the status.
type leases struct {
	dirs   map[string]error // folder -> nil (granted) or why refused (errNoLease)
	logged bool
	mode   atomic.Pointer[CompletionMode]
	// writers is openForWriting (tests of the settle fallback replace it).
	writers func(string) (bool, error)
}

// completionMode reports the mode for the status: settle as soon as one
// folder gives no leases; lease otherwise.
func (w *watcher) completionMode() CompletionMode {
	if m := w.lease.mode.Load(); m != nil {
		return *m
	}
	return CompletionMode{Mode: ModeLease, Why: "not proven yet: no capture looked at since start"}
}

// noLeaseIn reports whether the folder of p is known to give no leases.
func (w *watcher) noLeaseIn(p string) bool {
	err, ok := w.lease.dirs[filepath.Dir(p)]
	return ok && err != nil
}

// writerCheck reports whether a process holds the file at p open for
// writing; settle is true when that cannot be told in p's folder (the
// file waits for its settle window). The first answer in a folder decides
// its mode.
func (w *watcher) writerCheck(p string) (writing, settle bool) {
	dir := filepath.Dir(p)
	if err, ok := w.lease.dirs[dir]; ok && err != nil {
		return false, true
	}
	writing, err := w.lease.writers(p)
	switch {
	case errors.Is(err, errNoLease):
		w.leaseRefused(dir, err)
		return false, true
	case err != nil:
		// Gone or not a regular file any more: the caller's Lstat sees
		// it; otherwise this file alone waits for its settle window.
		return false, true
	}
	if _, ok := w.lease.dirs[dir]; !ok {
		if w.lease.dirs == nil {
			w.lease.dirs = map[string]error{}
		}
		w.lease.dirs[dir] = nil
		if m := w.lease.mode.Load(); m == nil || m.Mode == ModeLease {
			w.lease.mode.Store(&CompletionMode{Mode: ModeLease, Why: "read leases granted on the captures in " + dir})
		}
	}
	return writing, false
}

// leaseRefused records that dir gives no leases: its files wait for the
// settle window from now on (logged once a watcher).
func (w *watcher) leaseRefused(dir string, err error) {
	if w.lease.dirs == nil {
		w.lease.dirs = map[string]error{}
	}
	w.lease.dirs[dir] = err
	why := "leases refused on " + dir + ": " + leaseWhy(err)
	w.lease.mode.Store(&CompletionMode{Mode: ModeSettle, Why: why})
	if !w.lease.logged {
		w.lease.logged = true
		w.log.Warn("cannot tell when a capture is closed; captures complete after the settle window instead", "why", why, "settle", w.settle)
		return
	}
	w.log.Debug("no file leases in a folder; its captures wait for the settle window", "why", why)
}

// leaseWhy says why the kernel refused a lease, with what to fix.
func leaseWhy(err error) string {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return err.Error()
	}
	switch errno {
	case unix.EACCES, unix.EPERM:
		return errno.Error() + " (camftpd is not the files' owner and has no CAP_LEASE)"
	case unix.EINVAL, unix.ENOSYS:
		return errno.Error() + " (the file system gives no leases, or fs.leases-enable is 0)"
	}
	return errno.Error()
}

// probeLeases decides the mode of the folder of p from p itself, once a
// folder (a rescan's first capture there).
func (w *watcher) probeLeases(p string) {
	if _, ok := w.lease.dirs[filepath.Dir(p)]; !ok {
		w.writerCheck(p)
	}
}

// leaseDue is when a pending file in lease mode is looked at next: after
// the quiet gap, and not before the recheck planned when a writer held it.
func leaseDue(pf *pendingFile) time.Time {
	due := pf.last.Add(quietGap)
	if pf.recheck.After(due) {
		return pf.recheck
	}
	return due
}

// recheckIn is the interval before looking again at a file a writer holds
// and that has had no event since last.
func recheckIn(last, now time.Time) time.Duration {
	if now.Sub(last) >= leaseIdleAfter {
		return leaseRecheckIdle
	}
	return leaseRecheck
}

// probeScanMax bounds how many folder entries probeCompletion reads
// looking for a capture.
const probeScanMax = 10000

// probeCompletion tells which completion mode a watcher of cfg's media
// folder will run in, from the first wanted capture found there (camftpd
// check): a file of its own would be camftpd's, so a lease on it would
// say nothing of CAP_LEASE on the camera's files.
func probeCompletion(cfg *Config) (CompletionMode, error) {
	root := filepath.Clean(cfg.MediaDir)
	if _, err := os.Stat(root); err != nil {
		return CompletionMode{}, errors.New(unwrapPathErr(err) + " (is the card mounted?)")
	}
	m := newMatcher(cfg)
	var found string
	seen := 0
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		seen++
		switch {
		case found != "" || seen > probeScanMax:
			return filepath.SkipAll
		case err != nil:
			return nil
		case d.IsDir() && p != root && strings.HasPrefix(d.Name(), "."):
			return filepath.SkipDir
		case d.Type().IsRegular():
			if rel, ok := relUnder(root, p); ok && m.wanted(rel) {
				found = p
			}
		}
		return nil
	})
	if found == "" {
		return CompletionMode{Mode: ModeLease, Why: "not proven: no capture in the media folder to try a lease on"}, nil
	}
	if _, err := openForWriting(found); errors.Is(err, errNoLease) {
		return CompletionMode{Mode: ModeSettle, Why: "leases refused on " + filepath.Dir(found) + ": " + leaseWhy(err)}, nil
	} else if err != nil {
		return CompletionMode{}, err
	}
	return CompletionMode{Mode: ModeLease, Why: "read leases granted on " + found}, nil
}
