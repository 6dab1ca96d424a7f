package queue

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestRegrow: an item leased for a half-written file takes the grown
// file's capture: the item the watcher queued for the grown file meanwhile
// is merged into it, enqueueing the grown file again finds it (no second
// item), its next upload starts fresh (FirstLease), and the index stays
// consistent across a reopen. An item for the grown file already in flight
// wins (ok false); a done item keeps its capture.
func TestRegrow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := openT(t, path, nil)
	half := capN(1)
	grown := half
	grown.Size, grown.Fingerprint = half.Size*2, fpOf("grown")
	x, _, err := q.Enqueue(half)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := q.Lease("w1"); !ok || err != nil {
		t.Fatalf("lease: %v %v", ok, err)
	}
	y, added, err := q.Enqueue(grown)
	if err != nil || !added || y.ID == x.ID {
		t.Fatalf("grown file queued by the watcher: %+v %v %v", y, added, err)
	}
	it, ok, err := q.Regrow(x.ID, grown)
	if err != nil || !ok || it.ID != x.ID || it.Capture.Size != grown.Size || !it.FirstLease || it.State != InFlight {
		t.Fatalf("Regrow: %+v %v %v", it, ok, err)
	}
	if _, err := q.Get(y.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the watcher's item for the grown file is still there: %v", err)
	}
	if again, added, err := q.Enqueue(grown); err != nil || added || again.ID != x.ID {
		t.Fatalf("grown file enqueued again: %+v added %v %v; want the regrown item", again, added, err)
	}
	if c := mustCounts(t, q); c.InFlight != 1 || c.Pending != 0 {
		t.Fatalf("counts %+v, want one item in flight", c)
	}
	mustVerify(t, q)
	if err := q.Release(x.ID); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := q.Lease("w1"); !ok || err != nil || !got.FirstLease || got.ID != x.ID {
		t.Fatalf("next lease %+v %v %v: want the regrown item, first lease", got, ok, err)
	}

	// Another grown version whose item is in flight already: it wins.
	more := grown
	more.Size, more.Fingerprint = grown.Size+10, fpOf("more")
	z, _, _ := q.Enqueue(more)
	if _, ok, _ := q.Lease("w2"); !ok {
		t.Fatal("no lease for the newest version")
	}
	if _, ok, err := q.Regrow(x.ID, more); ok || err != nil {
		t.Fatalf("Regrow onto an item in flight: ok %v err %v, want false, nil", ok, err)
	}
	if err := q.Ack(z.ID, "r", "h"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.Regrow(z.ID, grown); !errors.Is(err, ErrState) {
		t.Fatalf("Regrow of a done item: %v, want ErrState", err)
	}
	q.Close()
	q2 := openT(t, path, nil)
	mustVerify(t, q2)
}

func mustCounts(t *testing.T, q *Queue) Counts {
	t.Helper()
	c, err := q.Counts()
	if err != nil {
		t.Fatal(err)
	}
	return c
}
