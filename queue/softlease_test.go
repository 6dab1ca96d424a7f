package queue

import (
	"path/filepath"
	"testing"
	"time"
)

// dbRecord reads an item's record as written in the file (no soft lease).
func dbRecord(t *testing.T, q *Queue, id string) *rec {
	t.Helper()
	var r *rec
	if err := q.view("test", id, func(tx *txn) error {
		var err error
		r, err = tx.get(id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSoftLeaseWrittenWithNextCommit: a Lease writes nothing; every reader
// sees the item in flight all the same, no second Lease gets it, and the
// next commit (the Intend) writes it.
func TestSoftLeaseWrittenWithNextCommit(t *testing.T) {
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), nil)
	for i := range 3 {
		mustEnqueue(t, q, capN(i))
	}
	before := commits(t, q)
	a := mustLease(t, q, "w1")
	if a.State != InFlight || a.Worker != "w1" || a.Attempts != 1 || !a.FirstLease {
		t.Fatalf("leased item %+v", a)
	}
	if got := commits(t, q) - before; got != 0 {
		t.Fatalf("Lease committed %d transactions, want none", got)
	}
	if r := dbRecord(t, q, a.ID); r.State != Pending || r.Attempts != 0 {
		t.Fatalf("file holds %s attempts %d before the next commit, want pending 0", r.State, r.Attempts)
	}
	if it, err := q.Get(a.ID); err != nil || it.State != InFlight || it.Worker != "w1" {
		t.Errorf("Get of a leased item: %+v %v", it, err)
	}
	if it, ok, err := q.Lookup(capN(0)); err != nil || !ok || it.State != InFlight {
		t.Errorf("Lookup of a leased item: %+v %v %v", it, ok, err)
	}
	if c := mustCounts(t, q); c.Pending != 2 || c.InFlight != 1 {
		t.Errorf("counts %+v, want 2 pending and 1 in flight", c)
	}
	if l, err := q.List(InFlight); err != nil || len(l) != 1 || l[0].ID != a.ID {
		t.Errorf("List(in flight) = %v %v", l, err)
	}
	if l, err := q.List(Pending); err != nil || len(l) != 2 {
		t.Errorf("List(pending) = %d items %v, want 2", len(l), err)
	}
	if p, err := q.Peek(5); err != nil || len(p) != 2 || p[0].ID == a.ID || p[1].ID == a.ID {
		t.Errorf("Peek = %v %v: want the two others", p, err)
	}
	if due, ok := q.NextDue(); !ok || !due.Equal(a.LeaseUntil) {
		t.Errorf("NextDue = %v %v, want the lease's end %v", due, ok, a.LeaseUntil)
	}
	b := mustLease(t, q, "w2")
	c := mustLease(t, q, "w3")
	if b.ID == a.ID || c.ID == a.ID || b.ID == c.ID {
		t.Fatalf("one item leased twice: %s %s %s", a.ID, b.ID, c.ID)
	}
	if _, ok, err := q.Lease("w4"); ok || err != nil {
		t.Fatalf("a fourth lease of three items: %v %v", ok, err)
	}
	before = commits(t, q)
	if err := q.Intend(a.ID, Intent{Temp: "t", Final: "f", Size: 1}); err != nil {
		t.Fatal(err)
	}
	if got := commits(t, q) - before; got != 1 {
		t.Errorf("Intend took %d commits, want 1", got)
	}
	for _, it := range []Item{a, b, c} {
		if r := dbRecord(t, q, it.ID); r.State != InFlight || r.Worker != it.Worker || r.Attempts != 1 || !r.leased {
			t.Errorf("after the commit the file holds %+v for %s", r.Item, it.Worker)
		}
	}
	if err := q.Ack(b.ID, "r", ""); err != nil {
		t.Fatal(err)
	}
	if err := q.Release(c.ID); err != nil {
		t.Fatal(err)
	}
	if cn := mustCounts(t, q); cn.InFlight != 1 || cn.Done != 1 || cn.Pending != 1 {
		t.Errorf("counts %+v, want 1 in flight, 1 done, 1 pending", cn)
	}
	mustVerify(t, q)
}

// TestSoftLeaseLostInCrash: a lease that was never written leaves its item
// pending after a crash, and the restart does not call any item enqueued
// before it a first lease (its temporary file may be on the server); a
// clean Close writes the leases it holds.
func TestSoftLeaseLostInCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q, err := Open(path, &Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		mustEnqueue(t, q, capN(i))
	}
	a := mustLease(t, q, "w1")
	if !a.FirstLease {
		t.Fatal("first lease of a new item without FirstLease")
	}
	if err := q.db.Close(); err != nil { // the process dies: no Close
		t.Fatal(err)
	}

	q = openT(t, path, nil)
	if it, err := q.Get(a.ID); err != nil || it.State != Pending || it.Attempts != 0 {
		t.Fatalf("after the crash: %+v %v, want pending, no attempt", it, err)
	}
	again := mustLease(t, q, "w1")
	if again.ID != a.ID || again.FirstLease {
		t.Errorf("lease after a crash: %s first %v, want %s not first", again.ID, again.FirstLease, a.ID)
	}
	other := mustLease(t, q, "w2")
	if other.FirstLease {
		t.Errorf("item enqueued before the crash leased as first: %s", other.ID)
	}
	n := mustEnqueue(t, q, capN(2))
	if got := mustLease(t, q, "w3"); got.ID != n.ID || !got.FirstLease {
		t.Errorf("item enqueued after the restart: %s first %v, want %s first", got.ID, got.FirstLease, n.ID)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	// Clean close with leases held: written, then back to pending.
	q = openT(t, path, nil)
	for _, id := range []string{a.ID, other.ID, n.ID} {
		if it, err := q.Get(id); err != nil || it.State != Pending {
			t.Fatalf("after a clean close: %+v %v", it, err)
		}
	}
	mustEnqueue(t, q, capN(3))
	for range 3 {
		if it := mustLease(t, q, "w"); it.FirstLease {
			t.Errorf("item leased before a clean close leased as first: %s", it.ID)
		}
	}
	if it := mustLease(t, q, "w"); !it.FirstLease || it.Capture.Rel != capN(3).Rel {
		t.Errorf("new item after a clean start: %s first %v", it.Capture.Rel, it.FirstLease)
	}
}

// TestSoftLeaseExpires: a soft lease that runs out goes back to pending
// like a written one, and the next Lease hands the item out again.
func TestSoftLeaseExpires(t *testing.T) {
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), &Options{LeaseTime: 20 * time.Millisecond})
	mustEnqueue(t, q, capN(0))
	a := mustLease(t, q, "w1")
	if _, ok, err := q.Lease("w2"); ok || err != nil {
		t.Fatalf("second lease while the first holds: %v %v", ok, err)
	}
	time.Sleep(40 * time.Millisecond)
	b := mustLease(t, q, "w2")
	if b.ID != a.ID || b.Worker != "w2" || b.Attempts != 2 {
		t.Fatalf("after expiry: %+v", b)
	}
	if r := dbRecord(t, q, a.ID); r.State != InFlight || r.Worker != "w2" || r.LastError != "lease of w1 expired" {
		t.Errorf("file holds %+v", r.Item)
	}
	mustVerify(t, q)
}

// TestSoftLeaseOverAClockStep: a lease written after a wall-clock step
// keeps the time it had left (monotonic), forward and back.
func TestSoftLeaseOverAClockStep(t *testing.T) {
	for _, step := range []time.Duration{time.Hour, -time.Hour} {
		clk := &twoClocks{wall: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
		q := openT(t, filepath.Join(t.TempDir(), "q.db"), &Options{Now: clk.Now, Elapsed: clk.Elapsed, LeaseTime: 10 * time.Minute})
		mustEnqueue(t, q, capN(0))
		a := mustLease(t, q, "w1")
		clk.pass(time.Minute)
		clk.step(step)
		if err := q.Intend(a.ID, Intent{Temp: "t", Final: "f", Size: 1}); err != nil {
			t.Fatal(err)
		}
		want := clk.Now().Add(9 * time.Minute)
		if r := dbRecord(t, q, a.ID); !r.LeaseUntil.Equal(want) {
			t.Errorf("step %s: lease written to end at %s, want %s (9 minutes left)", step, r.LeaseUntil, want)
		}
		if _, ok, err := q.Lease("w2"); ok || err != nil {
			t.Errorf("step %s: leased again (%v) with 9 minutes left", step, err)
		}
	}
}

// TestSoftLeaseAfterAFailedWrite: a write transaction that fails after
// writing the soft leases is rolled back with them; the lease stays soft
// and the next commit writes it, once.
func TestSoftLeaseAfterAFailedWrite(t *testing.T) {
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), nil)
	mustEnqueue(t, q, capN(0))
	mustEnqueue(t, q, capN(1))
	a := mustLease(t, q, "w1")
	if err := q.Intend("0000000000000000", Intent{Temp: "t", Final: "f", Size: 1}); err == nil {
		t.Fatal("Intend of an unknown item succeeded")
	}
	if r := dbRecord(t, q, a.ID); r.State != Pending {
		t.Fatalf("a failed write left the lease written: %s", r.State)
	}
	if it, err := q.Get(a.ID); err != nil || it.State != InFlight {
		t.Fatalf("lease lost by a failed write: %+v %v", it, err)
	}
	if err := q.Intend(a.ID, Intent{Temp: "t", Final: "f", Size: 1}); err != nil {
		t.Fatal(err)
	}
	if r := dbRecord(t, q, a.ID); r.State != InFlight || r.Attempts != 1 || r.Intent.Final != "f" {
		t.Errorf("after the next commit: %+v", r.Item)
	}
	b := mustLease(t, q, "w2")
	if err := q.Release(a.ID); err != nil { // a commit after the lease was dropped from the set
		t.Fatal(err)
	}
	if r := dbRecord(t, q, a.ID); r.State != Pending || r.Attempts != 0 {
		t.Errorf("released item written again by a later commit: %+v", r.Item)
	}
	if r := dbRecord(t, q, b.ID); r.State != InFlight || r.Worker != "w2" {
		t.Errorf("second lease: %+v", r.Item)
	}
	mustVerify(t, q)
}
