package queue

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// update runs fn in one read-write transaction (fsync'd on commit) and
// turns storage errors into one clear line.
// A wall-clock step is re-planned first, in the same transaction (see
// replanTx), then the soft leases are written (softlease.go), so that fn
// computes due times on a consistent schedule.
func (q *Queue) update(op, what string, fn func(t *txn) error) error {
	var pro prologue
	err := q.db.Update(func(tx *bolt.Tx) error {
		t := &txn{tx: tx}
		if err := q.begin(t, &pro); err != nil {
			return err
		}
		if err := fn(t); err != nil {
			return err
		}
		return t.flush()
	})
	q.end(&pro, err)
	return q.wrap(op, what, err)
}

// prologue is what begin did at the start of a write transaction, for end.
type prologue struct {
	wall time.Time
	mono time.Duration
	soft []*softLease
}

// begin starts every write transaction: a wall-clock step is re-planned
// (replanTx), then the soft leases are written (applySoft).
func (q *Queue) begin(t *txn, p *prologue) error {
	var err error
	if p.wall, p.mono, err = q.replanTx(t); err != nil {
		return err
	}
	p.soft, err = q.applySoft(t)
	return err
}

// end settles what begin did once the transaction committed (err nil) or
// failed.
func (q *Queue) end(p *prologue, err error) {
	q.settleSoft(p.soft, err == nil)
	if err == nil {
		q.setAnchor(p.wall, p.mono)
	}
}

func (q *Queue) view(op, what string, fn func(t *txn) error) error {
	err := q.db.View(func(tx *bolt.Tx) error { return fn(&txn{tx: tx}) })
	return q.wrap(op, what, err)
}

func isFull(err error) bool {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EFBIG) ||
		errors.Is(err, berrors.ErrMaxSizeReached) {
		return true
	}
	// bbolt formats some errno values with %s (file resize/sync errors).
	s := err.Error()
	return strings.Contains(s, "no space left") || strings.Contains(s, "quota exceeded") || strings.Contains(s, "file too large")
}

func (q *Queue) wrap(op, what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("queue: %s %s: no such item (dropped, or pruned from history): %w", op, what, ErrNotFound)
	case errors.Is(err, ErrState) || errors.Is(err, ErrClosed):
		return err
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return fmt.Errorf("queue: %s %s: queue file %s is closed: %w", op, what, q.path, ErrClosed)
	case errors.Is(err, berrors.ErrMaxSizeReached):
		return fmt.Errorf("queue: %s %s: queue file %s reached its size bound (MaxFileSize %d bytes): let uploads drain, prune history or raise the bound; the item keeps its previous state: %w",
			op, what, q.path, q.opts.MaxFileSize, ErrFull)
	case isFull(err):
		return fmt.Errorf("queue: %s %s: cannot write queue file %s (%w): free space on its filesystem (or raise MaxFileSize); the item keeps its previous state: %w",
			op, what, q.path, err, ErrFull)
	}
	return fmt.Errorf("queue: %s %s: queue file %s: %w", op, what, q.path, err)
}

// replan applies a wall-clock step found outside a write (before Lease
// and NextDue, which read due times); it writes only when there was one.
func (q *Queue) replan() error {
	d, wall, mono := q.skew()
	if d > -jumpMin && d < jumpMin {
		q.setAnchor(wall, mono)
		return nil
	}
	return q.update("replan", "due times", func(*txn) error { return nil })
}

// viewSoft runs fn in a read transaction with the soft leases held still.
func (q *Queue) viewSoft(op, what string, fn func(t *txn, soft map[string]*softLease) error) error {
	q.soft.mu.Lock()
	defer q.soft.mu.Unlock()
	return q.view(op, what, func(t *txn) error { return fn(t, q.soft.m) })
}
