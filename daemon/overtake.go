package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/camftpd/camftpd/queue"
)

// afterDispatch runs once the dispatcher handed out an item or the queue
// signalled new work: it gives the next idle worker, if one is offering
// itself already, or else lets waiting stills overtake (overtake) and
// returns nil.
func (d *Daemon) afterDispatch(ready <-chan *worker) *worker {
	select {
	case w := <-ready:
		return w
	default:
	}
	d.overtake()
	return nil
}

// overtake pauses uploads for the stills that wait while no worker is
// idle: for each still among the first Workers pending items (lease
// order) that no pause serves yet, the upload in flight of the lowest
// rank below the still's (the one with most bytes left among equals) is
// cancelled with an *overtakenError. Its worker settles it as paused
// (pausedUpload): released, not counted as an attempt, no backoff; the
// still, ranked first in the queue, is what that worker leases next, and
// the paused item is leased again, and resumed with REST, once no still
// waits. Thrashing is bounded: a still never pauses an upload of its own
// rank, and one pause serves one still. An upload near its end is paused
// too: what it sent is not known to be on the server (socket buffers hold
// megabytes on a fast link), and a resume of a complete temporary file
// sends nothing.
func (d *Daemon) overtake() {
	cfg, q := d.config(), d.Queue()
	if q == nil || !d.canRun() {
		return
	}
	waiting, err := q.Peek(cfg.Workers)
	if err != nil {
		d.log.Warn("overtaking: cannot read the queue; stills wait for a free worker", "err", err)
		return
	}
	jpegFirst := cfg.RawJPEG == rawJPEGFirst
	now := time.Now()
	for _, it := range waiting {
		r := overtakeRank(it.Capture, jpegFirst)
		if r == 0 {
			break // lease order: no still after this one
		}
		if !d.batteryAdmits(it) || !d.ot.serve(it.ID, now) {
			continue
		}
		if !d.pauseFor(it, r) {
			d.ot.unserve(it.ID)
			return // nothing left to pause for this still, nor for a later one
		}
	}
}

// pauseFor cancels the upload that overtaking still it (of rank r)
// pauses, if there is one; it reports whether it did.
func (d *Daemon) pauseFor(it queue.Item, r int) bool {
	d.mu.Lock()
	var v *upload
	for _, u := range d.uploads {
		if u.pausing || u.pause == nil || u.rank >= r {
			continue
		}
		if v == nil || u.rank < v.rank || u.rank == v.rank && u.Total-u.Sent > v.Total-v.Sent {
			v = u
		}
	}
	if v == nil {
		d.mu.Unlock()
		return false
	}
	v.pausing = true
	file, worker, sent, total, pause := v.File, v.Worker, v.Sent, v.Total, v.pause
	d.mu.Unlock()
	d.log.Info("pausing an upload for a waiting still", "file", file, "worker", worker, "sent", sent, "total", total, "still", it.Capture.Rel)
	pause(&overtakenError{by: it.Capture.Rel})
	return true
}

// pausedUpload settles an upload cancelled with cause when that is an
// overtaking pause: the item is released (pending again, the attempt not
// counted, no backoff) with its temporary file left on the server for a
// resume with REST, and the pause is shown in the status and the events.
// It reports false for any other cause.
func (a *attempt) pausedUpload(cause error) bool {
	var ot *overtakenError
	if !errors.As(cause, &ot) {
		return false
	}
	d, it := a.w.d, a.it
	d.ot.pausedNow(PausedUpload{ID: it.ID, File: it.Capture.Rel, Sent: a.lastSent, Total: it.Capture.Size, State: ot.Error(), Since: time.Now()})
	a.log.Info("upload paused; it resumes from the server's temporary file when no still waits", "by", ot.by, "sent", a.lastSent)
	// Published before the release: no worker can lease the item again,
	// and publish its start, before its pause.
	d.hub.publish(Event{Type: "paused", ID: it.ID, File: it.Capture.Rel, Worker: a.w.name, Sent: a.lastSent, Total: it.Capture.Size,
		State: ot.Error(), Reason: "overtaken by " + ot.by})
	d.durable("release", it, d.Queue().Release(it.ID))
	select { // the still comes first: no login before the worker offers itself (the upload logs in)
	case <-a.w.warm:
	default:
	}
	return true
}

// withPause is begin's side of overtaking: the upload's rank and its
// cancel with a cause.
func (up *upload) withPause(c queue.Capture, cfg *Config, cancel context.CancelCauseFunc) {
	up.pause = cancel
	up.rank = overtakeRank(c, cfg.RawJPEG == rawJPEGFirst)
}

// pausedUploads is the status's list of paused uploads: an item that is
// neither pending nor in flight (dropped, settled) is forgotten, and one
// leased again is forgotten by its attempt.
func (d *Daemon) pausedUploads(q *queue.Queue) []PausedUpload {
	l := d.ot.list()
	out := l[:0]
	for _, p := range l {
		if q != nil {
			// In flight: still the paused lease until the release, or the
			// resume's, whose attempt forgets the pause (otState.started).
			// Forgetting it here lost the pause for good when the status
			// was read before the release.
			it, err := q.Get(p.ID)
			if errors.Is(err, queue.ErrNotFound) || err == nil && it.State != queue.Pending && it.State != queue.InFlight {
				d.ot.started(p.ID)
				continue
			}
		}
		out = append(out, p)
	}
	return out
}
