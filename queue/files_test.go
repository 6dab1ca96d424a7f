package queue

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func listingOf(cs ...Capture) []FileInfo {
	var out []FileInfo
	for _, c := range cs {
		out = append(out, FileInfo{Name: filepath.Base(c.Rel), Size: c.Size, ModTime: c.ModTime})
	}
	return out
}

// TestScanDirRoot: the media directory's own files (folder "", a camera
// whose media_dir is the DCIM subfolder itself) are reconciled like any
// folder's: an unchanged listing costs no write, a vanished file is
// absent, and DirsGone drops the folder's digest. The dirs bucket
// refused the empty key, and every rescan of such a card fell back to
// one file at a time.
func TestScanDirRoot(t *testing.T) {
	clk := newClock()
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), &Options{Now: clk.Now})
	var cs []Capture
	var ids []string
	for i := 1; i <= 3; i++ {
		c := capN(i)
		c.Rel = filepath.Base(c.Rel)
		it, _, err := q.Enqueue(c)
		if err != nil {
			t.Fatal(err)
		}
		cs, ids = append(cs, c), append(ids, it.ID)
	}
	noRead := func(name string) ([]byte, error) { t.Fatalf("fingerprint of %s read", name); return nil, nil }
	if unknown, err := q.ScanDir("", listingOf(cs...), noRead); err != nil || len(unknown) != 0 {
		t.Fatalf("root folder: unknown %v, %v", unknown, err)
	}
	tx := lastTxID(t, q)
	if _, err := q.ScanDir("", listingOf(cs...), noRead); err != nil || lastTxID(t, q) != tx {
		t.Fatalf("unchanged root folder: wrote %v, %v", lastTxID(t, q) != tx, err)
	}
	clk.Add(time.Minute)
	if _, err := q.ScanDir("", listingOf(cs[1:]...), noRead); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.Get(ids[0]); !got.AbsentSince.Equal(clk.Now()) {
		t.Fatalf("a root file gone from the card is not absent: %+v", got.AbsentSince)
	}
	if err := q.DirsGone(map[string]bool{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.Get(ids[1]); got.AbsentSince.IsZero() {
		t.Fatal("a root file of a card scanned without its root folder is not absent")
	}
	if v := dirDigest(t, q, ""); v != nil {
		t.Fatalf("the root folder's digest outlived DirsGone: %x", v)
	}
}

// dirDigest is the stored listing digest of folder dir (nil: none).
func dirDigest(t *testing.T, q *Queue, dir string) []byte {
	t.Helper()
	var v []byte
	if err := q.db.View(func(tx *bboltTx) error {
		v = bytes.Clone(tx.Bucket(bucketDirs).Get(dirKey(dir)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestScanDir: known files are recognised by their hint without reading
// them; a time-zone shift is settled by the fingerprint and the hint
// updated; a different shot under a used name is unknown; an unchanged
// folder costs no write; absence is marked and cleared.
func TestScanDir(t *testing.T) {
	clk := newClock()
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), &Options{Now: clk.Now})
	a, b, c := capN(1), capN(2), capN(3)
	var ids []string
	for _, x := range []Capture{a, b, c} {
		it, _, err := q.Enqueue(x)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, it.ID)
	}
	reads := 0
	fps := map[string][]byte{filepath.Base(b.Rel): b.Fingerprint, "IMG_00009.JPG": fpOf("new")}
	fp := func(name string) ([]byte, error) { reads++; return fps[name], nil }

	unknown, err := q.ScanDir("100CAM", listingOf(a, b, c), fp)
	if err != nil || len(unknown) != 0 || reads != 0 {
		t.Fatalf("all known by hint: unknown %v, %d reads, %v", unknown, reads, err)
	}
	tx := lastTxID(t, q)
	if unknown, err := q.ScanDir("100CAM", listingOf(c, a, b), fp); err != nil || len(unknown) != 0 || lastTxID(t, q) != tx {
		t.Fatalf("unchanged folder: unknown %v, wrote %v, %v", unknown, lastTxID(t, q) != tx, err)
	}

	// b seen two hours later (time zone), a new shot, a rewritten c.
	b2 := b
	b2.ModTime = b.ModTime.Add(2 * time.Hour)
	c2 := c
	c2.ModTime = c.ModTime.Add(time.Minute)
	fps[filepath.Base(c.Rel)] = fpOf("rewritten")
	n := capN(9)
	files := listingOf(a, b2, c2, n)
	unknown, err = q.ScanDir("100CAM", files, fp)
	if err != nil || reads != 2 {
		t.Fatalf("scan: %v, %d fingerprint reads (want 2: b and c)", err, reads)
	}
	var names []string
	for _, i := range unknown {
		names = append(names, files[i].Name)
	}
	if len(names) != 2 || names[0] != "IMG_00003.JPG" || names[1] != "IMG_00009.JPG" {
		t.Fatalf("unknown %v, want the rewritten IMG_00003 and the new IMG_00009", names)
	}
	before := reads
	if unknown, err := q.ScanDir("100CAM", listingOf(a, b2), fp); err != nil || len(unknown) != 0 || reads != before {
		t.Fatalf("hint of b not updated: unknown %v, %d more reads, %v", unknown, reads-before, err)
	}

	// a is gone from the card: absent; back: not absent.
	clk.Add(time.Minute)
	if _, err := q.ScanDir("100CAM", listingOf(b2), fp); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.Get(ids[0]); !got.AbsentSince.Equal(clk.Now()) {
		t.Fatalf("a not marked absent: %+v", got.AbsentSince)
	}
	if _, err := q.ScanDir("100CAM", listingOf(a, b2), fp); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.Get(ids[0]); !got.AbsentSince.IsZero() {
		t.Fatal("a still absent after it came back")
	}
	// A folder gone from the card: its items absent.
	if err := q.DirsGone(map[string]bool{"other": true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.Get(ids[1]); got.AbsentSince.IsZero() {
		t.Fatal("item of a gone folder not absent")
	}
	mustVerify(t, q)
}

// encodeV1 writes r as a schema 1 record (version 1: no fingerprint,
// intent or absence fields), as camftpd before schema 2 did.
func encodeV1(r *rec) []byte {
	st := r.State
	r.State = Pending // encodeRec keeps Path for unsettled records
	c := r.Capture.Fingerprint
	r.Capture.Fingerprint = nil
	b := encodeRec(r)
	r.State, r.Capture.Fingerprint = st, c
	b = b[:len(b)-4-5] // CRC, and the five empty v2 fields
	b[0], b[1] = 1, stateCode[st]
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// TestMigrateSchema1 opens a schema 1 file: IDs kept, fingerprints taken
// from the files still on the card, a done item whose file is gone marked
// absent, counts and indexes rebuilt, and the same shot found by its new
// identity.
func TestMigrateSchema1(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "q.db")
	mk := func(name, content string, st State, seq uint64) *rec {
		p := filepath.Join(dir, "media", "100CAM", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if content != "" {
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		fi, _ := os.Stat(p)
		c := Capture{Path: p, Rel: "100CAM/" + name, Size: int64(len(content)), Inode: seq}
		if fi != nil {
			c.ModTime = fi.ModTime()
		}
		r := &rec{Item: Item{ID: "v1id" + name, Seq: seq, Capture: c, State: st, Enqueued: time.Unix(1764000000, 0)}}
		if st == Done {
			r.doneSeq, r.Remote, r.DoneAt = seq, "/up/"+name, time.Unix(1764000100, 0)
		}
		return r
	}
	recs := []*rec{mk("A.JPG", "shot a", Done, 1), mk("B.JPG", "", Done, 2), mk("C.JPG", "shot c", Pending, 3)}
	recs[1].Capture.Size = 77 // its file is gone
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"items", "meta", "pending", "inflight", "retry", "parked", "done"} {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketMeta).Put(keySchema, []byte{1}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketMeta).Put(keyCounts, make([]byte, 40)); err != nil {
			return err
		}
		for _, r := range recs {
			if err := tx.Bucket(bucketItems).Put([]byte(r.ID), encodeV1(r)); err != nil {
				return err
			}
			if err := tx.Bucket(indexBucket[r.State]).Put(indexKey(r), []byte(r.ID)); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	q := openT(t, path, nil)
	mustVerify(t, q)
	if c, _ := q.Counts(); c.Done != 2 || c.Pending != 1 {
		t.Fatalf("counts after migration: %+v", c)
	}
	a, _ := q.Get("v1idA.JPG")
	want, _ := Fingerprint(bytes.NewReader([]byte("shot a")), 6)
	if !bytes.Equal(a.Capture.Fingerprint, want) || !a.AbsentSince.IsZero() || a.State != Done {
		t.Fatalf("A after migration: %+v", a)
	}
	if b, _ := q.Get("v1idB.JPG"); b.AbsentSince.IsZero() || b.Capture.Fingerprint != nil {
		t.Fatalf("B (file gone) must be absent without fingerprint: %+v", b)
	}
	same := a.Capture
	same.Inode, same.ModTime = 999, same.ModTime.Add(time.Hour)
	if it, found, err := q.Lookup(same); err != nil || !found || it.ID != "v1idA.JPG" {
		t.Fatalf("the migrated shot not found by identity: %+v %v %v", it, found, err)
	}
	if it, added, err := q.Enqueue(same); err != nil || added || it.ID != "v1idA.JPG" {
		t.Fatalf("re-enqueue of a migrated done shot: %+v %v %v", it, added, err)
	}
}

// TestScanDirTimeShift: a folder of 50 shots seen with every mtime shifted
// by one hour (a FAT card mounted with another time zone offset) costs
// three fingerprint reads, not 50; a shift the fingerprints do not confirm
// makes every file be read.
func TestScanDirTimeShift(t *testing.T) {
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), nil)
	var shifted []FileInfo
	byName := map[string][]byte{}
	for i := 0; i < 50; i++ {
		c := capN(i)
		if _, _, err := q.Enqueue(c); err != nil {
			t.Fatal(err)
		}
		c.ModTime = c.ModTime.Add(time.Hour)
		shifted = append(shifted, listingOf(c)...)
		byName[filepath.Base(c.Rel)] = c.Fingerprint
	}
	reads := 0
	unknown, err := q.ScanDir("100CAM", shifted, func(name string) ([]byte, error) { reads++; return byName[name], nil })
	if err != nil || len(unknown) != 0 || reads != shiftConfirmations {
		t.Fatalf("shifted folder: %d unknown, %d reads (want 0 and %d), %v", len(unknown), reads, shiftConfirmations, err)
	}
	// Shifted again, but the first files are other shots: no shortcut.
	for i := range shifted {
		shifted[i].ModTime = shifted[i].ModTime.Add(time.Hour)
	}
	reads = 0
	unknown, err = q.ScanDir("100CAM", shifted, func(name string) ([]byte, error) {
		reads++
		if name == "IMG_00000.JPG" {
			return fpOf("another shot"), nil
		}
		return byName[name], nil
	})
	if err != nil || len(unknown) != 1 || reads != 50 {
		t.Fatalf("unconfirmed shift: %d unknown, %d reads (want 1 and 50), %v", len(unknown), reads, err)
	}
	mustVerify(t, q)
}
