package queue

import (
	"bytes"
	"encoding/binary"
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
	var n [numStates]int64
	var absent int64
	idents := map[string]string{}
	err := t.bucket(bucketItems).ForEach(func(k, v []byte) error {
		r, err := decodeRec(v)
		if err != nil {
			return fmt.Errorf("item %q: %w", k, err)
		}
		if r.ID != string(k) {
			return fmt.Errorf("item %q holds ID %q", k, r.ID)
		}
		if len(r.Capture.Fingerprint) > 0 {
			id := identity(r.Capture)
			if other, dup := idents[id]; dup {
				return fmt.Errorf("items %s and %s have the same identity (%s)", other, r.ID, r.Capture.Rel)
			}
			idents[id] = r.ID
		}
		if err := verifyFileEntries(tx, r); err != nil {
			return err
		}
		if !r.AbsentSince.IsZero() {
			absent++
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
		idx, err := t.verifyIndex(s, nil)
		if err != nil {
			return err
		}
		if idx != n[stateIndex(s)] {
			return fmt.Errorf("%s index has %d entries for %d items", s, idx, n[stateIndex(s)])
		}
	}
	if err := verifyAbsent(tx, absent); err != nil {
		return err
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

// verifyFileEntries checks r's entries in the files and absent indexes.
func verifyFileEntries(tx *bolt.Tx, r *rec) error {
	v := tx.Bucket(bucketFiles).Get(fileKey(r.Capture.Rel, r.ID))
	if e := parseHint(v); e.size != r.Capture.Size || e.absent != !r.AbsentSince.IsZero() || !bytes.Equal(e.fp, r.Capture.Fingerprint) {
		return fmt.Errorf("item %s (%s) has no matching entry in the files index", r.ID, r.Capture.Rel)
	}
	if !r.AbsentSince.IsZero() {
		got := tx.Bucket(bucketAbsent).Get(key2(sortable(timeNs(r.AbsentSince)), r.Seq))
		if string(got) != r.ID {
			return fmt.Errorf("item %s (%s) is absent but missing from the absent index", r.ID, r.Capture.Rel)
		}
	}
	return nil
}

// verifyAbsent checks that the files and absent indexes hold nothing else
// and that the absent count is right.
func verifyAbsent(tx *bolt.Tx, absent int64) error {
	items := tx.Bucket(bucketItems)
	var files int64
	err := tx.Bucket(bucketFiles).ForEach(func(k, _ []byte) error {
		files++
		if items.Get(k[bytes.LastIndexByte(k, 0)+1:]) == nil {
			return fmt.Errorf("files index entry %q names no item", k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n := int64(items.Stats().KeyN); files != n {
		return fmt.Errorf("files index has %d entries for %d items", files, n)
	}
	if n := int64(tx.Bucket(bucketAbsent).Stats().KeyN); n != absent {
		return fmt.Errorf("absent index has %d entries for %d absent items", n, absent)
	}
	var stored int64
	if v := tx.Bucket(bucketMeta).Get(keyAbsentN); len(v) == 8 {
		stored = int64(binary.BigEndian.Uint64(v))
	}
	if stored != absent {
		return fmt.Errorf("stored absent count %d, %d absent items", stored, absent)
	}
	return nil
}

// activeStates are the states whose items Open checks one by one: the work
// still to do, bounded by what the camera has not delivered yet.
var activeStates = []State{Pending, InFlight, Retry, Parked, Held}

// verifyActiveTx is Open's check: every item of an active state decodes,
// is indexed under its state and key, has its files entry, and the stored
// count of each active state is right. The history of done and skipped
// items (250,000 shots on a full card) is not read at Open, so that a
// start costs neither the time nor the memory of touching every page of a
// 100 MiB file: a history record is checked by its CRC when it is read,
// and one that fails is passed over as unknown (at worst its shot is
// offered again, and the upload's same-content check finds it on the
// server). Verify checks everything.
func verifyActiveTx(tx *bolt.Tx) error {
	t := &txn{tx: tx}
	stored, err := readCounts(tx)
	if err != nil {
		return err
	}
	for _, s := range activeStates {
		n, err := t.verifyIndex(s, func(r *rec) error { return verifyFileEntries(tx, r) })
		if err != nil {
			return err
		}
		if n != stored[stateIndex(s)] {
			return fmt.Errorf("stored count of %s is %d, its index has %d", s, stored[stateIndex(s)], n)
		}
	}
	for _, s := range []State{Done, Skipped} {
		if stored[stateIndex(s)] < 0 {
			return fmt.Errorf("stored count of %s is %d", s, stored[stateIndex(s)])
		}
	}
	return nil
}

// verifyIndex checks that every entry of state s's index names an item in
// that state under its key (and passes check, if given); it returns the
// number of entries.
func (t *txn) verifyIndex(s State, check func(*rec) error) (int64, error) {
	n := int64(0)
	err := t.bucket(indexBucket[s]).ForEach(func(k, v []byte) error {
		n++
		r, err := t.get(string(v))
		if err != nil {
			return fmt.Errorf("%s index entry %x -> %q: %w", s, k, v, err)
		}
		if r.State != s || !bytes.Equal(indexKey(r), k) {
			return fmt.Errorf("%s index entry %x -> %s, but that item is %s", s, k, v, r.State)
		}
		if check != nil {
			return check(r)
		}
		return nil
	})
	return n, err
}
