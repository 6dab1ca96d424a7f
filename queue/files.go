package queue

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"path"
	"sort"
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

func hintValue(size int64, mtime time.Time) []byte {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, uint64(size))
	binary.BigEndian.PutUint64(v[8:], uint64(timeNs(mtime)))
	return v
}

func parseHint(v []byte) (int64, int64) {
	if len(v) != 16 {
		return -1, 0
	}
	return int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:]))
}

// candidates returns the IDs of the items at rel whose recorded size is
// size (size < 0: any size).
func (t *txn) candidates(rel string, size int64) ([]string, error) {
	prefix := fileKey(rel, "")
	var ids []string
	c := t.bucket(bucketFiles).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if s, _ := parseHint(v); size < 0 || s == size {
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
	files := t.bucket(bucketFiles)
	// Cameras number their files: entries mostly arrive in key order, so
	// pack the pages (bbolt's default split is at half).
	files.FillPercent = 0.9
	return files.Put(fileKey(r.Capture.Rel, r.ID), hintValue(r.Capture.Size, r.Capture.ModTime))
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

// FileInfo is what a folder listing says of one file.
type FileInfo struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// listingDigest is the digest of a folder listing, in name order.
func listingDigest(files []FileInfo) []byte {
	h := sha256.New()
	var b [16]byte
	for _, f := range files {
		h.Write([]byte(f.Name))
		binary.BigEndian.PutUint64(b[:], uint64(f.Size))
		binary.BigEndian.PutUint64(b[8:], uint64(timeNs(f.ModTime)))
		h.Write(b[:])
	}
	return h.Sum(nil)[:16]
}

// scanPlan is what the read pass of ScanDir found for one file.
type scanPlan struct {
	known   string   // ID of the item whose hint matches, or ""
	probe   []string // items of the same name and size whose hint differs
	fp      []byte   // the file's fingerprint, when probe was not empty
	fpErr   error
	matchID string // the probed item that matched
}

// ScanDir reconciles the listing of one folder of the card (dir relative to
// the media root, "" for the root; files in any order, only the captures
// the caller wants) with the queue, and returns the indexes of the files it
// does not know: the caller enqueues them once complete.
//
// A file is known when an item has its path, size and modification time (a
// hint), or its path, size and fingerprint: fp is called for a file whose
// name and size match an item but whose time does not (a FAT card mounted
// with another time zone offset), and the item's hint is updated. Items of
// the folder whose file is not in the listing are marked absent (see
// Options.HistoryMaxAge); those found again are no longer absent. When every
// file is known, the listing's digest is stored and the next ScanDir with
// the same listing returns at once without a write.
//
// ScanDir sorts files by name in place; the indexes refer to that order.
func (q *Queue) ScanDir(dir string, files []FileInfo, fp func(name string) ([]byte, error)) (unknown []int, err error) {
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	digest := listingDigest(files)
	plans := make([]scanPlan, len(files))
	var changes bool
	err = q.view("scan", dir, func(t *txn) error {
		if bytes.Equal(t.bucket(bucketDirs).Get([]byte(dir)), digest) {
			plans = nil
			return nil
		}
		changes = true
		return t.planScan(dir, files, plans)
	})
	if err != nil || !changes {
		return nil, err
	}
	for i := range plans {
		if plans[i].known == "" && len(plans[i].probe) > 0 {
			plans[i].fp, plans[i].fpErr = fp(files[i].Name)
		}
	}
	err = q.update("scan", dir, func(t *txn) error {
		unknown, err = t.applyScan(dir, files, plans, digest, q.now())
		return err
	})
	return unknown, err
}

// planScan is ScanDir's read pass: which files are known by their hint,
// which need their fingerprint compared.
func (t *txn) planScan(dir string, files []FileInfo, plans []scanPlan) error {
	for i, f := range files {
		rel := path.Join(dir, f.Name)
		prefix := fileKey(rel, "")
		c := t.bucket(bucketFiles).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			size, ns := parseHint(v)
			id := string(k[len(prefix):])
			switch {
			case size == f.Size && ns == timeNs(f.ModTime):
				plans[i].known = id
			case size == f.Size:
				plans[i].probe = append(plans[i].probe, id)
			}
		}
	}
	return nil
}

// applyScan is ScanDir's write pass.
func (t *txn) applyScan(dir string, files []FileInfo, plans []scanPlan, digest []byte, now time.Time) ([]int, error) {
	var unknown []int
	present := map[string]bool{}
	for i := range plans {
		p := &plans[i]
		if p.known == "" && p.fpErr == nil && p.fp != nil {
			for _, id := range p.probe {
				r, err := t.get(id)
				if err == nil && bytes.Equal(r.Capture.Fingerprint, p.fp) {
					p.matchID = id
					if err := t.rehint(r, files[i]); err != nil {
						return nil, err
					}
					break
				}
			}
		}
		switch {
		case p.known != "":
			present[p.known] = true
		case p.matchID != "":
			present[p.matchID] = true
		default:
			unknown = append(unknown, i)
		}
	}
	if err := t.markAbsence(dir, present, now); err != nil {
		return nil, err
	}
	if len(unknown) == 0 {
		return nil, t.bucket(bucketDirs).Put([]byte(dir), digest)
	}
	return unknown, nil
}

// rehint records where and how a known capture was seen again.
func (t *txn) rehint(r *rec, f FileInfo) error {
	r.Capture.ModTime = f.ModTime
	if err := t.bucket(bucketFiles).Put(fileKey(r.Capture.Rel, r.ID), hintValue(r.Capture.Size, f.ModTime)); err != nil {
		return err
	}
	return t.bucket(bucketItems).Put([]byte(r.ID), encodeRec(r))
}

// markAbsence marks every item of dir not in present as absent since now
// (unless it already is) and clears the mark of those present.
func (t *txn) markAbsence(dir string, present map[string]bool, now time.Time) error {
	prefix := append([]byte(dir), 0)
	var ids []string
	c := t.bucket(bucketFiles).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, string(k[bytes.LastIndexByte(k, 0)+1:]))
	}
	for _, id := range ids {
		r, err := t.get(id)
		if err != nil {
			return err
		}
		gone := !present[id]
		if gone == !r.AbsentSince.IsZero() {
			continue
		}
		since := time.Time{}
		if gone {
			since = now
		}
		if err := t.setAbsent(r, since); err != nil {
			return err
		}
		if err := t.bucket(bucketItems).Put([]byte(r.ID), encodeRec(r)); err != nil {
			return err
		}
	}
	return nil
}

func dirOfKey(k []byte) string { return string(k[:bytes.IndexByte(k, 0)]) }

// DirsGone marks the items of every folder that a full scan of the card did
// not find (seen lists the folders it scanned) as absent, as ScanDir does
// for files. Call it only after a scan of a mounted card that found
// captures: an unmounted card's empty mount point must not make its whole
// history absent.
func (q *Queue) DirsGone(seen map[string]bool) error {
	return q.update("scan", "folders", func(t *txn) error {
		var gone []string
		c := t.bucket(bucketFiles).Cursor()
		// One seek per folder: past "dir\x00..." is "dir\x01".
		for k, _ := c.First(); k != nil; k, _ = c.Seek(append([]byte(dirOfKey(k)), 1)) {
			if d := dirOfKey(k); !seen[d] {
				gone = append(gone, d)
			}
		}
		now := q.now()
		for _, d := range gone {
			if err := t.bucket(bucketDirs).Delete([]byte(d)); err != nil {
				return err
			}
			if err := t.markAbsence(d, nil, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// Baseline returns when the first full scan was recorded with SetBaseline
// (false if never): captures on the card before that were the backlog.
func (q *Queue) Baseline() (time.Time, bool) {
	var at time.Time
	var ok bool
	_ = q.view("baseline", "", func(t *txn) error {
		if v := t.bucket(bucketMeta).Get(keyBaseline); len(v) == 8 {
			at, ok = nsTime(int64(binary.BigEndian.Uint64(v))), true
		}
		return nil
	})
	return at, ok
}

// SetBaseline records that the first full scan is done (once; later calls
// keep the first time).
func (q *Queue) SetBaseline() error {
	return q.update("baseline", "", func(t *txn) error {
		m := t.bucket(bucketMeta)
		if m.Get(keyBaseline) != nil {
			return nil
		}
		return m.Put(keyBaseline, key1(uint64(timeNs(q.now()))))
	})
}

// errNoFingerprint is returned for a capture without a fingerprint.
func errNoFingerprint(c Capture) error {
	return fmt.Errorf("queue: capture %s has no fingerprint (see queue.Fingerprint)", c.Rel)
}
