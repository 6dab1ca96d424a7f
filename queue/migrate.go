package queue

import (
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

// migrate1 turns a schema 1 file (identity path+size+mtime+inode, five
// states) into schema 2 inside tx, keeping every item's ID (a remote
// temporary file named after it can still be resumed). Each item gets the
// fingerprint of its file when the file is still there with the size and
// modification time it was queued with; an item whose file is gone or
// changed keeps an empty fingerprint (no capture matches it by content) and
// a done one is marked absent, so that it leaves the history in time.
func migrate1(tx *bolt.Tx, now func() (ns int64)) (int, error) {
	t := &txn{tx: tx}
	var recs []*rec
	err := t.bucket(bucketItems).ForEach(func(k, v []byte) error {
		r, err := decodeRec(v)
		if err != nil {
			return corrupt("schema 1 item %q: %v", k, err)
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return 0, err
	}
	var zero [numStates]int64
	t.counts = &zero
	for _, r := range recs {
		r.Capture.Fingerprint = fingerprintIfSame(r.Capture)
		if r.Capture.Rel == "" {
			r.Capture.Rel = r.Capture.Path
		}
		if r.Capture.Fingerprint == nil && r.State == Done {
			if err := t.setAbsent(r, nsTime(now())); err != nil {
				return 0, err
			}
		}
		if err := t.bucket(bucketItems).Put([]byte(r.ID), encodeRec(r)); err != nil {
			return 0, err
		}
		if err := t.putFile(r, timeNs(r.Capture.ModTime)); err != nil {
			return 0, err
		}
		t.adjust(r.State, 1)
	}
	if err := t.bucket(bucketMeta).Put(keySchema, []byte{schemaVersion}); err != nil {
		return 0, err
	}
	if err := t.flush(); err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	return len(recs), nil
}

// fingerprintIfSame fingerprints c's file if it is still there unchanged.
func fingerprintIfSame(c Capture) []byte {
	f, err := os.Open(c.Path)
	if err != nil {
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() != c.Size || timeNs(st.ModTime()) != timeNs(c.ModTime) {
		return nil
	}
	fp, err := Fingerprint(f, c.Size)
	if err != nil {
		return nil
	}
	return fp
}
