package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/camftpd/camftpd/board"

	"github.com/camftpd/camftpd/queue"
)

// noPolicy settles an item leased for server idx whose TLS settings were
// refused when the workers started (they log why): uploads block until the
// configuration is fixed and reloaded. Releasing the item alone made the
// dispatcher lease it again at once, in a loop.
func (w *worker) noPolicy(it queue.Item, idx int) {
	d := w.d
	d.durable("release", it, d.Queue().Release(it.ID))
	reason := fmt.Sprintf("tls-policy: server %q: its TLS settings were refused at start (see the log): fix them and reload", w.cfg.Servers[idx].Name)
	d.block(reason)
	d.hub.publish(Event{Type: "blocked", ID: it.ID, File: it.Capture.Rel, Error: reason, State: "tls-policy"})
}

// clockUnset handles a certificate that cannot be judged because the device
// clock is not set (tlspolicy.KindClock): uploads wait for the clock, and
// the item retries after its backoff, never at once (a clock the board
// deems set but the TLS check does not would otherwise loop).
func (w *worker) clockUnset(ctx context.Context, it queue.Item, msg string) {
	d := w.d
	next, err := d.Queue().Fail(it.ID, msg)
	d.durable("fail", it, err)
	d.log.Warn("server certificate cannot be judged: the system clock is not set; uploads wait for it",
		"file", it.Capture.Rel, "err", msg, "next", next)
	start := false
	d.setState(func() { start, d.clockWait, d.retrying = !d.clockWait, true, msg })
	d.hub.publish(Event{Type: "retry", ID: it.ID, File: it.Capture.Rel, Error: msg})
	if !start {
		return // another worker already waits for the clock
	}
	w.bg.Go(func() { // ends with ctx, joined with the workers
		if waitClock(ctx) == nil {
			d.setState(func() { d.clockWait = false })
		}
	})
}

// waitClock waits for the board to deem the clock set (ctx ends it).
func waitClock(ctx context.Context) error { return board.WaitClock(ctx, time.Now) }
