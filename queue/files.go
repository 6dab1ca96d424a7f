package queue

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"path"
	"sort"
	"time"
)

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
	known  string  // ID of the item it is (hint or fingerprint), or ""
	probes []probe // items of the same name and size whose hint differs
	fp     []byte  // the file's fingerprint, when it was read
}

type probe struct {
	id    string
	shift int64 // the file's mtime minus the item's hint (ns)
	fp    []byte
}

// ScanDir reconciles the listing of one folder of the card (dir relative to
// the media root, "" for the root; files in any order, only the captures
// the caller wants) with the queue, and returns the indexes of the files it
// does not know: the caller enqueues them once complete.
//
// A file is known when an item has its path, size and modification time (a
// hint), or its path, size and fingerprint: fp is called for a file whose
// name and size match an item but whose time does not (a FAT card mounted
// with another time zone offset), and the item's hint is updated. A time
// zone shifts every file of the card by the same amount: once three files
// of the folder shifted by the same amount are confirmed by their
// fingerprints, the others shifted by exactly that amount are known without
// being read (a 10,000-shot folder costs three reads, not 10,000). Items of
// the folder whose file is not in the listing are marked absent (see
// Options.HistoryMaxAge); those found again are no longer absent. When every
// file is known, the listing's digest is stored and the next ScanDir with
// the same listing returns at once without a write. ScanDir reads the
// files index only; it reads and writes a record only when the item's
// absence changes.
//
// ScanDir sorts files by name in place; the indexes refer to that order.
func (q *Queue) ScanDir(dir string, files []FileInfo, fp func(name string) ([]byte, error)) (unknown []int, err error) {
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	digest := listingDigest(files)
	plans := make([]scanPlan, len(files))
	var changes bool
	err = q.view("scan", dir, func(t *txn) error {
		if bytes.Equal(t.bucket(bucketDirs).Get(dirKey(dir)), digest) {
			return nil
		}
		changes = true
		t.planScan(dir, files, plans)
		return nil
	})
	if err != nil || !changes {
		return nil, err
	}
	settleProbes(files, plans, fp)
	err = q.update("scan", dir, func(t *txn) error {
		unknown, err = t.applyScan(dir, files, plans, digest, q.now())
		return err
	})
	q.releasePages()
	return unknown, err
}

// planScan is ScanDir's read pass: which files are known by their hint,
// which need their fingerprint compared.
func (t *txn) planScan(dir string, files []FileInfo, plans []scanPlan) {
	c := t.bucket(bucketFiles).Cursor()
	for i, f := range files {
		t.shed(i)
		prefix := fileKey(path.Join(dir, f.Name), "")
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			e := parseHint(v)
			id := string(k[len(prefix):])
			switch {
			case e.size != f.Size:
			case e.ns == timeNs(f.ModTime):
				plans[i].known = id
			default:
				plans[i].probes = append(plans[i].probes, probe{id: id, shift: timeNs(f.ModTime) - e.ns,
					fp: append([]byte(nil), e.fp...)})
			}
		}
	}
}

// shedEvery is how many files a scan pass looks at between two releases
// of the mapped pages it touched (see releasePages).
const shedEvery = 1024

// shed releases the mapped pages every shedEvery steps of a pass.
func (t *txn) shed(step int) {
	if step > 0 && step%shedEvery == 0 {
		releaseMapped(t.tx)
	}
}

// shiftConfirmations is how many files shifted by the same amount must
// match by fingerprint before the rest of the folder is taken on the shift.
const shiftConfirmations = 3

// settleProbes decides the files whose hint differs: by fingerprint, or by
// a time shift that shiftConfirmations fingerprints confirmed.
func settleProbes(files []FileInfo, plans []scanPlan, fp func(string) ([]byte, error)) {
	read := func(i int) {
		p := &plans[i]
		if p.known != "" || len(p.probes) == 0 || p.fp != nil {
			return
		}
		sum, err := fp(files[i].Name)
		if err != nil {
			p.fp = []byte{} // unreadable: unknown; considered again later
			return
		}
		p.fp = sum
		for _, pr := range p.probes {
			if len(pr.fp) > 0 && bytes.Equal(pr.fp, sum) {
				p.known = pr.id
				return
			}
		}
	}
	shifts := map[int64]int{}
	for _, p := range plans {
		if p.known == "" && len(p.probes) == 1 {
			shifts[p.probes[0].shift]++
		}
	}
	for shift, n := range shifts {
		if n <= shiftConfirmations {
			continue
		}
		confirmed := 0
		for i := range plans {
			p := &plans[i]
			if confirmed < shiftConfirmations && p.known == "" && len(p.probes) == 1 && p.probes[0].shift == shift {
				read(i)
				if p.known == "" {
					break
				}
				confirmed++
			}
		}
		if confirmed < shiftConfirmations {
			continue
		}
		for i := range plans {
			if p := &plans[i]; p.known == "" && p.fp == nil && len(p.probes) == 1 && p.probes[0].shift == shift {
				p.known = p.probes[0].id
			}
		}
	}
	for i := range plans {
		read(i)
	}
}

// applyScan is ScanDir's write pass: new hints, absence, the digest.
func (t *txn) applyScan(dir string, files []FileInfo, plans []scanPlan, digest []byte, now time.Time) ([]int, error) {
	var unknown []int
	present := map[string]bool{}
	files2 := t.bucket(bucketFiles)
	for i, p := range plans {
		t.shed(i)
		if p.known == "" {
			unknown = append(unknown, i)
			continue
		}
		present[p.known] = true
		k := fileKey(path.Join(dir, files[i].Name), p.known)
		if e := parseHint(files2.Get(k)); e.size >= 0 && e.ns != timeNs(files[i].ModTime) {
			e.ns = timeNs(files[i].ModTime)
			if err := files2.Put(k, e.value()); err != nil {
				return nil, err
			}
		}
	}
	if err := t.markAbsence(dir, present, now); err != nil {
		return nil, err
	}
	if len(unknown) == 0 {
		return nil, t.bucket(bucketDirs).Put(dirKey(dir), digest)
	}
	return unknown, nil
}

// markAbsence marks every item of dir not in present as absent since now
// (unless it already is) and clears the mark of those present. It reads
// the folder's files entries and only the records whose mark changes.
func (t *txn) markAbsence(dir string, present map[string]bool, now time.Time) error {
	prefix := append([]byte(dir), 0)
	var change []string
	c := t.bucket(bucketFiles).Cursor()
	n := 0
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		n++
		t.shed(n)
		id := string(k[bytes.LastIndexByte(k, 0)+1:])
		if parseHint(v).absent == present[id] {
			change = append(change, id)
		}
	}
	for _, id := range change {
		r, err := t.get(id)
		if err != nil {
			continue // a damaged history record (see verifyActiveTx)
		}
		since := time.Time{}
		if !present[id] {
			since = now
		}
		ns := t.hintOf(r)
		if err := t.setAbsent(r, since); err != nil {
			return err
		}
		if err := t.putFile(r, ns); err != nil {
			return err
		}
		if err := t.bucket(bucketItems).Put([]byte(r.ID), encodeRec(r)); err != nil {
			return err
		}
	}
	return nil
}

// dirKey is a folder's key in the dirs bucket: the media directory's own
// files (folder "") are under "." (bbolt refuses an empty key, and a
// cleaned relative folder is never ".").
func dirKey(dir string) []byte {
	if dir == "" {
		return []byte(".")
	}
	return []byte(dir)
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
			if err := t.bucket(bucketDirs).Delete(dirKey(d)); err != nil {
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
