package daemon

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/camftpd/camftpd/queue"
	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer"
)

// localReady opens, before an upload, the capture's file for this attempt
// and checks that it is still the one queued. A file that grew or was
// rewritten at the same path since (a writer that paused longer than the
// settle window) becomes this item's capture (*it is updated; see
// queue.Regrow), so that one capture never becomes two uploads. Otherwise
// it settles the item (refused and parked when it is not a regular file
// reached without a symbolic link, vanished, or retry when it cannot be
// read or the media folder is gone), says so once, and returns nil. The
// caller reads the capture only through the file returned and closes it.
func (w *worker) localReady(it *queue.Item, log *slog.Logger) (*os.File, os.FileInfo) {
	d, q, c := w.d, w.d.Queue(), it.Capture
	if d.beforeOpen != nil {
		d.beforeOpen(*it)
	}
	f, st, same, err := openQueued(w.cfg.MediaDir, c)
	if err == nil && !same {
		same = w.regrow(it, f, st, log)
		if !same {
			f.Close()
		}
	}
	switch {
	case err != nil && errors.Is(err, transfer.ErrRefused):
		w.refuse(*it, err, log)
	case err != nil && errors.Is(err, fs.ErrNotExist):
		if _, merr := os.Stat(w.cfg.MediaDir); merr != nil {
			_, ferr := q.Fail(it.ID, "media directory unavailable: "+unwrapPathErr(merr))
			d.durable("fail", *it, ferr)
			return nil, nil
		}
		w.vanished(*it, false)
		log.Warn("capture vanished before upload; recorded, not retried")
		d.hub.publish(Event{Type: "vanished", ID: it.ID, File: c.Rel})
	case err != nil:
		next, ferr := q.Fail(it.ID, "cannot read local file: "+unwrapPathErr(err))
		d.durable("fail", *it, ferr)
		d.hub.publish(Event{Type: "retry", ID: it.ID, File: c.Rel, Error: err.Error(), State: next.Format(time.RFC3339)})
	case !same:
		// Another item delivers the new version.
		w.vanished(*it, false)
		log.Info("capture changed since it was queued; its new version is queued separately")
		d.hub.publish(Event{Type: "vanished", ID: it.ID, File: c.Rel, Error: "changed since queued"})
	default:
		return f, st
	}
	return nil, nil
}

// regrow makes the file f (fstat st), found at item it's path in place of
// its capture, the item's capture (queue.Regrow) and reports whether it
// did: only for the same file (inode) written further, not for another
// file put in its place (that one is queued as a capture of its own), nor
// when another item delivers it already, nor when it cannot be read.
func (w *worker) regrow(it *queue.Item, f *os.File, st os.FileInfo, log *slog.Logger) bool {
	if it.Capture.Inode == 0 || inodeOf(st) != it.Capture.Inode {
		return false
	}
	fp, err := queue.Fingerprint(f, st.Size())
	if err != nil {
		return false
	}
	c := it.Capture
	c.Size, c.ModTime, c.Inode, c.Fingerprint = st.Size(), st.ModTime(), inodeOf(st), fp
	nit, ok, err := w.d.Queue().Regrow(it.ID, c)
	if err != nil || !ok {
		if err != nil {
			log.Warn("cannot update the queued capture to its grown file", "err", err)
		}
		return false
	}
	log.Info("capture grew or was rewritten since it was queued: this item now sends the file as it is",
		"was_size", it.Capture.Size, "size", c.Size)
	*it = nit
	return true
}

// refuse parks an item whose path is not a regular file reached without
// a symbolic link (a link, a FIFO, a device, a socket): it is never read,
// not retried until someone asks (RetryNow), and reported once.
func (w *worker) refuse(it queue.Item, err error, log *slog.Logger) {
	d, c := w.d, it.Capture
	reason := tlspolicy.OneLine(err.Error())
	d.durable("park", it, d.Queue().Park(it.ID, reason))
	log.Warn("capture refused, never read; parked", "reason", reason)
	d.hub.publish(Event{Type: "parked", ID: it.ID, File: c.Rel, Error: reason})
}

// localFailed settles an attempt that ended with a Local error, judged by
// the descriptor the upload read (opened: its fstat when opened): removed
// from the card or changed (the watcher queues the new version) makes the
// item vanished while the media folder is there; a file still open for
// writing, or another local error, is retried after the backoff (its
// temporary file kept when it did not change).
func (w *worker) localFailed(it queue.Item, f *os.File, opened os.FileInfo, err error, log *slog.Logger) {
	d, q, c := w.d, w.d.Queue(), it.Capture
	msg := tlspolicy.OneLine(err.Error())
	if errors.Is(err, transfer.ErrRefused) {
		w.refuse(it, err, log)
		return
	}
	st, serr := f.Stat()
	gone := serr == nil && nlinkOf(st) == 0
	changed := serr == nil && (st.Size() != opened.Size() || !st.ModTime().Equal(opened.ModTime()))
	if gone || changed {
		if _, merr := os.Stat(w.cfg.MediaDir); merr == nil {
			why := "removed during upload"
			if changed {
				why = "changed during upload"
				log.Warn("capture changed during its upload; the new version is queued separately", "err", msg)
			}
			w.vanished(it, true)
			d.hub.publish(Event{Type: "vanished", ID: it.ID, File: c.Rel, Error: why})
			return
		}
	}
	next, ferr := q.Fail(it.ID, msg)
	d.durable("fail", it, ferr)
	if errors.Is(err, transfer.ErrStillWriting) {
		log.Info("capture still open for writing: not published; will retry", "err", msg, "next", next)
	} else {
		log.Warn("upload failed (local); will retry", "err", msg, "next", next)
	}
	d.hub.publish(Event{Type: "retry", ID: it.ID, File: c.Rel, Error: msg})
}
