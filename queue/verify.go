package queue

import (
	"bytes"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Verify checks the queue's invariants in one read transaction: every item
// decodes, has the ID its identity gives, appears in exactly one index (the
// one of its state) under the right key, no index entry points elsewhere, no
// two items share an identity, and the stored counts match. Open runs it
// and rebuilds the indexes if it fails; tests run it after every crash.
func (q *Queue) Verify() error {
	err := q.db.View(func(tx *bolt.Tx) error { return verifyTx(tx) })
	if err != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("queue: verify %s: %w", q.path, err)
	}
	return err
}

func verifyTx(tx *bolt.Tx) error {
	t := &txn{tx: tx}
	var n [5]int64
	idents := map[string]string{}
	err := t.bucket(bucketItems).ForEach(func(k, v []byte) error {
		r, err := decodeRec(v)
		if err != nil {
			return fmt.Errorf("item %q: %w", k, err)
		}
		if r.ID != string(k) {
			return fmt.Errorf("item %q holds ID %q", k, r.ID)
		}
		id := identity(r.Capture)
		if other, dup := idents[id]; dup {
			return fmt.Errorf("items %s and %s have the same identity (%s)", other, r.ID, r.Capture.Path)
		}
		idents[id] = r.ID
		okID := false
		for i := 0; i < 100 && !okID; i++ {
			okID = candidateID(r.Capture, i) == r.ID
		}
		if !okID {
			return fmt.Errorf("item %s: ID does not derive from its identity (%s)", r.ID, r.Capture.Path)
		}
		got := tx.Bucket(indexBucket[r.State]).Get(indexKey(r))
		if !bytes.Equal(got, k) {
			return fmt.Errorf("item %s (%s) is missing from the %s index", r.ID, r.State, r.State)
		}
		n[stateIndex(r.State)]++
		return nil
	})
	if err != nil {
		return err
	}
	for _, s := range allStates {
		idx := 0
		err := tx.Bucket(indexBucket[s]).ForEach(func(k, v []byte) error {
			idx++
			r, err := t.get(string(v))
			if err != nil {
				return fmt.Errorf("%s index entry %x -> %q: %w", s, k, v, err)
			}
			if r.State != s || !bytes.Equal(indexKey(r), k) {
				return fmt.Errorf("%s index entry %x -> %s, but that item is %s", s, k, v, r.State)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if int64(idx) != n[stateIndex(s)] {
			return fmt.Errorf("%s index has %d entries for %d items", s, idx, n[stateIndex(s)])
		}
	}
	stored, err := readCounts(tx)
	if err != nil {
		return err
	}
	if stored != n {
		return fmt.Errorf("stored counts %v differ from items %v", stored, n)
	}
	return nil
}
