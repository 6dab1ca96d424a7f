package queue

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// txID is the id of the last committed write transaction.
func txID(t *testing.T, q *Queue) int {
	t.Helper()
	var id int
	if err := q.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestLeaseFunc: LeaseFunc leases only what admit accepts, in Lease's
// order, leaves the refused items pending in their place, writes nothing
// when it finds nothing, and still brings due retries back to pending.
func TestLeaseFunc(t *testing.T) {
	clk := newClock()
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), &Options{Now: clk.Now, BackoffMin: time.Second, BackoffMax: time.Second})
	movie := capN(1)
	movie.Path, movie.Rel, movie.Priority = "/media/DCIM/100CAM/MOV_00001.MP4", "100CAM/MOV_00001.MP4", 0
	stills := []Capture{capN(2), capN(3)}
	for i := range stills {
		stills[i].Priority = 2
	}
	mv := mustEnqueue(t, q, movie)
	s1 := mustEnqueue(t, q, stills[0])
	s2 := mustEnqueue(t, q, stills[1])
	noMovie := func(it Item) bool { return !strings.HasSuffix(it.Capture.Rel, ".MP4") }

	for _, want := range []string{s1.ID, s2.ID} {
		it, ok, err := q.LeaseFunc("w1", noMovie)
		if err != nil || !ok || it.ID != want {
			t.Fatalf("LeaseFunc = %s %v %v, want %s", it.ID, ok, err, want)
		}
	}
	before := txID(t, q)
	var seen []string
	it, ok, err := q.LeaseFunc("w1", func(it Item) bool { seen = append(seen, it.ID); return noMovie(it) })
	if err != nil || ok {
		t.Fatalf("LeaseFunc with only a refused movie pending = %s %v %v, want nothing", it.ID, ok, err)
	}
	if len(seen) == 0 || seen[0] != mv.ID {
		t.Fatalf("admit saw %v, want the pending movie %s", seen, mv.ID)
	}
	if after := txID(t, q); after != before {
		t.Fatalf("a LeaseFunc that found nothing wrote to the file (tx %d -> %d)", before, after)
	}
	if got, err := q.Get(mv.ID); err != nil || got.State != Pending || got.Attempts != 0 {
		t.Fatalf("refused movie: %+v %v, want pending with no attempt", got.State, err)
	}

	// A still that failed comes back from Retry when due, and is leased
	// before the refused movie.
	if _, err := q.Fail(s1.ID, "cut"); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Second)
	if it, ok, err := q.LeaseFunc("w2", noMovie); err != nil || !ok || it.ID != s1.ID {
		t.Fatalf("LeaseFunc after the retry fell due = %s %v %v, want %s", it.ID, ok, err, s1.ID)
	}
	// Lease (admit nil) hands out the movie.
	if it := mustLease(t, q, "w2"); it.ID != mv.ID {
		t.Fatalf("Lease = %s, want the movie %s", it.ID, mv.ID)
	}
	mustVerify(t, q)
}
