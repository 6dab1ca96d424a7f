package queue

import (
	"path/filepath"
	"testing"
)

// TestPeek: Peek lists pending items in lease order (priority, then FIFO)
// without leasing them.
func TestPeek(t *testing.T) {
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), nil)
	var ids []string
	for i, prio := range []int{0, 2, 1, 2} {
		c := capN(i)
		c.Priority = prio
		it, _, err := q.Enqueue(c)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, it.ID)
	}
	got, err := q.Peek(3)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{ids[1], ids[3], ids[2]}
	if len(got) != 3 || got[0].ID != want[0] || got[1].ID != want[1] || got[2].ID != want[2] {
		t.Fatalf("Peek(3) = %v, want IDs %v", got, want)
	}
	if c := mustCounts(t, q); c.Pending != 4 || c.InFlight != 0 {
		t.Fatalf("counts after Peek %+v: want all 4 pending", c)
	}
	it, ok, err := q.Lease("w1")
	if err != nil || !ok || it.ID != want[0] {
		t.Fatalf("Lease after Peek: %v %v %v, want %s", it.ID, ok, err, want[0])
	}
	if got, _ := q.Peek(10); len(got) != 3 || got[0].ID != want[1] {
		t.Fatalf("Peek(10) after a lease = %d items, first %v", len(got), got)
	}
}
