package queue

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// File layout (schema 2). Every item lives in bucketItems under its ID, in
// exactly one index bucket, the one of its state, whose value is the ID, and
// in bucketFiles under its folder and name:
//
//	items    ID                       -> record
//	pending  prio(8) seq(8)           -> ID   (higher priority first, then FIFO)
//	inflight leaseUntil(8) seq(8)     -> ID
//	retry    nextAttempt(8) seq(8)    -> ID
//	parked   seq(8)                   -> ID
//	done     doneSeq(8)               -> ID   (oldest first)
//	held     seq(8)                   -> ID
//	skipped  doneSeq(8)               -> ID
//	files    dir 0 name 0 ID          -> size(8) mtime(8) absent(1) fingerprint  (mtime: the hint, as the file was last seen)
//	absent   absentSince(8) seq(8)    -> ID   (items whose file a scan did not find)
//	dirs     dir                      -> digest of its listing when every file in it was known
//	meta     "schema" -> 2, "counts" -> 7 x uint64, "absent" -> entries of absent (8), "baseline" -> time(8)
//
// Schema 1 (identity path+size+mtime+inode, five states) is migrated by Open.
var (
	bucketItems  = []byte("items")
	bucketMeta   = []byte("meta")
	bucketFiles  = []byte("files")
	bucketAbsent = []byte("absent")
	bucketDirs   = []byte("dirs")
	keySchema    = []byte("schema")
	keyCounts    = []byte("counts")
	keyBaseline  = []byte("baseline")
	keyAbsentN   = []byte("absent")

	indexBucket = map[State][]byte{
		Pending:  []byte("pending"),
		InFlight: []byte("inflight"),
		Retry:    []byte("retry"),
		Parked:   []byte("parked"),
		Done:     []byte("done"),
		Held:     []byte("held"),
		Skipped:  []byte("skipped"),
	}
)

const schemaVersion = 2

// rec is an Item plus the bookkeeping that is not exported.
type rec struct {
	Item
	doneSeq uint64 // key in the done or skipped index
	streak  int    // consecutive transient failures, drives the backoff
	leased  bool   // leased at least once (Release keeps it)
}

// FingerprintSize is the length of Capture.Fingerprint.
const FingerprintSize = 16

// fingerprintBlock is how much of each end of a file Fingerprint reads.
const fingerprintBlock = 64 << 10

// Fingerprint reads the first and last 64 KiB of a capture of size bytes
// (the whole file when it is smaller than 128 KiB) and returns 16 bytes of
// their SHA-256, with the size: with the relative path and the size it is a
// capture's identity. A JPEG's or RAW file's first block holds its EXIF
// header (time to the subsecond, serial and shot counters), its last block
// the end of the image data: two shots that share all three do not occur.
func Fingerprint(r io.ReaderAt, size int64) ([]byte, error) {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(size))
	h.Write(n[:])
	bp := fingerprintBufs.Get().(*[]byte)
	defer fingerprintBufs.Put(bp)
	buf := *bp
	read := func(off, l int64) error {
		m, err := r.ReadAt(buf[:l], off)
		if int64(m) == l {
			err = nil
		} else if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("file shorter than %d bytes (read %d at %d): it changed", size, m, off)
		}
		h.Write(buf[:m])
		return err
	}
	if size <= 2*fingerprintBlock {
		for off := int64(0); off < size; off += fingerprintBlock {
			if err := read(off, min(fingerprintBlock, size-off)); err != nil {
				return nil, err
			}
		}
	} else if err := read(0, fingerprintBlock); err != nil {
		return nil, err
	} else if err := read(size-fingerprintBlock, fingerprintBlock); err != nil {
		return nil, err
	}
	return h.Sum(nil)[:FingerprintSize], nil
}

// identity is the stable identity of a capture: path relative to the media
// root, size and content fingerprint. Mount point, inode and modification
// time are not part of it (FAT file systems hand out inodes per mount and
// shift mtimes with the time zone).
func identity(c Capture) string {
	return c.Rel + "\x00" + strconv.FormatInt(c.Size, 10) + "\x00" + string(c.Fingerprint)
}

// baseID derives a new item's ID from the identity: 16 hex digits of its
// SHA-256. The ID is kept for the item's life (and across a schema
// migration), so it can name a remote temp file for resume.
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
	case Parked, Held:
		return key1(r.Seq)
	case Done, Skipped:
		return key1(r.doneSeq)
	}
	panic("queue: unknown state " + string(r.State))
}

// keyTime decodes the time prefix of an inflight or retry index key.
func keyTime(k []byte) time.Time {
	return nsTime(int64(binary.BigEndian.Uint64(k) ^ (1 << 63)))
}

// ---- record encoding ----

// recVersion 2 adds, after version 1's fields: fingerprint, intent (temp,
// final, size) and absentSince. Version 1 records are read for migration.
const recVersion = 2

var stateCode = map[State]byte{Pending: 1, InFlight: 2, Retry: 3, Done: 4, Parked: 5, Held: 6, Skipped: 7}
var codeState = map[byte]State{1: Pending, 2: InFlight, 3: Retry, 4: Done, 5: Parked, 6: Held, 7: Skipped}

// numStates is the number of states (the length of the counts record).
const numStates = 7

func encodeRec(r *rec) []byte {
	path, worker, lastErr := r.Capture.Path, r.Worker, r.LastError
	if r.State == Done || r.State == Skipped {
		// Settled: kept as history, possibly for years and by the hundred
		// thousand; the local path (the media root may move: Rel is the
		// identity), the worker and the last error are not worth their bytes.
		path, worker, lastErr = "", "", ""
	}
	b := make([]byte, 0, 200+len(r.Capture.Path)+len(r.Capture.Rel)+len(r.LastError)+len(r.Reason)+len(r.Remote)+len(r.Hash)+
		len(r.Intent.Temp)+len(r.Intent.Final))
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
	for _, s := range []string{r.ID, path, r.Capture.Rel, worker, lastErr, r.Reason, r.Remote, r.Hash,
		string(r.Capture.Fingerprint), r.Intent.Temp, r.Intent.Final} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendVarint(b, r.Intent.Size)
	b = binary.AppendVarint(b, timeNs(r.AbsentSince))
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
	if len(b) < 7 || b[0] < 1 || b[0] > recVersion {
		return nil, errRecord
	}
	version := b[0]
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
	if version >= 2 {
		if fp := d.str(); fp != "" {
			r.Capture.Fingerprint = []byte(fp)
		}
		r.Intent.Temp = d.str()
		r.Intent.Final = d.str()
		r.Intent.Size = d.varint()
		r.AbsentSince = nsTime(d.varint())
	}
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
	// counts and absentN (entries of the absent index) are loaded lazily
	// and written back by flush.
	counts  *[numStates]int64
	absentN *int64
}

func stateIndex(s State) int { return int(stateCode[s]) - 1 }

func (t *txn) bucket(name []byte) *bolt.Bucket {
	b := t.tx.Bucket(name)
	if b == nil {
		panic(fmt.Sprintf("queue: bucket %q missing", name))
	}
	return b
}

func readCounts(tx *bolt.Tx) ([numStates]int64, error) {
	var c [numStates]int64
	v := tx.Bucket(bucketMeta).Get(keyCounts)
	if v == nil {
		return c, nil
	}
	if len(v) != 8*numStates {
		return c, fmt.Errorf("counts record has %d bytes, want %d", len(v), 8*numStates)
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
	if t.absentN != nil {
		if err := t.bucket(bucketMeta).Put(keyAbsentN, key1(uint64(*t.absentN))); err != nil {
			return err
		}
	}
	if t.counts == nil {
		return nil
	}
	v := make([]byte, 8*numStates)
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
	if (r.State == Done || r.State == Skipped) && r.doneSeq == 0 {
		seq, err := t.bucket(indexBucket[r.State]).NextSequence()
		if err != nil {
			return err
		}
		r.doneSeq = seq
	}
	if err := t.bucket(bucketItems).Put([]byte(r.ID), encodeRec(r)); err != nil {
		return err
	}
	idx := t.bucket(indexBucket[r.State])
	if r.State == Done || r.State == Skipped {
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

// first returns the first key/value of an index bucket.
func (t *txn) first(s State) ([]byte, []byte) {
	return t.bucket(indexBucket[s]).Cursor().First()
}

func createBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketItems, bucketMeta, bucketFiles, bucketAbsent, bucketDirs} {
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
	} else if len(v) != 1 || v[0] > schemaVersion || v[0] == 0 {
		return fmt.Errorf("%w: schema %v", errNewerSchema, v)
	}
	return nil
}

var errNewerSchema = errors.New("unknown schema")
