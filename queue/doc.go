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
// identity (path, size, mtime in nanoseconds, inode), so a rescan may
// enqueue everything again: known captures cost a read, no write. A rewritten file is a new item. The
// item ID is derived from the identity (16 hex digits of a SHA-256), so it
// is the same after a restart and after a rebuilt file: use it to name a
// remote temp file that a later attempt may resume.
//
// Workers call Lease, then exactly one of Ack (uploaded: Done), Fail
// (transient: Retry after a capped, jittered exponential backoff), Park
// (permanent), Vanished (the local file is gone) or Release (shutdown; the
// attempt is not counted). A long upload calls Renew before LeaseTime runs
// out. Lease picks the highest Priority first, then first-in first-out by
// enqueue sequence; due Retry items and expired leases go back to pending in
// the same transaction.
//
// The scheduler waits on Wake (new work may be due) and on a timer armed at
// NextDue (the earliest Retry due time or lease expiry); it never polls.
// When the link comes back it calls ResetBackoff; an operator's "retry"
// calls RetryNow.
//
// States and transitions:
//
//	Enqueue -> pending -> Lease -> inflight -> Ack     -> done (history)
//	                                       -> Fail    -> retry  -> (due) pending
//	                                       -> Park    -> parked -> RetryNow -> pending
//	                                       -> Vanished-> parked (Vanished; only a new Enqueue revives it)
//	                                       -> Release -> pending
//	Open: inflight (a crashed run's leases) -> pending
//
// Every state change is one bbolt read-write transaction, committed with
// fsync (NoSync is never set): after a crash or power cut each item is in
// exactly one state, the one of its last committed change. Done items never
// go back. Every item is in the items bucket and in exactly one index bucket
// (that of its state); Verify checks this, Open runs it and rebuilds the
// indexes if needed. Before bbolt maps the file, Open walks its page tree
// with plain reads (meta pages, bounds, overflow counts, freelist, every
// page reachable or free) and then decodes every record, each of which
// carries a CRC-32C. The done history is pruned, in the Ack transaction and
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
//   - Pruned done items are forgotten the same way: if their files are still
//     on the card, a rescan enqueues them again. Keep HistoryMaxAge above the
//     age of files the rescan considers, or delete files after upload.
//   - A full filesystem (or MaxFileSize) makes the write fail with ErrFull;
//     the transaction is rolled back and the item keeps its previous state.
//     The file never shrinks: bbolt reuses freed pages instead. With the
//     default bounds it stays near 6 MiB after 100,000 done items.
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
//     found at Open by the page walk and the record CRCs; damage in free
//     pages is harmless. Damage appearing while the queue is open is only
//     found at the next Open.
//   - On 32-bit armv7 the file is mapped with a 1 MiB initial mapping that
//     grows with the file; MaxFileSize (default 128 MiB) keeps the mapping
//     well inside the address space.
//   - The queue trusts the clock for due times and history age; a camera
//     that boots at 1970 and then jumps ahead sees its retries become due
//     at once, which is harmless.
package queue
