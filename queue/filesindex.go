package queue

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path"
	"time"
)

// The files index maps every item to its folder and name, and holds the
// size and modification time the file had when last seen (the hint). A
// rescan compares a listing with it; only where a hint no longer matches
// (a FAT card remounted with another time zone, a file rewritten) does it
// read the file's fingerprint. The dirs bucket holds, per folder, the digest
// of its last listing in which every file was known: a folder whose listing
// has that digest is skipped without touching its items, so a start-up with
// a card of 250,000 delivered shots reads a few bytes per folder, not per
// file.

// dirOf returns the folder part of a relative path ("" for the root).
func dirOf(rel string) string {
	d := path.Dir(rel)
	if d == "." {
		return ""
	}
	return d
}

// fileKey is the key of an item in the files index.
func fileKey(rel, id string) []byte {
	d := dirOf(rel)
	k := make([]byte, 0, len(rel)+len(id)+2)
	k = append(k, d...)
	k = append(k, 0)
	k = append(k, path.Base(rel)...)
	k = append(k, 0)
	return append(k, id...)
}

// fileEntry is an item's entry in the files index: the size and mtime its
// file had when last seen (the hint; the record keeps the capture as
// queued), whether a scan found it absent, and its fingerprint, so that a
// scan decides from this index alone and reads or writes a record only
// when the item's absence changes.
type fileEntry struct {
	size, ns int64
	absent   bool
	fp       []byte
}

func (e fileEntry) value() []byte {
	v := make([]byte, 17, 17+len(e.fp))
	binary.BigEndian.PutUint64(v, uint64(e.size))
	binary.BigEndian.PutUint64(v[8:], uint64(e.ns))
	if e.absent {
		v[16] = 1
	}
	return append(v, e.fp...)
}

// parseHint decodes a files entry (size -1 when it is damaged).
func parseHint(v []byte) fileEntry {
	if len(v) < 17 {
		return fileEntry{size: -1}
	}
	return fileEntry{size: int64(binary.BigEndian.Uint64(v)), ns: int64(binary.BigEndian.Uint64(v[8:])),
		absent: v[16] == 1, fp: v[17:]}
}

// putFile writes r's entry in the files index, with hint mtime ns.
func (t *txn) putFile(r *rec, ns int64) error {
	files := t.bucket(bucketFiles)
	// Cameras number their files: entries mostly arrive in key order, so
	// pack the pages (bbolt's default split is at half).
	files.FillPercent = 0.9
	e := fileEntry{size: r.Capture.Size, ns: ns, absent: !r.AbsentSince.IsZero(), fp: r.Capture.Fingerprint}
	return files.Put(fileKey(r.Capture.Rel, r.ID), e.value())
}

// hintOf returns the hint mtime of r's files entry (its queued mtime when
// it has none).
func (t *txn) hintOf(r *rec) int64 {
	if e := parseHint(t.bucket(bucketFiles).Get(fileKey(r.Capture.Rel, r.ID))); e.size >= 0 {
		return e.ns
	}
	return timeNs(r.Capture.ModTime)
}

// candidates returns the IDs of the items at rel whose recorded size is
// size (size < 0: any size).
func (t *txn) candidates(rel string, size int64) ([]string, error) {
	prefix := fileKey(rel, "")
	var ids []string
	c := t.bucket(bucketFiles).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if e := parseHint(v); size < 0 || e.size == size {
			ids = append(ids, string(k[len(prefix):]))
		}
	}
	return ids, nil
}

// insert writes a new item: its record, its state index and its files
// entry.
func (t *txn) insert(r *rec) error {
	if err := t.put(r); err != nil {
		return err
	}
	return t.putFile(r, timeNs(r.Capture.ModTime))
}

// setAbsent records (since non-zero) or clears (zero) that r's file is
// gone, in r and in the absent index; the caller writes r.
func (t *txn) setAbsent(r *rec, since time.Time) error {
	b := t.bucket(bucketAbsent)
	if !r.AbsentSince.IsZero() {
		if err := b.Delete(key2(sortable(timeNs(r.AbsentSince)), r.Seq)); err != nil {
			return err
		}
		*t.absentCount() -= 1
	}
	r.AbsentSince = since
	if since.IsZero() {
		return nil
	}
	*t.absentCount() += 1
	return b.Put(key2(sortable(timeNs(since)), r.Seq), []byte(r.ID))
}

// absentCount is the number of entries in the absent index, loaded once
// per transaction and written back by flush.
func (t *txn) absentCount() *int64 {
	if t.absentN == nil {
		var n int64
		if v := t.bucket(bucketMeta).Get(keyAbsentN); len(v) == 8 {
			n = int64(binary.BigEndian.Uint64(v))
		}
		t.absentN = &n
	}
	return t.absentN
}

// remove deletes r entirely, with its file and absence entries; its
// folder's digest goes too (a rescan must look at that folder again).
func (t *txn) remove(r *rec) error {
	if err := t.unindex(r); err != nil {
		return err
	}
	if err := t.setAbsent(r, time.Time{}); err != nil {
		return err
	}
	if err := t.bucket(bucketFiles).Delete(fileKey(r.Capture.Rel, r.ID)); err != nil {
		return err
	}
	if err := t.bucket(bucketDirs).Delete(dirKey(dirOf(r.Capture.Rel))); err != nil {
		return err
	}
	return t.bucket(bucketItems).Delete([]byte(r.ID))
}

// find looks a capture up by identity (relative path, size, fingerprint)
// through the files index. It returns the record if present; otherwise the
// ID a new item for it must take.
func (t *txn) find(c Capture) (r *rec, freeID string, err error) {
	ids, err := t.candidates(c.Rel, c.Size)
	if err != nil {
		return nil, "", err
	}
	for _, id := range ids {
		r, err := t.get(id)
		if err != nil {
			continue // a damaged history record: not this capture (see verifyActiveTx)
		}
		if identity(r.Capture) == identity(c) {
			return r, "", nil
		}
	}
	items := t.bucket(bucketItems)
	for n := 0; n < 100; n++ {
		id := candidateID(c, n)
		if items.Get([]byte(id)) == nil {
			return nil, id, nil
		}
	}
	return nil, "", fmt.Errorf("queue: too many ID collisions for %s", c.Rel)
}

// errNoFingerprint is returned for a capture without a fingerprint.
func errNoFingerprint(c Capture) error {
	return fmt.Errorf("queue: capture %s has no fingerprint (see queue.Fingerprint)", c.Rel)
}
