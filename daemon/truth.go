package daemon

import (
	"fmt"
	"sync"
	"time"

	"github.com/camftpd/camftpd/board"
	"github.com/camftpd/camftpd/queue"
)

// What the status's state and the LED say, told from the run state and
// the queue together (layer 5, with daemon.go): "idle" only when nothing
// waits to be sent. Waiting work is pending, in-flight or retrying items,
// and parked ones (they wait for the user); held items (backlog, not
// protected) are not sent unless asked for, so they do not count, nor do
// done and skipped ones.

// runSnap is the part of the run state (Daemon.mu) the state is told from.
type runSnap struct {
	blocked                          string
	mediaGone, userPaused, clockWait bool
	link                             string
	uploads                          int
	retrying                         string // last transient failure (noteTransient)
}

func (d *Daemon) snapLocked() runSnap {
	return runSnap{blocked: d.blocked, mediaGone: d.mediaGone, userPaused: d.userPaused, clockWait: d.clockWait,
		link: d.link, uploads: len(d.uploads), retrying: d.retrying}
}

// queueFacts is what the queue (and the power gate) add to the state.
type queueFacts struct {
	counts    queue.Counts
	nextRetry time.Time // the earliest retry due (zero: none)
	retryWhy  string    // the first retrying item's last error
	parkedN   int       // parked items that wait for the user (not vanished)
	parked    string    // the first of them: "FILE: why"
	waiting   string    // why the power gate holds captures back
}

// queueFacts reads the queue's part of the state; q may be nil (not
// open yet). A failed read leaves the counts zero: the state then says
// what the run state alone says. It runs on every state change (about
// three per upload), so it reads the queue's counters, and items only
// through the state indexes and when they can matter: the parked ones
// when their number or the queue's changed (parkedCache), the retrying
// ones only when nothing else is to be sent.
func (d *Daemon) queueFacts(q *queue.Queue) queueFacts {
	var f queueFacts
	d.gate.mu.Lock()
	f.waiting = d.gate.waiting
	d.gate.mu.Unlock()
	if q == nil {
		return f
	}
	c, err := q.Counts()
	if err != nil {
		return f
	}
	f.counts = c
	f.parkedN, f.parked = d.parked.get(q, c)
	if c.Retry > 0 && c.Pending == 0 && c.InFlight == 0 {
		// Retry items in due order: the first is the next attempt.
		if items, err := q.List(queue.Retry); err == nil && len(items) > 0 {
			f.nextRetry, f.retryWhy = items[0].NextAttempt, items[0].LastError
		}
	}
	return f
}

// parkedCache is what the parked items say (how many wait for the user,
// the first of them), read again only when the number of parked items or
// of all items changed: a park, a retry or an unvanish changes the first,
// a drop the second, while an upload (pending, in flight, done) changes
// neither. mu guards it.
type parkedCache struct {
	mu            sync.Mutex
	q             *queue.Queue
	parked, total int
	waiting       int
	first         string
}

func (p *parkedCache) get(q *queue.Queue, c queue.Counts) (int, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	total := c.Pending + c.InFlight + c.Retry + c.Parked + c.Held + c.Done + c.Skipped
	if p.q == q && p.parked == c.Parked && p.total == total {
		return p.waiting, p.first
	}
	p.waiting, p.first = 0, ""
	if c.Parked > 0 {
		items, err := q.List(queue.Parked)
		if err != nil {
			return c.Parked, "" // not cached: read again next time
		}
		p.waiting, p.first = parkedWaiting(items)
	}
	p.q, p.parked, p.total = q, c.Parked, total
	return p.waiting, p.first
}

// parkedWaiting counts the parked items that did not vanish (their file
// is gone: nothing to do but drop them) and describes the first of them.
func parkedWaiting(items []queue.Item) (int, string) {
	waiting, first := 0, ""
	for _, it := range items {
		if it.Vanished {
			continue
		}
		waiting++
		if first == "" {
			why := it.Reason
			if why == "" {
				why = it.LastError
			}
			first = it.Capture.Rel + ": " + why
		}
	}
	return waiting, first
}

// liftHint ends a blocked state: how to go on once the cause is fixed.
const liftHint = "; once fixed: camftpd queue retry (or POST /resume)"

// stateOf is the status's state: the first of blocked, paused, waiting
// (clock, link), uploading, waiting for the power gate, queued, waiting
// for retry (when and why), attention (parked), and idle.
func stateOf(r runSnap, f queueFacts, now time.Time) string {
	c := f.counts
	switch {
	case r.blocked != "":
		return "blocked: " + r.blocked + liftHint
	case r.mediaGone:
		return "paused: media unmounted"
	case r.userPaused:
		return "paused"
	case r.clockWait:
		return "waiting: system clock not set"
	case r.link == "down":
		return "waiting: network link down"
	case r.uploads > 0 || c.InFlight > 0:
		return "uploading"
	case c.Pending > 0 && f.waiting != "":
		return "waiting: " + f.waiting
	case c.Pending > 0:
		return fmt.Sprintf("queued: %s to upload", shots(c.Pending))
	case c.Retry > 0:
		return retryState(r, f, now)
	case f.parkedN > 0:
		return attention(f)
	}
	return "idle"
}

// retryState is "waiting for retry: 2 shots, next attempt at 15:04:05 (in
// 12s): why".
func retryState(r runSnap, f queueFacts, now time.Time) string {
	s := "waiting for retry: " + shots(f.counts.Retry)
	if !f.nextRetry.IsZero() {
		in := max(f.nextRetry.Sub(now), 0).Round(time.Second)
		s += fmt.Sprintf(", next attempt at %s (in %s)", f.nextRetry.Local().Format("15:04:05"), in)
	}
	why := r.retrying
	if why == "" {
		why = f.retryWhy
	}
	if why != "" {
		s += ": " + why
	}
	return s
}

// attention says that parked shots wait for the user, and what to do;
// "" when none is parked.
func attention(f queueFacts) string {
	n := f.parkedN
	if n == 0 {
		return ""
	}
	s := fmt.Sprintf("attention: %s parked", shots(n))
	if f.parked != "" {
		s += " (first: " + f.parked + ")"
	}
	return s + ": fix the cause, then camftpd queue retry (camftpd queue list -state parked lists them)"
}

func shots(n int) string {
	if n == 1 {
		return "1 shot"
	}
	return fmt.Sprintf("%d shots", n)
}

// ledOf is the LED's state: error while anything is parked or blocked,
// the media or the link is gone, or shots wait for a retry with nothing
// uploading; busy while uploading; idle otherwise.
func ledOf(r runSnap, f queueFacts) string {
	c := f.counts
	switch {
	case r.blocked != "" || r.mediaGone || r.link == "down" || f.parkedN > 0:
		return board.StateError
	case c.Retry > 0 && r.uploads == 0:
		return board.StateError
	case r.uploads > 0:
		return board.StateBusy
	}
	return board.StateIdle
}

// liftBlock clears a blocked state once the user says its cause is fixed
// (POST /resume, POST /retry: camftpd queue retry), without a reload: the
// dispatcher leases again, and the next upload blocks again if the server
// still refuses.
func (d *Daemon) liftBlock(by string) {
	was := ""
	d.setState(func() { was, d.blocked = d.blocked, "" })
	if was != "" {
		d.log.Info("block lifted: uploads resume (blocked again if the cause remains)", "by", by, "was", was)
	}
}
