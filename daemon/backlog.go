package daemon

import (
	"bytes"
	"os"
	"path/filepath"

	"github.com/camftpd/camftpd/queue"
)

// Reasons a capture is held (queue.Held) instead of sent.
const (
	// HoldBacklog: the capture was on the card when auto-upload started
	// for the first time (backlog = "new").
	HoldBacklog = "backlog"
	// HoldNotProtected: only_protected is set and the capture is not
	// protected.
	HoldNotProtected = "not protected"
)

// heldListMax bounds how many held items a start rescan (protected while
// camftpd was stopped) or a status request (held counts by reason) lists
// from the queue: listing decodes every item, about 450 bytes each.
const heldListMax = 5000

// firstScanMarker is the file, next to the queue file, that says a first
// scan began and has not recorded its baseline yet: a restart in the
// middle of it goes on holding the backlog.
const firstScanMarker = "first-scan"

// isProtected reports whether a file is protected: no write permission
// bit, which is how vfat and exfat show the FAT read-only attribute (the
// camera's "protect"); on ext4 it is chmod a-w.
func isProtected(st os.FileInfo) bool { return st.Mode().Perm()&0o222 == 0 }

// holdReason says why a capture that completes now is held, or "".
func (w *watcher) holdReason(st os.FileInfo) string {
	protected := isProtected(st)
	switch {
	case w.onlyProtected && !protected:
		return HoldNotProtected
	case w.firstScan && !w.backlogAll && (!w.onlyProtected || !protected):
		// A protected shot of the backlog is sent under only_protected:
		// protecting it was an explicit choice.
		return HoldBacklog
	}
	return ""
}

// startScan is the rescan at start (and at every remount, reload and
// restart of the watcher). When the queue has no baseline yet, that scan
// is the first one of auto-upload with this queue: the captures it finds
// complete are the backlog (held under backlog = "new"), and the baseline
// is recorded after it. Captures completing later are new.
func (w *watcher) startScan() {
	w.firstScan = w.needBaseline()
	w.heldNow = 0
	if !w.rescanBatched("start") {
		// Stopped (SIGTERM): no baseline; the marker stays, so the next
		// start goes on with the first scan and still holds the backlog.
		w.firstScan = false
		return
	}
	if w.firstScan {
		w.firstScan = false
		if err := w.q.SetBaseline(); err != nil {
			w.log.Error("cannot record the backlog baseline; the next start holds unknown captures again", "err", err)
		} else if err := os.Remove(w.marker()); err != nil && !os.IsNotExist(err) {
			w.log.Warn("cannot remove the first-scan marker", "err", err)
		}
		if w.heldNow > 0 {
			w.log.Info("first start: the captures already on the card are the backlog, held and not sent (backlog = \"new\"); camftpd queue add sends them",
				"held", w.heldNow)
		}
	}
	if w.onlyProtected {
		w.wantProtected()
	}
}

func (w *watcher) marker() string { return filepath.Join(filepath.Dir(w.q.Path()), firstScanMarker) }

// needBaseline reports whether the start scan is the first one of this
// queue (and writes the marker if so). A queue without a baseline and
// without the marker that has delivered captures was used before
// baselines existed (schema 1, migrated): auto-upload was on, so its
// baseline is recorded now and nothing is held. (Pending items alone do
// not count: camftpd queue add may have written them before the first
// start.)
func (w *watcher) needBaseline() bool {
	if _, ok := w.q.Baseline(); ok {
		return false
	}
	if _, err := os.Stat(w.marker()); err == nil {
		w.log.Info("the first scan of the card was interrupted; it starts again")
		return true
	}
	if c, err := w.q.Counts(); err == nil && c.Done+c.Skipped > 0 {
		if err := w.q.SetBaseline(); err != nil {
			w.log.Warn("cannot record the backlog baseline", "err", err)
		}
		return false
	}
	if w.q.Recovered() {
		w.log.Warn("the queue file was lost (recovered empty): the captures on the card cannot be told from delivered ones; they are held as backlog unless backlog = \"all\"; camftpd queue add sends the ones still missing")
	}
	if err := writeSynced(w.marker()); err != nil {
		w.log.Warn("cannot write the first-scan marker (a restart during the first scan would send the rest of the card)", "err", err)
	}
	return true
}

// writeSynced creates an empty file at p, durably.
func writeSynced(p string) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(p))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// protectedNow handles an attribute change (IN_ATTRIB) under
// only_protected: a held capture that is protected now is made pending at
// once. It reports whether the event is dealt with; false lets the caller
// treat the file as touched (unknown, or being written).
func (w *watcher) protectedNow(p string, st os.FileInfo) bool {
	if !w.onlyProtected || !isProtected(st) {
		return false
	}
	if _, busy := w.pending[p]; busy {
		return false
	}
	rel, ok := w.rel(p)
	if !ok || !w.match.wanted(rel) {
		return true
	}
	c, err := captureOf(p, rel, st)
	if err != nil {
		return false
	}
	it, known, err := w.q.Lookup(c)
	if err != nil || !known {
		return false
	}
	if it.State == queue.Held {
		w.want([]queue.Item{it}, "protected")
	}
	return true
}

// wantProtected makes pending the held captures that are protected now
// (protected while camftpd was stopped or the card was out: a protection
// change alters neither size nor modification time, so the folder listings
// of a rescan do not show it). It looks at the held items' files, not at
// the card: one lstat each, a fingerprint only for a protected one.
func (w *watcher) wantProtected() {
	c, err := w.q.Counts()
	if err != nil || c.Held == 0 {
		return
	}
	if c.Held > heldListMax {
		w.log.Warn("too many held captures to look for ones protected while camftpd was stopped; protect them again or use camftpd queue add",
			"held", c.Held, "max", heldListMax)
		return
	}
	items, err := w.q.List(queue.Held)
	if err != nil {
		w.log.Warn("cannot list held captures", "err", err)
		return
	}
	var wanted []queue.Item
	for _, it := range items {
		p := filepath.Join(w.root, filepath.FromSlash(it.Capture.Rel))
		st, err := os.Lstat(p)
		if err != nil || !st.Mode().IsRegular() || !isProtected(st) || st.Size() != it.Capture.Size {
			continue
		}
		if fp, err := fingerprintFile(p); err == nil && bytes.Equal(fp, it.Capture.Fingerprint) {
			wanted = append(wanted, it)
		}
	}
	w.want(wanted, "protected")
}

// want makes held items pending and reports them.
func (w *watcher) want(items []queue.Item, why string) {
	if len(items) == 0 {
		return
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	if _, err := w.q.Want(ids...); err != nil {
		w.log.Error("cannot queue held captures", "count", len(ids), "err", err)
		return
	}
	for _, it := range items {
		w.log.Info("held capture queued", "file", it.Capture.Rel, "id", it.ID, "why", why, "was", it.Reason)
		if w.onWanted != nil {
			w.onWanted(it, why)
		}
	}
}
