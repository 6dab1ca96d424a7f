package queue

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// commits is the number of read-write transactions committed so far
// (bbolt's transaction id grows by one per commit).
func commits(t *testing.T, q *Queue) int {
	t.Helper()
	var id int
	if err := q.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestGroupCommitFailedCallAlone: calls that queue up behind a commit are
// committed together in one transaction; one whose fn fails gets its own
// error, and the others are committed without it.
func TestGroupCommitFailedCallAlone(t *testing.T) {
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), nil)
	var ids []string
	for i := range 2 {
		if _, _, err := q.Enqueue(capN(i)); err != nil {
			t.Fatal(err)
		}
		it, ok, err := q.Lease(fmt.Sprintf("w%d", i))
		if err != nil || !ok {
			t.Fatalf("lease: %v %v", ok, err)
		}
		ids = append(ids, it.ID)
	}
	before := commits(t, q)

	q.group.run.Lock() // a commit under way: the calls below queue up
	errs := make([]error, 3)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = q.Intend(ids[0], Intent{Temp: "t0", Final: "f0", Size: 1}) })
	wg.Go(func() { errs[1] = q.Ack("no-such-item", "r", "") })
	wg.Go(func() { errs[2] = q.Ack(ids[1], "r1", "crc32c:00") })
	deadline := time.Now().Add(10 * time.Second)
	for {
		q.group.mu.Lock()
		n := len(q.group.pending)
		q.group.mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want 3", n)
		}
		time.Sleep(time.Millisecond)
	}
	q.group.run.Unlock()
	wg.Wait()

	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("the good calls failed: %v, %v", errs[0], errs[2])
	}
	if !errors.Is(errs[1], ErrNotFound) {
		t.Fatalf("the bad call: %v, want ErrNotFound", errs[1])
	}
	if got := commits(t, q) - before; got != 1 {
		t.Errorf("%d commits for the two good calls, want 1 (grouped)", got)
	}
	a, err := q.Get(ids[0])
	if err != nil || a.State != InFlight || a.Intent.Final != "f0" {
		t.Errorf("intended item: %+v %v", a, err)
	}
	b, err := q.Get(ids[1])
	if err != nil || b.State != Done || b.Remote != "r1" {
		t.Errorf("acked item: %+v %v", b, err)
	}
}

// TestGroupCommitConcurrentWorkers: workers leasing, intending and acking
// at once all finish every item exactly once, in fewer commits than calls.
func TestGroupCommitConcurrentWorkers(t *testing.T) {
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), nil)
	const items, workers = 120, 4
	cs := make([]Capture, items)
	for i := range cs {
		cs[i] = capN(i)
	}
	if _, _, err := q.EnqueueBatch(cs); err != nil {
		t.Fatal(err)
	}
	before := commits(t, q)
	var mu sync.Mutex
	seen := map[string]int{}
	calls := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				it, ok, err := q.Lease(fmt.Sprintf("w%d", w))
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					return
				}
				if err := q.Intend(it.ID, Intent{Temp: "t", Final: it.Capture.Rel, Size: it.Capture.Size}); err != nil {
					t.Error(err)
					return
				}
				if err := q.Ack(it.ID, it.Capture.Rel, ""); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[it.ID]++
				calls += 3
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != items {
		t.Fatalf("%d items done, want %d", len(seen), items)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("item %s leased and acked %d times", id, n)
		}
	}
	got := commits(t, q) - before
	t.Logf("%d calls in %d commits", calls, got)
	if got >= calls {
		t.Errorf("%d commits for %d calls: nothing was grouped", got, calls)
	}
}

// TestAckSoonRidesTheNextCommit: an AckSoon is committed with the next
// commit (the next file's Intend, which writes that file's lease too: one
// commit for the three), and alone once linger has passed.
func TestAckSoonRidesTheNextCommit(t *testing.T) {
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), nil)
	for i := range 2 {
		if _, _, err := q.Enqueue(capN(i)); err != nil {
			t.Fatal(err)
		}
	}
	a, ok, err := q.Lease("w1")
	if err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	before := commits(t, q)
	acked := make(chan error, 1)
	go func() { acked <- q.AckSoon(context.Background(), a.ID, "r0", "", time.Minute) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		q.group.mu.Lock()
		n := len(q.group.pending)
		q.group.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("AckSoon did not queue")
		}
	}
	b, ok, err := q.Lease("w1")
	if err != nil || !ok {
		t.Fatalf("second lease: %v %v", ok, err)
	}
	if got := commits(t, q) - before; got != 0 {
		t.Errorf("the Lease committed (%d commits): want it kept until the next commit", got)
	}
	if err := q.Intend(b.ID, Intent{Temp: "t1", Final: "r1", Size: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-acked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("AckSoon still waiting after the Intend committed")
	}
	if got := commits(t, q) - before; got != 1 {
		t.Errorf("%d commits for AckSoon, Lease and Intend, want 1", got)
	}
	if it, err := q.Get(a.ID); err != nil || it.State != Done {
		t.Errorf("acked item: %+v %v", it, err)
	}

	// Work due (a third item): it lingers, then commits alone.
	if _, _, err := q.Enqueue(capN(2)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := q.AckSoon(context.Background(), b.ID, "r1", "", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("AckSoon alone returned after %v, before its linger", waited)
	}
	if it, err := q.Get(b.ID); err != nil || it.State != Done {
		t.Errorf("item acked alone: %+v %v", it, err)
	}

	// No work due: it commits at once (a minute's linger would time out
	// the test).
	c, ok, err := q.Lease("w1")
	if err != nil || !ok {
		t.Fatalf("third lease: %v %v", ok, err)
	}
	if err := q.AckSoon(context.Background(), c.ID, "r2", "", time.Hour); err != nil {
		t.Fatal(err)
	}
	if it, err := q.Get(c.ID); err != nil || it.State != Done {
		t.Errorf("last item: %+v %v", it, err)
	}
}
