package queue

import (
	"time"
)

// jumpMin is the smallest wall-clock step the queue re-plans for: NTP slews
// offsets below 128 ms and steps larger ones; a step under a second moves
// due times by less than the backoff's jitter.
const jumpMin = time.Second

// skew returns how far the wall clock moved beyond the monotonic time
// passed since the last look (0 without Options.Elapsed or on the first
// look), with the readings to keep as the next anchor.
func (q *Queue) skew() (d time.Duration, wall time.Time, mono time.Duration) {
	if q.opts.Elapsed == nil {
		return 0, time.Time{}, 0
	}
	mono, wall = q.opts.Elapsed(), q.now().Round(0)
	a := &q.anchor
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.set {
		d = wall.Sub(a.wall) - (mono - a.mono)
	}
	return d, wall, mono
}

func (q *Queue) setAnchor(wall time.Time, mono time.Duration) {
	if q.opts.Elapsed == nil {
		return
	}
	a := &q.anchor
	a.mu.Lock()
	a.wall, a.mono, a.set = wall, mono, true
	a.mu.Unlock()
}

// replanTx runs first in every write transaction: when the wall clock was
// stepped by jumpMin or more since the last look, it moves every Retry due
// time and every lease expiry by the step, so that each keeps the delay it
// had left (a clock set back by a day no longer freezes retries for a day,
// a clock set forward no longer makes every retry and lease due at once).
// The caller keeps the returned anchor once the transaction committed.
func (q *Queue) replanTx(t *txn) (wall time.Time, mono time.Duration, err error) {
	d, wall, mono := q.skew()
	if d > -jumpMin && d < jumpMin {
		return wall, mono, nil
	}
	n := 0
	for _, s := range []State{Retry, InFlight} {
		recs, err := t.inState(s)
		if err != nil {
			return wall, mono, err
		}
		for _, r := range recs {
			if err := t.move(r, func(r *rec) {
				if r.State == Retry {
					r.NextAttempt = r.NextAttempt.Add(d)
				} else {
					r.LeaseUntil = r.LeaseUntil.Add(d)
				}
			}); err != nil {
				return wall, mono, err
			}
			n++
		}
	}
	q.log.Warn("queue: the wall clock was stepped; retry and lease due times moved with it, each keeps the delay it had left",
		"path", q.path, "step", d.Round(time.Millisecond).String(), "items", n)
	return wall, mono, nil
}

// clampRetries is for a step the monotonic clock cannot see (the daemon was
// stopped): no Retry item waits longer than BackoffMax from now, the most
// any backoff gives.
func (q *Queue) clampRetries(t *txn) (int, error) {
	limit := q.now().Add(q.opts.BackoffMax)
	var late []*rec
	c := t.bucket(indexBucket[Retry]).Cursor()
	for k, v := c.Last(); k != nil && keyTime(k).After(limit); k, v = c.Prev() {
		r, err := t.get(string(v))
		if err != nil {
			return 0, err
		}
		late = append(late, r)
	}
	for _, r := range late {
		if err := t.move(r, func(r *rec) { r.NextAttempt = limit }); err != nil {
			return 0, err
		}
	}
	return len(late), nil
}
