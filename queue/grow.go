package queue

import (
	"fmt"
	"time"
)

// Regrow gives item id, not settled, the capture now found at its path:
// a file still written after it was queued (a writer that paused longer
// than the settle window) or rewritten in place. c must have the item's
// Rel and a fingerprint. The item keeps its ID, state, lease and place in
// the queue; it counts as never leased again (its next Lease, and the
// Item returned, have FirstLease set), so that an upload starts from
// byte 0 and replaces whatever an earlier attempt left on the server
// under its temporary name (stale content); its Intent is cleared.
//
// A pending, retrying or held item that the watcher already queued for c
// is merged into it (removed: the same file). When an item for c is in
// flight or settled already, nothing changes and ok is false: that item
// delivers the file, and the caller settles this one (vanished).
func (q *Queue) Regrow(id string, c Capture) (it Item, ok bool, err error) {
	if len(c.Fingerprint) == 0 {
		return Item{}, false, errNoFingerprint(c)
	}
	err = q.update("regrow", id, func(t *txn) error {
		r, err := t.get(id)
		if err != nil {
			return err
		}
		if c.Rel != r.Capture.Rel {
			return fmt.Errorf("queue: regrow %s: path %q is not the item's %q", id, c.Rel, r.Capture.Rel)
		}
		if r.State == Done || r.State == Skipped || (r.State == Parked && r.Vanished) {
			return stateErr("regrow", r, "settled or vanished items keep their capture")
		}
		other, _, err := t.find(c)
		if err != nil {
			return err
		}
		if other != nil && other.ID != r.ID {
			if other.State != Pending && other.State != Retry && other.State != Held {
				return nil // that item delivers the file
			}
			if err := t.remove(other); err != nil {
				return err
			}
		}
		if err := t.setAbsent(r, time.Time{}); err != nil { // the file is there
			return err
		}
		if err := t.move(r, func(r *rec) {
			prio := r.Capture.Priority
			r.Capture = c
			r.Capture.Priority, r.Capture.Hold = max(prio, c.Priority), ""
			r.Capture.ModTime = nsTime(timeNs(c.ModTime))
			r.Intent, r.leased, r.Attempts = Intent{}, false, 0
		}); err != nil {
			return err
		}
		if err := t.putFile(r, timeNs(r.Capture.ModTime)); err != nil {
			return err
		}
		// The folder's digest no longer matches what the index holds.
		if err := t.bucket(bucketDirs).Delete(dirKey(dirOf(c.Rel))); err != nil {
			return err
		}
		it, ok = r.Item, true
		it.FirstLease = true
		return nil
	})
	return it, ok, err
}
