package queue

import (
	"context"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Group commit. The per-file operations (Intend, Ack, and the other
// settles of an attempt; a Lease only when due items go back to pending,
// else the next commit writes it, softlease.go) run with updateGrouped: a
// call that finds another commit under way waits for it and is then
// committed together with every call that queued up meanwhile, in one
// bbolt transaction and one fsync pair, in the order they queued. Nothing
// waits on purpose: a call alone is committed at once, as update does.
// Each caller still returns only once its change is durable, and a change
// is never visible to a reader before its commit, so a power cut loses or
// keeps whole calls whose callers had not returned yet, exactly as with
// one transaction per call; the calls of one goroutine stay in its order.
// Two workers uploading the benchmark's 1,000 small files overlap often:
// every fdatasync of a commit a worker's Intend or Ack shares is one the
// other's does not pay (BENCHMARKS.md, "Where the per-file CPU goes").
//
// A call whose fn fails is committed alone (it gets the same error as it
// would have) and the others again without it: fn must compute its
// results from the transaction alone, setting every output it has on each
// run (the transaction of a failed group is rolled back and fn runs again).

// groupCommit queues the calls of updateGrouped; the zero value is ready.
type groupCommit struct {
	run     sync.Mutex // held by the goroutine committing a group
	mu      sync.Mutex // guards pending
	pending []*groupCall
}

type groupCall struct {
	fn   func(t *txn) error
	err  error
	done chan struct{} // closed by the committer once err is set
}

// updateGrouped is update with group commit (see above); op and what name
// the call in its error as in update.
func (q *Queue) updateGrouped(op, what string, fn func(t *txn) error) error {
	return q.updateLinger(context.Background(), op, what, 0, fn)
}

// updateLinger is updateGrouped for a call that may wait up to linger (and
// while ctx lasts) for another call's commit to take it along before it
// commits itself.
func (q *Queue) updateLinger(ctx context.Context, op, what string, linger time.Duration, fn func(t *txn) error) error {
	g := &q.group
	c := &groupCall{fn: fn, done: make(chan struct{})}
	g.mu.Lock()
	g.pending = append(g.pending, c)
	g.mu.Unlock()
	if linger > 0 {
		t := time.NewTimer(linger)
		select {
		case <-c.done:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	g.run.Lock()
	select {
	case <-c.done: // a committer took it while this call waited
	default:
		g.mu.Lock()
		calls := g.pending
		g.pending = nil
		g.mu.Unlock()
		q.commitGroup(calls)
	}
	g.run.Unlock()
	return q.wrap(op, what, c.err)
}

// commitGroup commits calls in one transaction; a call whose fn fails is
// committed alone and the others again without it.
func (q *Queue) commitGroup(calls []*groupCall) {
	for len(calls) > 0 {
		failed := -1
		var pro prologue
		err := q.db.Update(func(tx *bolt.Tx) error {
			t := &txn{tx: tx}
			if err := q.begin(t, &pro); err != nil {
				return err
			}
			if err := t.flush(); err != nil {
				return err
			}
			for i, c := range calls {
				t := &txn{tx: tx} // counts loaded after the calls before it
				if err := c.fn(t); err != nil {
					failed = i
					return err
				}
				if err := t.flush(); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil && failed >= 0 && len(calls) > 1 {
			q.end(&pro, err)
			q.commitGroup(calls[failed : failed+1])
			calls = append(calls[:failed:failed], calls[failed+1:]...)
			continue
		}
		q.end(&pro, err)
		for _, c := range calls {
			c.err = err
			close(c.done)
		}
		return
	}
}
