package queue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// stateErr reports an operation that the item's state does not allow.
func stateErr(op string, r *rec, why string) error {
	return fmt.Errorf("queue: %s %s (%s): item is %s, %s: %w", op, r.ID, r.Capture.Path, r.State, why, ErrState)
}

// backoff returns the delay after the n-th consecutive failure (n >= 1):
// BackoffMin doubled n-1 times, capped at BackoffMax, then jittered to a
// uniform value in [max(d/2, BackoffMin), d]: never shorter than
// BackoffMin (retry_min), whatever the failure.
func (q *Queue) backoff(n int) time.Duration {
	d := q.opts.BackoffMin
	for i := 1; i < n && d < q.opts.BackoffMax; i++ {
		d *= 2
	}
	if d > q.opts.BackoffMax {
		d = q.opts.BackoffMax
	}
	if lo := max(d/2, q.opts.BackoffMin); lo > 0 && lo < d {
		d = lo + rand.N(d-lo+1)
	}
	return d
}

// Enqueue adds a capture as pending (or held, see Capture.Hold). It is
// idempotent by identity (relative path, size, fingerprint): enqueueing a
// known capture returns the existing item and added=false, whatever its
// state, without writing; the same shot seen under another mount point,
// inode or time zone is known. A rewritten file has a new identity and
// becomes a new item. A capture parked as vanished comes back to pending
// (the file is there again), with added=true.
func (q *Queue) Enqueue(c Capture) (it Item, added bool, err error) {
	its, addeds, err := q.EnqueueBatch([]Capture{c})
	if err != nil {
		return Item{}, false, err
	}
	return its[0], addeds[0], nil
}

// EnqueueBatch enqueues several captures in one transaction (one fsync),
// all or none, with the semantics of Enqueue for each; for bursts and
// rescans. Captures already known cost no write at all.
func (q *Queue) EnqueueBatch(cs []Capture) (items []Item, added []bool, err error) {
	what := fmt.Sprintf("%d captures", len(cs))
	if len(cs) == 1 {
		what = cs[0].Rel
	}
	for _, c := range cs {
		if c.Rel == "" {
			return nil, nil, fmt.Errorf("queue: enqueue: capture has an empty relative path (Rel)")
		}
		if len(c.Fingerprint) == 0 {
			return nil, nil, errNoFingerprint(c)
		}
	}
	items, added = make([]Item, len(cs)), make([]bool, len(cs))
	// Read-only pass: a rescan mostly finds known captures.
	todo := false
	err = q.view("enqueue", what, func(t *txn) error {
		for i, c := range cs {
			r, _, err := t.find(c)
			if err != nil {
				return err
			}
			if r == nil || (r.State == Parked && r.Vanished) {
				todo = true
				return nil
			}
			items[i] = r.Item
		}
		return nil
	})
	if err != nil || !todo {
		return items, added, err
	}
	err = q.update("enqueue", what, func(t *txn) error {
		clear(added)
		now := q.now()
		for i, c := range cs {
			r, id, err := t.find(c)
			if err != nil {
				return err
			}
			if r != nil {
				if r.State == Parked && r.Vanished {
					added[i] = true
					if err := t.move(r, func(r *rec) {
						r.State, r.Vanished, r.Reason, r.streak = Pending, false, "", 0
					}); err != nil {
						return err
					}
				}
				items[i] = r.Item
				continue
			}
			seq, err := t.bucket(bucketItems).NextSequence()
			if err != nil {
				return err
			}
			r = &rec{Item: Item{ID: id, Seq: seq, Capture: c, State: Pending, Enqueued: now}}
			r.Capture.ModTime = nsTime(timeNs(c.ModTime))
			if c.Hold != "" {
				r.State, r.Reason = Held, c.Hold
			}
			r.Capture.Hold = ""
			if err := t.insert(r); err != nil {
				return err
			}
			added[i] = true
			items[i] = r.Item
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	q.signal()
	return items, added, nil
}

// dueWork reports whether a Lease could find work now (read-only, so an
// idle scheduler costs no write): a due Retry item or an expired lease
// (they go back to pending), or a pending item that admit accepts.
func (q *Queue) dueWork(now time.Time, admit func(Item) bool) (bool, error) {
	due := false
	err := q.viewSoft("lease", "", func(t *txn, soft map[string]*softLease) error {
		if dueAgain(t, now) {
			due = true
			return nil
		}
		r, err := t.firstAdmitted(admit, soft)
		due = r != nil
		return err
	})
	return due, err
}

// firstAdmitted returns the first pending record, in lease order, that
// admit accepts (nil: any) and no soft lease holds; nil when there is none.
func (t *txn) firstAdmitted(admit func(Item) bool, soft map[string]*softLease) (*rec, error) {
	c := t.bucket(indexBucket[Pending]).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if _, held := soft[string(v)]; held {
			continue
		}
		r, err := t.get(string(v))
		if err != nil {
			return nil, err
		}
		if admit == nil || admit(r.Item) {
			return r, nil
		}
	}
	return nil, nil
}

// requeueDue moves Retry items whose time has come and expired leases back
// to pending.
func (t *txn) requeueDue(now time.Time) error {
	for _, s := range []State{Retry, InFlight} {
		for {
			k, v := t.first(s)
			if k == nil || keyTime(k).After(now) {
				break
			}
			r, err := t.get(string(v))
			if err != nil {
				return err
			}
			if err := t.move(r, func(r *rec) {
				if r.State == InFlight {
					r.LastError = "lease of " + r.Worker + " expired"
				}
				r.State, r.Worker, r.LeaseUntil = Pending, "", time.Time{}
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Lease hands the next due item to worker: highest priority first, then
// first-in first-out. In the same transaction, Retry items whose time has
// come and expired leases go back to pending. It returns false when nothing
// is due.
func (q *Queue) Lease(worker string) (Item, bool, error) {
	return q.LeaseFunc(worker, nil)
}

// LeaseFunc is Lease restricted to the pending items admit accepts (nil
// accepts every item): it leases the first one, in Lease's order, that
// admit accepts, and returns false when none is. Items admit refuses stay
// pending, in their place. The scheduler's gate uses it (movies waiting
// for a faster link, a low battery). admit runs inside the queue's
// transaction: it must be quick and must not call the queue. A call that
// finds nothing to lease writes nothing, unless Retry items or leases
// fell due (they go back to pending as in Lease).
func (q *Queue) LeaseFunc(worker string, admit func(Item) bool) (Item, bool, error) {
	if err := q.replan(); err != nil {
		return Item{}, false, err
	}
	now := q.now()
	if it, ok, requeue, err := q.leaseSoft(worker, admit, now); err != nil || !requeue {
		return it, ok, err
	}
	var it Item
	var ok bool
	err := q.updateGrouped("lease", worker, func(t *txn) error {
		it, ok = Item{}, false // set on each run (see updateGrouped)
		if err := t.requeueDue(now); err != nil {
			return err
		}
		r, err := t.firstAdmitted(admit, nil)
		if r == nil || err != nil {
			return err
		}
		first := !r.leased && r.Attempts == 0 && r.Seq > q.freshSeq
		if err := t.move(r, func(r *rec) {
			r.State, r.Worker, r.LeaseUntil = InFlight, worker, now.Add(q.opts.LeaseTime)
			r.Attempts++
			r.leased = true
		}); err != nil {
			return err
		}
		it, ok = r.Item, true
		it.FirstLease = first
		return nil
	})
	if err != nil {
		return Item{}, false, err
	}
	return it, ok, nil
}

// leaseSoft is Lease's read-only path: it picks the first pending item
// admit accepts that no soft lease holds and leases it in memory. requeue
// says a Retry item or a lease fell due: the caller then leases in a
// write transaction, which puts them back to pending first.
func (q *Queue) leaseSoft(worker string, admit func(Item) bool, now time.Time) (it Item, ok, requeue bool, err error) {
	err = q.viewSoft("lease", worker, func(t *txn, soft map[string]*softLease) error {
		for _, s := range soft {
			if !s.it.LeaseUntil.After(now) {
				requeue = true
				return nil
			}
		}
		if dueAgain(t, now) {
			requeue = true
			return nil
		}
		r, err := t.firstAdmitted(admit, soft)
		if r == nil || err != nil {
			return err
		}
		first := !r.leased && r.Attempts == 0 && r.Seq > q.freshSeq
		r.State, r.Worker, r.LeaseUntil = InFlight, worker, now.Add(q.opts.LeaseTime)
		r.Attempts++
		it, ok = r.Item, true
		if q.soft.m == nil {
			q.soft.m = make(map[string]*softLease)
		}
		sl := &softLease{it: it}
		if q.opts.Elapsed != nil {
			sl.mono = q.opts.Elapsed()
		}
		q.soft.m[r.ID] = sl
		it.FirstLease = first
		return nil
	})
	if err != nil {
		return Item{}, false, false, err
	}
	return it, ok, requeue, nil
}

// Renew extends the lease of an in-flight item by LeaseTime from now.
func (q *Queue) Renew(id string) error {
	return q.updateGrouped("renew", id, func(t *txn) error {
		r, err := t.get(id)
		if err != nil {
			return err
		}
		if r.State != InFlight {
			return stateErr("renew", r, "not leased (expired and taken back?)")
		}
		return t.move(r, func(r *rec) { r.LeaseUntil = q.now().Add(q.opts.LeaseTime) })
	})
}

// Ack records a finished upload: the item becomes Done with its remote path
// and hash, whatever state it was in (the file is on the server). Acking a
// done item again is a no-op. History is pruned in the same transaction.
func (q *Queue) Ack(id, remote, hash string) error {
	return q.settle("ack", id, Done, remote, hash, "")
}

// AckSoon is Ack for a caller that does not need the record durable at
// once: it waits up to linger for another change (typically the next
// Lease, which follows an upload at once in a burst) to be committed with
// it, and commits it itself after that, or as soon as ctx ends. It returns once the record is
// durable. Use it only after the upload's rename was recorded durably
// with Intend: until the record is committed the item stays in flight
// with its Intent, which is what a restart after a power cut then finds,
// and the Intent is settled by what the server shows (the file is there:
// nothing is sent again).
//
// It lingers only while work is due (a Lease will follow); else, as after
// the last file of a burst, it commits at once.
func (q *Queue) AckSoon(ctx context.Context, id, remote, hash string, linger time.Duration) error {
	if due, err := q.dueWork(q.now(), nil); err != nil || !due {
		linger = 0
	}
	return q.settleLinger(ctx, "ack", id, Done, remote, hash, "", linger)
}

// Skip records that a capture was not sent because its remote name is
// taken by another file (same_name skip): the item becomes Skipped with the
// remote path and reason. Skipping a skipped item again is a no-op.
func (q *Queue) Skip(id, remote, reason string) error {
	return q.settle("skip", id, Skipped, remote, "", reason)
}

// settle moves an item to the terminal state to (Done or Skipped), clearing
// its lease, schedule and intent.
func (q *Queue) settle(op, id string, to State, remote, hash, reason string) error {
	return q.settleLinger(context.Background(), op, id, to, remote, hash, reason, 0)
}

// settleLinger is settle, committed with another change when one comes
// within linger (see AckSoon).
func (q *Queue) settleLinger(ctx context.Context, op, id string, to State, remote, hash, reason string, linger time.Duration) error {
	return q.updateLinger(ctx, op, id, linger, func(t *txn) error {
		r, err := t.get(id)
		if err != nil {
			return err
		}
		if r.State == to {
			return nil
		}
		if r.State == Done || r.State == Skipped {
			return stateErr(op, r, "it is settled already")
		}
		now := q.now()
		if err := t.move(r, func(r *rec) {
			r.State, r.Remote, r.Hash, r.DoneAt, r.Reason = to, remote, hash, now, reason
			r.Worker, r.LeaseUntil, r.NextAttempt, r.Vanished, r.streak = "", time.Time{}, time.Time{}, false, 0
			r.Intent = Intent{}
		}); err != nil {
			return err
		}
		_, err = q.prune(t, now)
		return err
	})
}

// Intend records, durably, the rename an in-flight upload is about to ask
// the server for. If the process dies before Ack, the next lease returns
// the item with this Intent, and the upload settles it by what the server
// shows instead of sending the file again.
func (q *Queue) Intend(id string, in Intent) error {
	return q.updateGrouped("intend", id, func(t *txn) error {
		r, err := t.get(id)
		if err != nil {
			return err
		}
		if r.State != InFlight {
			return stateErr("intend", r, "not leased")
		}
		r.Intent = in
		return t.bucket(bucketItems).Put([]byte(r.ID), encodeRec(r))
	})
}

// Want makes held items pending (an operator's "send these": queue add,
// a shot protected later). Items in other states are left alone; wanted
// reports how many changed.
func (q *Queue) Want(ids ...string) (wanted int, err error) {
	err = q.update("want", fmt.Sprintf("%d items", len(ids)), func(t *txn) error {
		wanted = 0
		for _, id := range ids {
			r, err := t.get(id)
			if err != nil {
				return err
			}
			if r.State != Held {
				continue
			}
			wanted++
			if err := t.move(r, func(r *rec) { r.State, r.Reason = Pending, "" }); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && wanted > 0 {
		q.signal()
	}
	return wanted, err
}

// Fail records a transient failure: the item goes to Retry, due after a
// capped, jittered exponential backoff, and next is that due time.
func (q *Queue) Fail(id string, errMsg string) (next time.Time, err error) {
	err = q.updateGrouped("fail", id, func(t *txn) error {
		next = time.Time{} // set on each run (see updateGrouped)
		r, err := t.get(id)
		if err != nil {
			return err
		}
		if r.State == Done || r.State == Parked || r.State == Skipped || r.State == Held {
			return stateErr("fail", r, "a late failure does not change it")
		}
		return t.move(r, func(r *rec) {
			r.streak++
			next = q.now().Add(q.backoff(r.streak))
			r.State, r.NextAttempt, r.LastError = Retry, next, errMsg
			r.Worker, r.LeaseUntil = "", time.Time{}
		})
	})
	if err != nil {
		return time.Time{}, err
	}
	q.signal()
	return next, nil
}

// Park records a permanent failure: the item waits in Parked, with reason,
// until RetryNow.
func (q *Queue) Park(id, reason string) error {
	return q.park(id, reason, false)
}

// Vanished records that the local file is gone: the item is parked with
// Vanished set and is never retried (unless the same capture is enqueued
// again).
func (q *Queue) Vanished(id string) error {
	return q.park(id, "local file vanished", true)
}

func (q *Queue) park(id, reason string, vanished bool) error {
	op := "park"
	if vanished {
		op = "vanished"
	}
	return q.updateGrouped(op, id, func(t *txn) error {
		r, err := t.get(id)
		if err != nil {
			return err
		}
		if r.State == Done || r.State == Skipped {
			return stateErr(op, r, "settled items stay settled")
		}
		return t.move(r, func(r *rec) {
			r.State, r.Reason, r.Vanished = Parked, reason, vanished
			r.Worker, r.LeaseUntil, r.NextAttempt = "", time.Time{}, time.Time{}
		})
	})
}

// Release gives a lease back (shutdown): the item is pending again and the
// attempt is not counted. Releasing an item that is not in flight is a
// no-op.
func (q *Queue) Release(id string) error {
	released := false
	err := q.updateGrouped("release", id, func(t *txn) error {
		released = false // set on each run (see updateGrouped)
		r, err := t.get(id)
		if err != nil {
			return err
		}
		if r.State != InFlight {
			return nil
		}
		released = true
		return t.move(r, func(r *rec) {
			r.State, r.Worker, r.LeaseUntil = Pending, "", time.Time{}
			if r.Attempts > 0 {
				r.Attempts--
			}
		})
	})
	if released {
		q.signal()
	}
	return err
}

// RetryNow makes a parked or retrying item pending now, with a fresh
// backoff. With id "", it does so for every parked item that did not vanish,
// in one transaction. Pending and in-flight items are left alone; done and
// vanished items are refused.
func (q *Queue) RetryNow(id string) error {
	what := id
	if id == "" {
		what = "all parked"
	}
	changed := 0
	err := q.update("retry", what, func(t *txn) error {
		revive := func(r *rec) error {
			changed++
			return t.move(r, func(r *rec) {
				r.State, r.Reason, r.NextAttempt, r.streak = Pending, "", time.Time{}, 0
			})
		}
		if id != "" {
			r, err := t.get(id)
			if err != nil {
				return err
			}
			switch {
			case r.State == Done || r.State == Skipped:
				return stateErr("retry", r, "settled items stay settled")
			case r.State == Parked && r.Vanished:
				return stateErr("retry", r, "its file vanished; enqueue the capture again if it is back")
			case r.State == Parked || r.State == Retry:
				return revive(r)
			}
			return nil
		}
		parked, err := t.inState(Parked)
		if err != nil {
			return err
		}
		for _, r := range parked {
			if !r.Vanished {
				if err := revive(r); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil && changed > 0 {
		q.signal()
	}
	return err
}

// Drop forgets an item, whatever its state. A later Enqueue of the same
// capture adds it again.
func (q *Queue) Drop(id string) error {
	return q.update("drop", id, func(t *txn) error {
		r, err := t.get(id)
		if err != nil {
			return err
		}
		return t.remove(r)
	})
}

// ResetBackoff is for "the link came back": every Retry item becomes
// pending now and its backoff starts again from BackoffMin.
func (q *Queue) ResetBackoff() error {
	changed := 0
	err := q.update("reset-backoff", "all", func(t *txn) error {
		retrying, err := t.inState(Retry)
		if err != nil {
			return err
		}
		for _, r := range retrying {
			changed++
			if err := t.move(r, func(r *rec) {
				r.State, r.NextAttempt, r.streak = Pending, time.Time{}, 0
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && changed > 0 {
		q.signal()
	}
	return err
}

// NextDue returns the earliest time at which an item that is not due now
// becomes due: the earliest Retry due time, or the earliest lease expiry if
// that comes first. Use it to arm a timer; false means nothing is waiting.
// Pending items are due already (Wake signals them).
func (q *Queue) NextDue() (time.Time, bool) {
	var next time.Time
	var ok bool
	if err := q.replan(); err != nil {
		q.log.Warn("queue: cannot move due times after a clock step; will try again", "err", err)
	}
	_ = q.viewSoft("next-due", "", func(t *txn, soft map[string]*softLease) error {
		for _, s := range []State{Retry, InFlight} {
			if k, _ := t.first(s); k != nil {
				if at := keyTime(k); !ok || at.Before(next) {
					next, ok = at, true
				}
			}
		}
		for _, s := range soft {
			if at := s.it.LeaseUntil; !ok || at.Before(next) {
				next, ok = at, true
			}
		}
		return nil
	})
	return next, ok
}

// NextDueIn is NextDue as a delay from now on the queue's clock
// (Options.Now), for arming a timer: time.Until would read another clock
// than the one due times follow.
func (q *Queue) NextDueIn() (time.Duration, bool) {
	due, ok := q.NextDue()
	if !ok {
		return 0, false
	}
	return due.Sub(q.now()), true
}

// Counts returns the number of items in each state.
func (q *Queue) Counts() (Counts, error) {
	var c [numStates]int64
	err := q.viewSoft("counts", "", func(t *txn, soft map[string]*softLease) error {
		var err error
		if c, err = readCounts(t.tx); err != nil {
			return err
		}
		for id := range soft {
			if r, err := t.get(id); err == nil && r.State == Pending {
				c[stateIndex(Pending)]--
				c[stateIndex(InFlight)]++
			}
		}
		return nil
	})
	return Counts{
		Pending:  int(c[stateIndex(Pending)]),
		InFlight: int(c[stateIndex(InFlight)]),
		Retry:    int(c[stateIndex(Retry)]),
		Done:     int(c[stateIndex(Done)]),
		Parked:   int(c[stateIndex(Parked)]),
		Held:     int(c[stateIndex(Held)]),
		Skipped:  int(c[stateIndex(Skipped)]),
	}, err
}

// List returns the items in the given states (all states if none), each
// state in its own order: pending in lease order, in-flight and retry by
// time, parked by enqueue, done oldest first.
func (q *Queue) List(states ...State) ([]Item, error) {
	if len(states) == 0 {
		states = allStates
	}
	var out []Item
	err := q.viewSoft("list", "", func(t *txn, soft map[string]*softLease) error {
		for _, s := range states {
			name, ok := indexBucket[s]
			if !ok {
				return fmt.Errorf("unknown state %q", s)
			}
			err := t.bucket(name).ForEach(func(_, v []byte) error {
				if _, held := soft[string(v)]; held && s == Pending {
					return nil // listed in flight (softlease.go)
				}
				r, err := t.get(string(v))
				if err != nil {
					return err
				}
				out = append(out, r.Item)
				return nil
			})
			if err != nil {
				return err
			}
			if s == InFlight {
				out = appendSoft(t, soft, out)
			}
		}
		return nil
	})
	return out, err
}

// Get returns an item by ID.
func (q *Queue) Get(id string) (Item, error) {
	var it Item
	err := q.viewSoft("get", id, func(t *txn, soft map[string]*softLease) error {
		r, err := t.get(id)
		if err == nil {
			it = r.Item
			if s, ok := softItem(soft, r); ok {
				it = s
			}
		}
		return err
	})
	return it, err
}

// Lookup finds a capture by identity (relative path, size, fingerprint).
func (q *Queue) Lookup(c Capture) (Item, bool, error) {
	var it Item
	var ok bool
	if len(c.Fingerprint) == 0 {
		return Item{}, false, errNoFingerprint(c)
	}
	err := q.viewSoft("lookup", c.Rel, func(t *txn, soft map[string]*softLease) error {
		r, _, err := t.find(c)
		if err == nil && r != nil {
			it, ok = r.Item, true
			if s, held := softItem(soft, r); held {
				it = s
			}
		}
		return err
	})
	return it, ok, err
}

// prune drops the history of captures gone from the card: done, skipped,
// held and vanished items whose file has been absent from every scan since
// before now-HistoryMaxAge, and, beyond HistoryMaxCount absent items, the
// longest absent first. Items of other states stay whatever happens (they
// settle when a worker finds the file gone). It runs inside the caller's
// transaction and only reads the absent index, so its cost does not grow
// with the number of shots on the card.
func (q *Queue) prune(t *txn, now time.Time) (int, error) {
	b := t.bucket(bucketAbsent)
	excess := int64(-1)
	if max := q.opts.HistoryMaxCount; max >= 0 {
		excess = *t.absentCount() - int64(max)
	}
	cutoff := time.Time{}
	if q.opts.HistoryMaxAge >= 0 {
		cutoff = now.Add(-q.opts.HistoryMaxAge)
	}
	var drop []string
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if excess <= 0 && (cutoff.IsZero() || !keyTime(k).Before(cutoff)) {
			break
		}
		excess--
		drop = append(drop, string(v))
	}
	n := 0
	for _, id := range drop {
		r, err := t.get(id)
		if err != nil {
			return n, err
		}
		if r.State == Done || r.State == Skipped || r.State == Held || (r.State == Parked && r.Vanished) {
			if err := t.remove(r); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
