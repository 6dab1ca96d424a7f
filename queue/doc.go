// Package queue is the daemon's source of truth: a durable, idempotent
// capture queue in a bbolt file, with leases, a retry schedule, parking of
// permanent failures and a bounded history of done items.
//
// It imports nothing of the project; it is the only package that imports bbolt.
//
// # Basics
//
// Open the file once per process; the zero Options means the defaults:
//
//	q, err := queue.Open(filepath.Join(stateDir, "queue.db"), nil)
//	if err != nil { ... }          // locked by another process, disk full, ...
//	if q.Recovered() { rescan() }  // the old file was corrupt and moved aside
//
// The watcher enqueues every settled capture (Enqueue, or EnqueueBatch for
// several in one transaction); enqueueing is idempotent by the capture's
// identity: its path relative to the media root, its size and its content
// Fingerprint (16 bytes of the SHA-256 of its first and last 64 KiB). Inode,
// mount point and modification time are hints only: FAT and exFAT hand out
// inodes per mount and shift mtimes with the mount's time zone, so the same
// shot after a remount, a reboot, another mount point or a time-zone change
// is the same item, and a different shot under a used name (card formatted,
// numbering reset) is a new one. Known captures cost a read, no write. A new
// item's ID is derived from the identity (16 hex digits of a SHA-256) and
// kept for its life: use it to name a remote temp file that a later
// attempt may resume.
//
// Rescans go through ScanDir, one folder listing at a time: a file whose
// name, size and mtime match an item's hint is known without being read;
// one whose mtime moved is compared by fingerprint (three per folder when
// the whole folder moved by one time-zone offset); a folder whose listing
// has the digest stored when all its files were last known costs one
// lookup. Items whose file a scan did not find are marked absent.
//
// History: done, skipped, held and vanished items are kept while their file
// is on the card, however many (measured: 250,000 delivered shots make a
// 110 MiB file; a start opens it in about 0.06 s and rescans the card in
// 0.75 s at a peak RSS of 10.5 MiB, BenchmarkStartup250k). Only items absent
// from scans are dropped: after HistoryMaxAge, or beyond HistoryMaxCount
// absent items.
//
// A rename of an upload is announced with Intend before RNTO is sent; a
// restart finds the Intent on the leased item and settles it by what the
// server shows instead of sending the file again.
//
// Workers call Lease, then exactly one of Ack (uploaded: Done), Fail
// (transient: Retry after a capped, jittered exponential backoff), Park
// (permanent), Vanished (the local file is gone) or Release (shutdown; the
// attempt is not counted). A long upload calls Renew before LeaseTime runs
// out. Lease picks the highest Priority first, then first-in first-out by
// enqueue sequence; due Retry items and expired leases go back to pending in
// the same transaction. LeaseFunc does the same among the items an admit
// func accepts (the scheduler's link and battery policy); the others stay
// pending in their place.
//
// The scheduler waits on Wake (new work may be due) and on a timer armed at
// NextDue (the earliest Retry due time or lease expiry); it never polls.
// When the link comes back it calls ResetBackoff; an operator's "retry"
// calls RetryNow.
//
// States and transitions:
//
//	Enqueue -> pending -> Lease -> inflight -> Ack     -> done (history)
//	                                       -> Skip    -> skipped (history: the name was taken by another file)
//	Enqueue with Hold -> held -> Want -> pending
//	                                       -> Fail    -> retry  -> (due) pending
//	                                       -> Park    -> parked -> RetryNow -> pending
//	                                       -> Vanished-> parked (Vanished; only a new Enqueue revives it)
//	                                       -> Release -> pending
//	Open: inflight (a crashed run's leases) -> pending
//
// Every state change is committed in a bbolt read-write transaction with
// fsync (NoSync is never set), and a call returns once it is: after a crash
// or power cut each item is in exactly one state, the one of its last
// committed change. One exception: a Lease is kept in memory and written
// by the next write transaction, before that transaction's own change
// (softlease.go): the Intend before an upload's rename writes it, and
// every reader sees the item in flight meanwhile. A lease lost in a crash
// leaves its item pending, where Open would have put it anyway; after
// such a start FirstLease is not set on the items enqueued before it. The
// per-file changes of concurrent callers (Intend, Ack...) share a
// transaction when they queue up behind another commit (group commit,
// group.go); AckSoon waits a little for one. Done
// items never go back. Every item is in the items bucket and in exactly one index bucket
// (that of its state); Verify checks this, Open runs it and rebuilds the
// indexes if needed. Unless the file is as the last Close left it (a
// <path>.clean marker holding its device, inode, size and mtime), Open
// first has bbolt's own Tx.Check verify its page structure (every page
// reachable once or free, key order), in a child process: this executable
// re-run by the package's init with CAMFTPD_QUEUE_CHECK_FILE set, because
// Tx.Check can crash or loop on a damaged file. It then decodes every
// active record, each of which carries a CRC-32C. The done history is pruned, in the Ack transaction and
// at Open, by age and count (HistoryMaxAge 30 days, HistoryMaxCount 10,000).
//
// # Caveats
//
//   - A corrupt or unreadable file (bad meta pages, truncated, a damaged
//     page tree, records that fail their CRC or do not decode) is renamed to <path>.corrupt-<UTC time>
//     and a fresh file is created: the history of done items in it is lost,
//     so a rescan re-enqueues captures still on the card and they are
//     uploaded again (the remote same-name policy decides what happens).
//     Permission errors and a lock held by another process are not treated
//     as corruption: Open fails with a clear error (ErrLocked after
//     LockTimeout for the lock).
//   - Pruned items are forgotten: a file that comes back after its item was
//     dropped (absent for HistoryMaxAge) is a new capture.
//   - Open checks the work (every active item, the indexes of the active
//     states, the counts), and the page structure after an unclean stop
//     (0.2-0.8 s for 250,000 shots; a clean start opens in 5-10 ms); it does not read
//     the history of done and skipped items, whose records are checked by
//     their CRC when read. A damaged history record is passed over as
//     unknown (its shot may be offered again; the upload's same-content
//     check finds it on the server) and dropped when indexes are rebuilt.
//     Verify checks everything.
//   - A full filesystem (or MaxFileSize) makes the write fail with ErrFull;
//     the transaction is rolled back and the item keeps its previous state.
//     The file never shrinks: bbolt reuses freed pages instead. It holds
//     about 460 bytes per shot on the card (110 MiB for 250,000).
//   - An expired lease is handed to another worker: a worker that can run
//     longer than LeaseTime must Renew. A late Ack is still accepted (the
//     file is on the server); a late Fail or Park on a done item is refused
//     with ErrState.
//   - Each write transaction costs two fdatasyncs (data pages, then the
//     meta page), plus one fsync when the file grows. Measured on this
//     project's virtio disk: about 700-1,800 single enqueues/s, p99 2-9 ms;
//     on storage where a sync takes 15 ms a single Enqueue takes about
//     30 ms, at the edge of a 30 shots/s burst: use EnqueueBatch for what
//     settled together (one transaction for the batch). Lease on an idle
//     queue and Enqueue of a known capture are read-only.
//   - bbolt keeps no checksums of its own pages. Damage to structure is
//     found at an Open after a crash or power cut by Tx.Check, and by the
//     record CRCs; damage in free pages is harmless. Damage appearing while
//     the queue is open, or to a cleanly closed file without changing its
//     size or mtime (bit rot at rest), is not looked for until the next
//     unclean stop: a fault it causes while reading stops the process, and
//     that start checks in full.
//   - On 32-bit armv7 the file is mapped with a 1 MiB initial mapping that
//     grows with the file; MaxFileSize (default 256 MiB) keeps the mapping
//     well inside the address space. Pages a scan touched are released
//     from the mapping afterwards (madvise), so they do not stay in the
//     process's resident set.
//   - Due times are wall-clock times (they are stored), but a step of the
//     wall clock by 1 s or more, seen against Options.Elapsed (monotonic),
//     moves every Retry due time and lease expiry by the step in the next
//     transaction: each keeps the delay it had left (clockjump.go). A step
//     while the process was stopped cannot be seen; Open brings a retry due
//     later than BackoffMax ahead to BackoffMax. History age trusts the
//     wall clock.
package queue

// Files, bottom up: a file uses only files of its own layer or below.
//
//  1. api.go: the exported types, options and errors, and Queue with its
//     fields and accessors; release_*.go (dropping mapped pages); check.go
//     (bbolt's page check in a child process, corruptError).
//  2. store.go: records, keys, Fingerprint and txn (one transaction);
//     fpbuf.go: Fingerprint's pooled read buffers.
//  3. filesindex.go (the files index, and the txn steps that go through
//     it: find, remove), clockjump.go (re-planning due times after a
//     wall-clock step), migrate.go (schema upgrades), softlease.go (leases
//     kept in memory until the next write transaction writes them).
//  4. tx.go: update and view, every operation's transaction (viewSoft: a
//     view with the soft leases held still); group.go: updateGrouped, the
//     group commit of the per-file operations.
//  5. ops.go, grow.go, list.go, peek.go, files.go, orphans.go, verify.go: the
//     operations (grow.go uses ops.go's stateErr).
//  6. open.go: Open and Close, and the checks and repairs at open.
//
// No two files depend on each other.
