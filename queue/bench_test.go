package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// addDoneBatch writes n done items in transactions of batch items each,
// through the same put and prune code as Ack (fast fill for size tests; the
// real Ack path is one transaction per change).
func addDoneBatch(t testing.TB, q *Queue, from, n, batch int) {
	for i := from; i < from+n; i += batch {
		err := q.update("fill", "", func(tx *txn) error {
			now := q.now()
			for j := i; j < min(i+batch, from+n); j++ {
				c := capN(j)
				r, id, err := tx.find(c)
				if err != nil {
					return fmt.Errorf("fill %d: %w", j, err)
				}
				if r != nil {
					return fmt.Errorf("fill %d: already queued as %s", j, r.ID)
				}
				seq, _ := tx.bucket(bucketItems).NextSequence()
				r = &rec{Item: Item{ID: id, Seq: seq, Capture: c, State: Done, Enqueued: now, Attempts: 1,
					Remote: "/upload/2026-11-25/" + c.Rel, Hash: fmt.Sprintf("crc32c:%08x", j), DoneAt: now}}
				if err := tx.insert(r); err != nil {
					return err
				}
			}
			_, err := q.prune(tx, now)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func fileSizes(t testing.TB, q *Queue) (apparent, allocated, used int64) {
	fi, err := os.Stat(q.path)
	if err != nil {
		t.Fatal(err)
	}
	apparent = fi.Size()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		allocated = int64(st.Blocks) * 512
	}
	if err := q.db.View(func(tx *bboltTx) error { used = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	return
}

// TestHistoryOfACardIsKept writes 30,000 done items (a card of delivered
// shots, none absent: three times the old history bound) with the default
// bounds: all are kept, the file stays within its per-shot budget, and
// reopening checks it; the figures are logged. BenchmarkStartup250k has
// the figures of a 250,000-shot card.
func TestHistoryOfACardIsKept(t *testing.T) {
	n := 30000
	path := filepath.Join(t.TempDir(), "q.db")
	q := openT(t, path, nil)
	start := time.Now()
	addDoneBatch(t, q, 0, n, 1000)
	fill := time.Since(start)
	// The real path: Ack, one transaction, prunes nothing (nothing absent).
	it := mustEnqueue(t, q, capN(n+1))
	mustLease(t, q, "w")
	if err := q.Ack(it.ID, "/r", "h"); err != nil {
		t.Fatal(err)
	}
	if c, _ := q.Counts(); c.Done != n+1 {
		t.Fatalf("done count %d, want %d: history of shots on the card was pruned", c.Done, n+1)
	}
	apparent, allocated, used := fileSizes(t, q)
	q.Close()
	start = time.Now()
	q = openT(t, path, nil)
	reopen := time.Since(start)
	mustVerify(t, q)
	t.Logf("history: %d done items written (batches of 1000, %s): file %d bytes (%.1f MiB, %.0f bytes/shot), %d allocated on disk, %d used by bbolt; reopen+check %s",
		n+1, fill.Round(time.Millisecond), apparent, float64(apparent)/(1<<20), float64(apparent)/float64(n), allocated, used, reopen.Round(time.Millisecond))
	// About 460 bytes per shot: 250,000 shots fit the default bound.
	if perShot := float64(apparent) / float64(n); perShot > 600 || 250000*perShot > DefaultMaxFileSize {
		t.Fatalf("%.0f bytes per shot: 250,000 shots would not fit the default bound of %d bytes", perShot, DefaultMaxFileSize)
	}
}

// BenchmarkEnqueueBurst enqueues a 1,000-shot burst, one fsync'd
// transaction per capture, and reports enqueues/s and the p99 latency.
func BenchmarkEnqueueBurst(b *testing.B) {
	const burst = 1000
	var lat []time.Duration
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		q := openT(b, filepath.Join(b.TempDir(), "q.db"), nil)
		b.StartTimer()
		start := time.Now()
		for j := 0; j < burst; j++ {
			t0 := time.Now()
			if _, _, err := q.Enqueue(capN(i*burst + j)); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		total += time.Since(start)
		b.StopTimer()
		q.Close()
		b.StartTimer()
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/total.Seconds(), "enqueues/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
}

// BenchmarkLeaseAck measures a Lease followed by an Ack (two fsync'd
// transactions) on a queue of pending items.
func BenchmarkLeaseAck(b *testing.B) {
	q := openT(b, filepath.Join(b.TempDir(), "q.db"), nil)
	err := q.update("fill", "", func(tx *txn) error {
		for j := 0; j < b.N; j++ {
			c := capN(j)
			_, id, _ := tx.find(c)
			seq, _ := tx.bucket(bucketItems).NextSequence()
			if err := tx.insert(&rec{Item: Item{ID: id, Seq: seq, Capture: c, State: Pending, Enqueued: time.Now()}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		it, ok, err := q.Lease("w")
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
		if err := q.Ack(it.ID, "/r/"+it.Capture.Rel, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "lease+ack/s")
}

// BenchmarkEnqueueBurstBatch10 is the same 1,000-shot burst written by
// EnqueueBatch in groups of 10 (a watcher flushing what settled together).
func BenchmarkEnqueueBurstBatch10(b *testing.B) {
	const burst, group = 1000, 10
	var lat []time.Duration
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		q := openT(b, filepath.Join(b.TempDir(), "q.db"), nil)
		b.StartTimer()
		start := time.Now()
		for j := 0; j < burst; j += group {
			cs := make([]Capture, group)
			for k := range cs {
				cs[k] = capN(i*burst + j + k)
			}
			t0 := time.Now()
			if _, _, err := q.EnqueueBatch(cs); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		total += time.Since(start)
		b.StopTimer()
		q.Close()
		b.StartTimer()
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat)*group)/total.Seconds(), "enqueues/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-batch-ms")
}
