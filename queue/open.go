package queue

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.BackoffMin <= 0 {
		r.BackoffMin = DefaultBackoffMin
	}
	if r.BackoffMax <= 0 {
		r.BackoffMax = DefaultBackoffMax
	}
	if r.BackoffMax < r.BackoffMin {
		r.BackoffMax = r.BackoffMin
	}
	if r.HistoryMaxAge == 0 {
		r.HistoryMaxAge = DefaultHistoryMaxAge
	}
	if r.HistoryMaxCount == 0 {
		r.HistoryMaxCount = DefaultHistoryMaxCount
	}
	if r.LeaseTime <= 0 {
		r.LeaseTime = DefaultLeaseTime
	}
	if r.LockTimeout <= 0 {
		r.LockTimeout = DefaultLockTimeout
	}
	if r.MaxFileSize == 0 {
		r.MaxFileSize = DefaultMaxFileSize
	}
	if r.Now == nil {
		r.Now = time.Now
		if r.Elapsed == nil {
			start := time.Now()
			r.Elapsed = func() time.Duration { return time.Since(start) }
		}
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	return r
}

// Open opens (or creates) the queue at path. A corrupt or unreadable file
// is moved aside to <path>.corrupt-<UTC time> with an error log line and a
// fresh file is created; Recovered then reports true and the caller should
// rescan the media directory. If another process holds the file, Open fails
// with ErrLocked after Options.LockTimeout. In-flight leases left by a
// crashed run go back to pending, and the done history is pruned.
func Open(path string, opts *Options) (*Queue, error) {
	o := opts.withDefaults()
	q := &Queue{path: path, opts: o, log: o.Logger, wake: make(chan struct{}, 1)}

	for attempt := 0; ; attempt++ {
		db, err := q.openChecked()
		if err == nil {
			q.db = db
			if err = q.afterOpen(); err != nil {
				db.Close()
			}
		}
		var ce *corruptError
		if err == nil || !errors.As(err, &ce) || attempt > 0 {
			if err != nil {
				return nil, err
			}
			return q, nil
		}
		aside, merr := q.moveAside()
		if merr != nil {
			return nil, fmt.Errorf("queue: %s is corrupt (%w) and could not be moved aside: %w: remove or rename it by hand", path, err, merr)
		}
		q.log.Error("queue: queue file is corrupt or unreadable; moved aside, started an empty queue; rescan the media directory",
			"path", path, "moved_to", aside, "err", err.Error())
		q.recovered = true
	}
}

func (q *Queue) boltOptions() *bolt.Options {
	bo := &bolt.Options{
		Timeout:         q.opts.LockTimeout,
		InitialMmapSize: initialMmapSize,
		FreelistType:    bolt.FreelistMapType,
	}
	if q.opts.MaxFileSize > 0 {
		bo.MaxSize = int(min(q.opts.MaxFileSize, int64(^uint(0)>>1)))
	}
	return bo
}

// checkBeforeOpen looks at the file before bbolt maps it: missing (created
// says so), not a file, empty, as the last Close left it, or else checked
// in full by bbolt's Tx.Check in a child process (checkFile).
func (q *Queue) checkBeforeOpen() (created bool, err error) {
	switch fi, err := os.Stat(q.path); {
	case errors.Is(err, os.ErrNotExist):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("queue: stat %s: %w: check the state directory", q.path, err)
	case !fi.Mode().IsRegular():
		return false, fmt.Errorf("queue: %s is not a regular file: point the queue at a file", q.path)
	case fi.Size() == 0:
		// A file created but never initialised (crash right after create).
		return false, corrupt("empty file")
	case q.takeCleanMark(fi):
		// As the last Close left it: bbolt's full check is skipped.
	default:
		q.unclean = true
		if err := checkFile(q.path, fi.Size(), q.opts.LockTimeout); err != nil {
			var ce *corruptError
			if errors.As(err, &ce) {
				return false, err
			}
			q.log.Warn("queue: could not check the structure of the queue file; opening it without that check",
				"path", q.path, "err", err.Error())
		}
	}
	return false, nil
}

// openChecked opens the bbolt file after bbolt's Tx.Check found its pages
// sound (checkFile), then reads the work it holds. Content problems come
// back as *corruptError.
func (q *Queue) openChecked() (db *bolt.DB, err error) {
	created, err := q.checkBeforeOpen()
	if err != nil {
		return nil, err
	}

	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = corrupt("reading the file panicked: %v", r)
			// Close in the background: if the panic left a bbolt lock held,
			// Close would block. At worst the descriptor (and its flock)
			// leaks; the file is moved aside and a new inode is used.
			if db != nil {
				go db.Close()
				db = nil
			}
		}
	}()
	db, err = bolt.Open(q.path, 0o600, q.boltOptions())
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("queue: open %s: still locked by another process after %s (another camftpd running?): stop it or use another state directory: %w",
			q.path, q.opts.LockTimeout, ErrLocked)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, corrupt("%v", err)
	case errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("queue: open %s: %w: fix the owner or mode of the state directory", q.path, err)
	case err != nil && isFull(err):
		return nil, fmt.Errorf("queue: open %s: %w: free space on its filesystem: %w", q.path, err, ErrFull)
	case err != nil:
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("queue: open %s: %w", q.path, err)
		}
		// Anything else from bbolt (file too small, bad mapping, I/O
		// error while reading) is about the content.
		return nil, corrupt("%v", err)
	}
	db.AllocSize = initialMmapSize
	if created {
		if err := syncDir(filepath.Dir(q.path)); err != nil {
			db.Close()
			return nil, fmt.Errorf("queue: sync directory of %s: %w", q.path, err)
		}
	}
	if !schemaReady(db) {
		err = db.Update(func(tx *bolt.Tx) error { return q.createOrMigrate(tx) })
	}
	if err != nil {
		db.Close()
		if errors.Is(err, errNewerSchema) {
			return nil, fmt.Errorf("queue: %s was written by a newer camftpd (%w): upgrade camftpd or move the file away", q.path, err)
		}
		if isFull(err) {
			return nil, fmt.Errorf("queue: open %s: %w: free space on its filesystem: %w", q.path, err, ErrFull)
		}
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("queue: open %s: %w", q.path, err)
		}
		return nil, corrupt("%v", err)
	}
	if err := checkPages(db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// cleanSuffix names the clean-close marker: <path>.clean.
const cleanSuffix = ".clean"

// cleanMark is what the marker holds: the file's identity, size and
// modification time after the Close that wrote it.
func cleanMark(fi os.FileInfo) string {
	var dev, ino any
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		dev, ino = st.Dev, st.Ino
	}
	return fmt.Sprintf("camftpd queue closed cleanly: dev %v inode %v size %d mtime %d\n", dev, ino, fi.Size(), fi.ModTime().UnixNano())
}

// Close closes the file. Leases still held stay in the file and go back to
// pending at the next Open. It leaves a clean-close marker beside the file
// (see closeClean).
func (q *Queue) Close() error {
	return q.closeClean()
}

// closeClean closes the file and leaves a marker saying so. The next Open
// trusts a file that still matches the marker without bbolt's full check
// (a check in a child process that reads every page: 0.2-0.3 s and a
// 100 MiB high-water mark for 250,000 shots); a start after a crash or a
// power cut, or with a file changed since, finds no matching marker and
// checks in full. A marker that cannot be written only costs that check.
func (q *Queue) closeClean() error {
	if err := q.flushSoft(); err != nil {
		q.log.Warn("queue: could not write the leases held; the next start treats every item as leased before",
			"path", q.path, "err", err.Error())
		return q.db.Close() // no marker: the next start assumes a crash
	}
	if err := q.db.Close(); err != nil {
		return err
	}
	mark := q.path + cleanSuffix
	fi, err := os.Stat(q.path)
	if err == nil {
		err = writeSynced(mark, []byte(cleanMark(fi)))
	}
	if err != nil {
		q.log.Warn("queue: could not mark the queue file as closed cleanly; the next start checks it in full",
			"path", q.path, "err", err.Error())
	}
	return nil
}

// flushSoft writes the soft leases now (Close: a clean close leaves none
// behind, see freshSeq).
func (q *Queue) flushSoft() error {
	q.soft.mu.Lock()
	n := len(q.soft.m)
	q.soft.mu.Unlock()
	if n == 0 {
		return nil
	}
	return q.update("close", "leases", func(*txn) error { return nil })
}

// writeSynced writes a small file durably: temporary file, fsync, rename,
// fsync of the directory.
func writeSynced(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// takeCleanMark reports whether the clean-close marker matches the file
// as it is now, and removes the marker (durably, before anything writes
// to the file): from here on only the next Close can vouch for it. When
// the marker cannot be removed, the file is checked in full.
func (q *Queue) takeCleanMark(fi os.FileInfo) bool {
	mark := q.path + cleanSuffix
	b, err := os.ReadFile(mark)
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err == nil {
		err = os.Remove(mark)
	}
	if err == nil {
		err = syncDir(filepath.Dir(mark))
	}
	if err != nil {
		q.log.Warn("queue: could not read or remove the clean-close marker; checking the queue file in full",
			"path", mark, "err", err.Error())
		return false
	}
	return string(b) == cleanMark(fi)
}

// schemaReady: all buckets there, schema known: no write needed.
func schemaReady(db *bolt.DB) (ready bool) {
	_ = db.View(func(tx *bolt.Tx) error {
		ready = tx.Bucket(bucketItems) != nil && tx.Bucket(bucketMeta) != nil
		for _, b := range [][]byte{bucketFiles, bucketAbsent, bucketDirs} {
			ready = ready && tx.Bucket(b) != nil
		}
		for _, s := range allStates {
			ready = ready && tx.Bucket(indexBucket[s]) != nil
		}
		if ready {
			v := tx.Bucket(bucketMeta).Get(keySchema)
			ready = len(v) == 1 && v[0] == schemaVersion
		}
		return nil
	})
	return ready
}

// createOrMigrate creates missing buckets and migrates a schema 1 file.
func (q *Queue) createOrMigrate(tx *bolt.Tx) error {
	old := tx.Bucket(bucketMeta) != nil && bytes.Equal(tx.Bucket(bucketMeta).Get(keySchema), []byte{1})
	if err := createBuckets(tx); err != nil {
		return err
	}
	if !old {
		return nil
	}
	n, err := migrate1(tx, func() int64 { return timeNs(q.now()) })
	if err == nil {
		q.log.Info("queue: migrated schema 1 to 2 (identity: relative path, size, content fingerprint)", "path", q.path, "items", n)
	}
	return err
}

// checkPages reads, through bbolt, every key and value of the buckets that
// hold work (the indexes of the active states, meta, dirs, absent; after
// bbolt's Tx.Check has walked the whole page tree) and decodes every
// item of an active state. The items, files, done and skipped buckets hold
// the history of the card (100 MiB for 250,000 shots): touching them at
// every start would cost their size in memory and seconds of reading, so
// their records are checked by CRC when read (see verifyActiveTx). Index
// inconsistencies are repaired later by afterOpen; bad pages or records
// mean the file is corrupt.
func checkPages(db *bolt.DB) error {
	history := map[string]bool{string(bucketItems): true, string(bucketFiles): true,
		string(indexBucket[Done]): true, string(indexBucket[Skipped]): true}
	return db.View(func(tx *bolt.Tx) error {
		// Touch every key and value; this runs under SetPanicOnFault, so
		// a page the check could not vouch for faults into a recoverable
		// panic.
		var sum byte
		err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if history[string(name)] {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				for _, c := range k {
					sum ^= c
				}
				for _, c := range v {
					sum ^= c
				}
				return nil
			})
		})
		if err != nil {
			return corrupt("walk: %v", err)
		}
		t := &txn{tx: tx}
		for _, s := range activeStates {
			err := tx.Bucket(indexBucket[s]).ForEach(func(_, v []byte) error {
				if _, err := t.get(string(v)); err != nil {
					return corrupt("%v", err)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// moveAside renames the corrupt file to <path>.corrupt-<UTC timestamp>.
func (q *Queue) moveAside() (string, error) {
	stamp := time.Now().UTC().Format("20060102T150405Z")
	aside := q.path + ".corrupt-" + stamp
	for i := 1; ; i++ {
		if _, err := os.Lstat(aside); errors.Is(err, os.ErrNotExist) {
			break
		}
		aside = fmt.Sprintf("%s.corrupt-%s-%d", q.path, stamp, i)
	}
	if err := os.Rename(q.path, aside); err != nil {
		return "", err
	}
	return aside, syncDir(filepath.Dir(q.path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// afterOpen repairs indexes if needed, returns leases of a crashed run to
// pending, prunes history, and signals Wake if work is pending.
func (q *Queue) afterOpen() error {
	if err := q.db.View(verifyActiveTx); err != nil {
		q.log.Warn("queue: indexes inconsistent; rebuilding them from the items", "path", q.path, "err", err.Error())
		if err := q.rebuildIndexes(); err != nil {
			return err
		}
		if err := q.db.View(verifyActiveTx); err != nil {
			return corrupt("after rebuilding the indexes: %v", err)
		}
	}
	reverted, pruned, clamped := 0, 0, 0
	err := q.update("open", q.path, func(t *txn) error {
		if q.unclean {
			q.freshSeq = t.bucket(bucketItems).Sequence()
		}
		leased, err := t.inState(InFlight)
		if err != nil {
			return err
		}
		for _, r := range leased {
			if err := t.move(r, func(r *rec) {
				r.State, r.LeaseUntil = Pending, time.Time{}
				r.LastError = "lease of " + r.Worker + " lost in a restart"
				r.Worker = ""
			}); err != nil {
				return err
			}
			reverted++
		}
		if clamped, err = q.clampRetries(t); err != nil {
			return err
		}
		pruned, err = q.prune(t, q.now())
		return err
	})
	if err != nil {
		return err
	}
	if reverted > 0 {
		q.log.Info("queue: leases of the previous run went back to pending", "path", q.path, "items", reverted)
	}
	if pruned > 0 {
		q.log.Info("queue: pruned done history", "path", q.path, "items", pruned)
	}
	if clamped > 0 {
		q.log.Warn("queue: retries due later than the longest backoff (the clock went back while stopped) are due at most that far ahead",
			"path", q.path, "items", clamped, "backoff_max", q.opts.BackoffMax.String())
	}
	c, err := q.Counts()
	if err != nil {
		return err
	}
	if c.Pending > 0 || c.Retry > 0 {
		q.signal()
	}
	return nil
}

// rebuildIndexes recreates every index bucket and the counts from the items
// bucket, in one transaction.
func (q *Queue) rebuildIndexes() error {
	return q.update("rebuild", q.path, func(t *txn) error {
		buckets := [][]byte{bucketFiles, bucketAbsent}
		for _, s := range allStates {
			buckets = append(buckets, indexBucket[s])
		}
		for _, name := range buckets {
			seq := t.bucket(name).Sequence()
			if err := t.tx.DeleteBucket(name); err != nil {
				return err
			}
			b, err := t.tx.CreateBucket(name)
			if err != nil {
				return err
			}
			if err := b.SetSequence(seq); err != nil {
				return err
			}
		}
		var zeroN int64
		t.absentN = &zeroN
		var zero [numStates]int64
		t.counts = &zero
		var recs []*rec
		var damaged [][]byte
		err := t.bucket(bucketItems).ForEach(func(k, v []byte) error {
			r, err := decodeRec(v)
			if err != nil {
				damaged = append(damaged, append([]byte(nil), k...))
				return nil
			}
			recs = append(recs, r)
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range damaged {
			// Its index entries are gone with the rebuilt buckets; the
			// capture, if still on the card, is found as unknown again.
			if err := t.bucket(bucketItems).Delete(k); err != nil {
				return err
			}
		}
		if len(damaged) > 0 {
			q.log.Warn("queue: dropped records that fail their checksum while rebuilding the indexes", "path", q.path, "items", len(damaged))
		}
		sort.SliceStable(recs, func(i, j int) bool { return recs[i].doneSeq < recs[j].doneSeq })
		for _, r := range recs {
			if r.State == Done || r.State == Skipped {
				// done keys must be unique; renumber from the bucket sequence.
				r.doneSeq = 0
			}
			since := r.AbsentSince
			r.AbsentSince = time.Time{}
			if err := t.setAbsent(r, since); err != nil {
				return err
			}
			if err := t.insert(r); err != nil {
				return err
			}
		}
		return nil
	})
}
