package daemon

import (
	"context"
	"time"

	"github.com/camftpd/camftpd/queue"
)

// ackLinger bounds how long a finished upload's done record waits to be
// committed with the next queue change (queue.AckSoon): in a burst the
// next file's Intend follows within milliseconds (it also writes that
// file's lease, which the queue kept in memory), and one transaction and
// one fsync pair then records all three. On the benchmark's 1,000 small
// files that is one commit per file (BENCHMARKS.md, "Where the per-file
// CPU goes").
const ackLinger = 100 * time.Millisecond

// ackSoon records a finished upload as done without holding the worker:
// the worker offers itself to the dispatcher meanwhile. The rename was
// recorded durably before it (the Intent, see attempt.upload): should the
// process die before the done record is committed, the next start finds
// the item in flight with its Intent, and the upload settles it by what the
// server shows, without sending the file again. One such record per worker
// at a time; the goroutine is in the workers' group (joined by schedule),
// and ends at once when ctx does.
func (w *worker) ackSoon(ctx context.Context, it queue.Item, remote, hash string) {
	w.waitAck()
	d, q := w.d, w.d.Queue()
	// The lease has at least two thirds of its time left (renewed every
	// third, see renewLease): never let it run out before the record.
	linger := min(ackLinger, d.leaseTime()/10)
	done := make(chan struct{})
	w.acking = done
	w.bg.Go(func() {
		defer close(done)
		d.durable("ack", it, q.AckSoon(ctx, it.ID, remote, hash, linger))
		d.ackRecorded() // a movie held for this still may go (power.go)
		if d.uploadCount() == 0 {
			d.publishState() // it said "uploading" while the record waited
		}
	})
}

// waitAck waits for the worker's last ackSoon record.
func (w *worker) waitAck() {
	if w.acking != nil {
		<-w.acking
		w.acking = nil
	}
}

// uploadCount is the number of uploads in flight.
func (d *Daemon) uploadCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.uploads)
}
