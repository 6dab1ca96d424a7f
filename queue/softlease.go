package queue

import (
	"errors"
	"sync"
	"time"
)

// Deferred leases. Lease does not commit on its own: it picks the item
// in a read-only transaction and keeps the lease in memory (soft), and the
// next write transaction of the queue, whoever calls it, writes it first
// (the item moves to in flight, its attempt is counted) before its own
// change: in a burst that is the Intend before the upload's rename, so one
// transaction and one fsync pair per file records the lease, the Intent
// and the previous file's done record (BENCHMARKS.md, "Where the per-file
// CPU goes").
//
// Why that keeps every guarantee:
//   - Nothing the server keeps under its final name is sent before the
//     lease is durable: the rename's Intent commits the lease with it.
//   - A lease lost in a crash leaves the item pending, where the restart
//     would have put a durable lease too (Open returns in-flight items to
//     pending); only its attempt is not counted.
//   - The upload may have sent the temporary file under a lost lease, so
//     the item's FirstLease (no temporary file can exist, no SIZE probe)
//     cannot trust the durable "leased" mark alone. A Close writes the
//     outstanding leases first; a start that finds no clean-close marker
//     (a crash, a power cut) treats every item enqueued before it as
//     leased before (freshSeq), which costs one SIZE round trip each.
//   - Every reader of the queue sees a soft lease as it will be written:
//     Lease and its look for due work skip it, Get, Lookup, List, Counts
//     and NextDue show the item in flight. Writers apply the soft leases
//     first, inside their transaction, so no write ever sees the item
//     pending.

// softLease is one lease kept in memory until a write transaction commits
// it.
type softLease struct {
	it   Item          // as Lease returned it: in flight, attempt counted
	mono time.Duration // Options.Elapsed when leased (0 without it)
	// by is the ID of the write transaction that wrote it (0: none yet).
	// bbolt gives a write transaction the ID after the last committed
	// one, so a later transaction with a higher ID knows the write
	// committed (the entry only waits to be dropped), and one with the
	// same ID knows it was rolled back.
	by int
}

// softLeases is the queue's set of soft leases; mu is taken before a read
// transaction (never inside a write transaction's own reads), so that an
// entry leaves the set only after its commit is visible to every view
// begun afterwards.
type softLeases struct {
	mu sync.Mutex
	m  map[string]*softLease
}

// softItem returns the soft lease of r if r is still pending in the
// transaction that read it (else the lease is written already).
func softItem(soft map[string]*softLease, r *rec) (Item, bool) {
	if r.State != Pending {
		return Item{}, false
	}
	if s, ok := soft[r.ID]; ok {
		return s.it, true
	}
	return Item{}, false
}

// applySoft writes the soft leases not yet written, at the start of a
// write transaction, after replanTx: each lease keeps the time it had left
// on the monotonic clock, so a wall-clock step between the Lease and this
// write neither shortens nor stretches it. The caller passes what it
// returns to settleSoft once the transaction has committed or failed.
func (q *Queue) applySoft(t *txn) ([]*softLease, error) {
	id := t.tx.ID()
	q.soft.mu.Lock()
	var todo []*softLease
	for _, s := range q.soft.m {
		if s.by == 0 || s.by == id { // not written, or by a rolled-back transaction
			s.by = id
			todo = append(todo, s)
		}
	}
	q.soft.mu.Unlock()
	for _, s := range todo {
		r, err := t.get(s.it.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return todo, err
		}
		if r.State != Pending {
			continue // nothing to write (every write applies the soft leases first)
		}
		until := s.it.LeaseUntil
		if q.opts.Elapsed != nil {
			until = q.now().Add(q.opts.LeaseTime - (q.opts.Elapsed() - s.mono))
		}
		if err := t.move(r, func(r *rec) {
			r.State, r.Worker, r.LeaseUntil = InFlight, s.it.Worker, until
			r.Attempts++
			r.leased = true
		}); err != nil {
			return todo, err
		}
	}
	return todo, nil
}

// settleSoft drops the leases a committed transaction wrote from the set.
// After a failed one it leaves them: the next write transaction has the
// same ID and writes them again (see softLease.by).
func (q *Queue) settleSoft(todo []*softLease, committed bool) {
	if len(todo) == 0 || !committed {
		return
	}
	q.soft.mu.Lock()
	for _, s := range todo {
		if q.soft.m[s.it.ID] == s {
			delete(q.soft.m, s.it.ID)
		}
	}
	q.soft.mu.Unlock()
}

// appendSoft appends the soft leases of items still pending in t to out
// (List's in-flight items).
func appendSoft(t *txn, soft map[string]*softLease, out []Item) []Item {
	for id, s := range soft {
		if r, err := t.get(id); err == nil && r.State == Pending {
			out = append(out, s.it)
		}
	}
	return out
}

// dueAgain reports a Retry item due or a written lease expired by now.
func dueAgain(t *txn, now time.Time) bool {
	if k, _ := t.first(Retry); k != nil && !keyTime(k).After(now) {
		return true
	}
	k, _ := t.first(InFlight)
	return k != nil && !keyTime(k).After(now)
}
