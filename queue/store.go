package queue

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// File layout (schema 1). Every item lives in bucketItems under its ID and
// in exactly one index bucket, the one of its state, whose value is the ID:
//
//	items    ID                       -> record
//	pending  prio(8) seq(8)           -> ID   (higher priority first, then FIFO)
//	inflight leaseUntil(8) seq(8)     -> ID
//	retry    nextAttempt(8) seq(8)    -> ID
//	parked   seq(8)                   -> ID
//	done     doneSeq(8)               -> ID   (oldest first, for pruning)
//	meta     "schema" -> 1, "counts" -> 5 x uint64
var (
	bucketItems = []byte("items")
	bucketMeta  = []byte("meta")
	keySchema   = []byte("schema")
	keyCounts   = []byte("counts")

	indexBucket = map[State][]byte{
		Pending:  []byte("pending"),
		InFlight: []byte("inflight"),
		Retry:    []byte("retry"),
		Parked:   []byte("parked"),
		Done:     []byte("done"),
	}
)

const schemaVersion = 1

// rec is an Item plus the bookkeeping that is not exported.
type rec struct {
	Item
	doneSeq uint64 // key in the done index
	streak  int    // consecutive transient failures, drives the backoff
	leased  bool   // leased at least once (Release keeps it)
}

// identity is the stable identity of a capture: path, size, mtime in
// nanoseconds and inode. Priority and Rel are not part of it.
func identity(c Capture) string {
	return c.Path + "\x00" + strconv.FormatInt(c.Size, 10) + "\x00" +
		strconv.FormatInt(timeNs(c.ModTime), 10) + "\x00" + strconv.FormatUint(c.Inode, 10)
}

// baseID derives the item ID from the identity: 16 hex digits of its
// SHA-256. It is stable across restarts and across a rebuilt file, so it can
// name a remote temp file for resume.
func baseID(c Capture) string {
	sum := sha256.Sum256([]byte(identity(c)))
	return hex.EncodeToString(sum[:8])
}

// candidateID is the n-th ID tried for a capture (n > 0 only after a hash
// collision with a different identity).
func candidateID(c Capture, n int) string {
	if n == 0 {
		return baseID(c)
	}
	return baseID(c) + "-" + strconv.Itoa(n)
}

func timeNs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func nsTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// sortable maps a signed value onto big-endian bytes that sort in order.
func sortable(v int64) uint64 { return uint64(v) ^ (1 << 63) }

func key2(a uint64, b uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, a)
	binary.BigEndian.PutUint64(k[8:], b)
	return k
}

func key1(a uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, a)
	return k
}

// indexKey is the key of r in the index bucket of its state.
func indexKey(r *rec) []byte {
	switch r.State {
	case Pending:
		return key2(sortable(-int64(r.Capture.Priority)), r.Seq)
	case InFlight:
		return key2(sortable(timeNs(r.LeaseUntil)), r.Seq)
	case Retry:
		return key2(sortable(timeNs(r.NextAttempt)), r.Seq)
	case Parked:
		return key1(r.Seq)
	case Done:
		return key1(r.doneSeq)
	}
	panic("queue: unknown state " + string(r.State))
}

// keyTime decodes the time prefix of an inflight or retry index key.
func keyTime(k []byte) time.Time {
	return nsTime(int64(binary.BigEndian.Uint64(k) ^ (1 << 63)))
}

// ---- record encoding ----

const recVersion = 1

var stateCode = map[State]byte{Pending: 1, InFlight: 2, Retry: 3, Done: 4, Parked: 5}
var codeState = map[byte]State{1: Pending, 2: InFlight, 3: Retry, 4: Done, 5: Parked}

func encodeRec(r *rec) []byte {
	b := make([]byte, 0, 160+len(r.Capture.Path)+len(r.Capture.Rel)+len(r.LastError)+len(r.Reason)+len(r.Remote)+len(r.Hash))
	b = append(b, recVersion, stateCode[r.State])
	var flags byte
	if r.Vanished {
		flags |= 1
	}
	if r.leased {
		flags |= 2
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, r.Seq)
	b = binary.AppendUvarint(b, r.doneSeq)
	b = binary.AppendVarint(b, int64(r.streak))
	b = binary.AppendVarint(b, int64(r.Attempts))
	b = binary.AppendVarint(b, int64(r.Capture.Priority))
	b = binary.AppendVarint(b, r.Capture.Size)
	b = binary.AppendUvarint(b, r.Capture.Inode)
	for _, t := range []time.Time{r.Capture.ModTime, r.Enqueued, r.NextAttempt, r.LeaseUntil, r.DoneAt} {
		b = binary.AppendVarint(b, timeNs(t))
	}
	for _, s := range []string{r.ID, r.Capture.Path, r.Capture.Rel, r.Worker, r.LastError, r.Reason, r.Remote, r.Hash} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	// bbolt has no checksums of its own: a CRC-32C of the record catches
	// damaged bytes in it.
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errRecord = errors.New("malformed record")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errRecord
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func decodeRec(b []byte) (*rec, error) {
	if len(b) < 7 || b[0] != recVersion {
		return nil, errRecord
	}
	n := len(b) - 4
	if crc32.Checksum(b[:n], castagnoli) != binary.BigEndian.Uint32(b[n:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", errRecord)
	}
	b = b[:n]
	st, ok := codeState[b[1]]
	if !ok {
		return nil, errRecord
	}
	r := &rec{}
	r.State = st
	r.Vanished = b[2]&1 != 0
	r.leased = b[2]&2 != 0
	d := &decoder{b: b[3:]}
	r.Seq = d.uvarint()
	r.doneSeq = d.uvarint()
	r.streak = int(d.varint())
	r.Attempts = int(d.varint())
	r.Capture.Priority = int(d.varint())
	r.Capture.Size = d.varint()
	r.Capture.Inode = d.uvarint()
	r.Capture.ModTime = nsTime(d.varint())
	r.Enqueued = nsTime(d.varint())
	r.NextAttempt = nsTime(d.varint())
	r.LeaseUntil = nsTime(d.varint())
	r.DoneAt = nsTime(d.varint())
	r.ID = d.str()
	r.Capture.Path = d.str()
	r.Capture.Rel = d.str()
	r.Worker = d.str()
	r.LastError = d.str()
	r.Reason = d.str()
	r.Remote = d.str()
	r.Hash = d.str()
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, errRecord
	}
	return r, nil
}

// ---- transactional helpers; all run inside one bbolt transaction ----

type txn struct {
	tx *bolt.Tx
	// counts is loaded lazily and written back by flush.
	counts *[5]int64
}

func stateIndex(s State) int { return int(stateCode[s]) - 1 }

func (t *txn) bucket(name []byte) *bolt.Bucket {
	b := t.tx.Bucket(name)
	if b == nil {
		panic(fmt.Sprintf("queue: bucket %q missing", name))
	}
	return b
}

func readCounts(tx *bolt.Tx) ([5]int64, error) {
	var c [5]int64
	v := tx.Bucket(bucketMeta).Get(keyCounts)
	if v == nil {
		return c, nil
	}
	if len(v) != 40 {
		return c, fmt.Errorf("counts record has %d bytes, want 40", len(v))
	}
	for i := range c {
		c[i] = int64(binary.BigEndian.Uint64(v[i*8:]))
	}
	return c, nil
}

func (t *txn) adjust(s State, delta int64) {
	if t.counts == nil {
		c, _ := readCounts(t.tx)
		t.counts = &c
	}
	t.counts[stateIndex(s)] += delta
}

func (t *txn) flush() error {
	if t.counts == nil {
		return nil
	}
	v := make([]byte, 40)
	for i, n := range t.counts {
		binary.BigEndian.PutUint64(v[i*8:], uint64(n))
	}
	return t.bucket(bucketMeta).Put(keyCounts, v)
}

func (t *txn) get(id string) (*rec, error) {
	v := t.bucket(bucketItems).Get([]byte(id))
	if v == nil {
		return nil, ErrNotFound
	}
	r, err := decodeRec(v)
	if err != nil {
		return nil, fmt.Errorf("queue: item %s: %w", id, err)
	}
	return r, nil
}

// inState loads every record in state s. It reads the whole index first,
// so the caller may move the records it gets.
func (t *txn) inState(s State) ([]*rec, error) {
	var ids []string
	err := t.bucket(indexBucket[s]).ForEach(func(_, v []byte) error {
		ids = append(ids, string(v))
		return nil
	})
	if err != nil {
		return nil, err
	}
	recs := make([]*rec, 0, len(ids))
	for _, id := range ids {
		r, err := t.get(id)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// unindex removes r from the index of its current state.
func (t *txn) unindex(r *rec) error {
	if err := t.bucket(indexBucket[r.State]).Delete(indexKey(r)); err != nil {
		return err
	}
	t.adjust(r.State, -1)
	return nil
}

// put writes r and adds it to the index of its state.
func (t *txn) put(r *rec) error {
	if r.State == Done && r.doneSeq == 0 {
		seq, err := t.bucket(indexBucket[Done]).NextSequence()
		if err != nil {
			return err
		}
		r.doneSeq = seq
	}
	if err := t.bucket(bucketItems).Put([]byte(r.ID), encodeRec(r)); err != nil {
		return err
	}
	idx := t.bucket(indexBucket[r.State])
	if r.State == Done {
		// Done keys only grow: pack the pages (bbolt's default split is at half).
		idx.FillPercent = 0.95
	}
	if err := idx.Put(indexKey(r), []byte(r.ID)); err != nil {
		return err
	}
	t.adjust(r.State, 1)
	return nil
}

// move changes the state of r (already loaded, still indexed under its old
// state) after mutate has adjusted its fields.
func (t *txn) move(r *rec, mutate func(r *rec)) error {
	if err := t.unindex(r); err != nil {
		return err
	}
	mutate(r)
	return t.put(r)
}

// remove deletes r entirely.
func (t *txn) remove(r *rec) error {
	if err := t.unindex(r); err != nil {
		return err
	}
	return t.bucket(bucketItems).Delete([]byte(r.ID))
}

// find looks a capture up by identity. It returns the record if present;
// otherwise the ID a new item for it must take.
func (t *txn) find(c Capture) (r *rec, freeID string, err error) {
	want := identity(c)
	items := t.bucket(bucketItems)
	for n := 0; n < 100; n++ {
		id := candidateID(c, n)
		v := items.Get([]byte(id))
		if v == nil {
			return nil, id, nil
		}
		r, err := decodeRec(v)
		if err != nil {
			return nil, "", fmt.Errorf("queue: item %s: %w", id, err)
		}
		if identity(r.Capture) == want {
			return r, "", nil
		}
	}
	return nil, "", fmt.Errorf("queue: too many ID collisions for %s", c.Path)
}

// first returns the first key/value of an index bucket.
func (t *txn) first(s State) ([]byte, []byte) {
	return t.bucket(indexBucket[s]).Cursor().First()
}

func createBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketItems, bucketMeta} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	for _, s := range allStates {
		if _, err := tx.CreateBucketIfNotExists(indexBucket[s]); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keySchema); v == nil {
		return meta.Put(keySchema, []byte{schemaVersion})
	} else if len(v) != 1 || v[0] != schemaVersion {
		return fmt.Errorf("%w: schema %v", errNewerSchema, v)
	}
	return nil
}

var errNewerSchema = errors.New("unknown schema")
