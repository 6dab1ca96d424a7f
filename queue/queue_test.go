package queue

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openT(t testing.TB, path string, o *Options) *Queue {
	t.Helper()
	if o == nil {
		o = &Options{}
	}
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	q, err := Open(path, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func capN(i int) Capture {
	return Capture{
		Path:        fmt.Sprintf("/media/DCIM/100CAM/IMG_%05d.JPG", i),
		Rel:         fmt.Sprintf("100CAM/IMG_%05d.JPG", i),
		Size:        int64(4<<20 + i),
		ModTime:     time.Date(2026, 11, 25, 10, 0, 0, i*1000+7, time.UTC),
		Inode:       uint64(1000 + i),
		Fingerprint: fpOf(fmt.Sprint("content ", i)),
	}
}

// fpOf is a fingerprint for synthetic captures (their content is s).
func fpOf(s string) []byte {
	fp, err := Fingerprint(strings.NewReader(s), int64(len(s)))
	if err != nil {
		panic(err)
	}
	return fp
}

func mustVerify(t testing.TB, q *Queue) {
	t.Helper()
	if err := q.Verify(); err != nil {
		t.Fatal(err)
	}
}

// mustEnqueue, mustLease and mustFail are steps a scenario needs: an error
// (or, for a lease, nothing to lease) ends the test there, before checks
// that would fail far from the cause.
func mustEnqueue(t testing.TB, q *Queue, c Capture) Item {
	t.Helper()
	it, _, err := q.Enqueue(c)
	if err != nil {
		t.Fatalf("enqueue %s: %v", c.Rel, err)
	}
	return it
}

func mustLease(t testing.TB, q *Queue, worker string) Item {
	t.Helper()
	it, ok, err := q.Lease(worker)
	if err != nil || !ok {
		t.Fatalf("lease for %s: leased %v, %v", worker, ok, err)
	}
	return it
}

func mustFail(t testing.TB, q *Queue, id, msg string) time.Time {
	t.Helper()
	next, err := q.Fail(id, msg)
	if err != nil {
		t.Fatalf("fail %s: %v", id, err)
	}
	return next
}

func TestEnqueueIdempotentAndStableID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	q := openT(t, path, nil)
	c := capN(1)
	it, added, err := q.Enqueue(c)
	if err != nil || !added || it.State != Pending || it.ID == "" {
		t.Fatalf("first enqueue: %+v %v %v", it, added, err)
	}
	it2, added, err := q.Enqueue(c)
	if err != nil || added || it2.ID != it.ID {
		t.Fatalf("second enqueue must be a no-op: %+v %v %v", it2, added, err)
	}
	// Priority is not part of the identity.
	c.Priority = 5
	if _, added, _ := q.Enqueue(c); added {
		t.Fatal("same capture with another priority was added again")
	}
	// Rewritten file: new content, same size -> new item.
	rw := capN(1)
	rw.ModTime = rw.ModTime.Add(time.Second)
	rw.Fingerprint = fpOf("other content")
	it3, added, err := q.Enqueue(rw)
	if err != nil || !added || it3.ID == it.ID {
		t.Fatalf("rewritten file must be a new item: %+v %v %v", it3, added, err)
	}
	// The same shot seen with another inode, mtime (FAT remount, time zone)
	// and mount point: the same item.
	in := capN(1)
	in.Inode += 77
	in.ModTime = in.ModTime.Add(2 * time.Hour)
	in.Path = "/mnt/sd/DCIM/100CAM/IMG_00001.JPG"
	if got, added, _ := q.Enqueue(in); added || got.ID != it.ID {
		t.Fatal("the same shot under a new inode, mtime and mount point must be known")
	}
	// Same name and size, other content (card formatted, numbering reset):
	// a new capture.
	other := capN(1)
	other.Fingerprint = fpOf("a later shot")
	if _, added, _ := q.Enqueue(other); !added {
		t.Fatal("a different shot under a used name must be a new item")
	}
	noFP := capN(2)
	noFP.Fingerprint = nil
	if _, _, err := q.Enqueue(noFP); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("a capture without fingerprint must be refused: %v", err)
	}
	// The ID survives a restart and does not depend on the file.
	q.Close()
	q = openT(t, path, nil)
	got, ok, err := q.Lookup(capN(1))
	if err != nil || !ok || got.ID != it.ID {
		t.Fatalf("lookup after reopen: %+v %v %v", got, ok, err)
	}
	if !got.Capture.ModTime.Equal(capN(1).ModTime) || got.Capture.Rel != capN(1).Rel {
		t.Fatalf("capture did not round-trip: %+v", got.Capture)
	}
	q2 := openT(t, filepath.Join(t.TempDir(), "other.db"), nil)
	it4, _, _ := q2.Enqueue(capN(1))
	if it4.ID != it.ID {
		t.Fatalf("ID must derive from the identity alone: %s vs %s", it4.ID, it.ID)
	}
	if _, _, err := q.Enqueue(Capture{}); err == nil {
		t.Fatal("empty path accepted")
	}
	mustVerify(t, q)
}

func TestOrderFIFOWithPriorityLane(t *testing.T) {
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), nil)
	var want []string
	ids := map[int]string{}
	for i := 0; i < 6; i++ {
		c := capN(i)
		if i == 3 || i == 5 {
			c.Priority = 1 // e.g. JPEG before RAW
		}
		it, _, err := q.Enqueue(c)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = it.ID
	}
	urgent := capN(9)
	urgent.Priority = 10
	u, _, _ := q.Enqueue(urgent)
	want = []string{u.ID, ids[3], ids[5], ids[0], ids[1], ids[2], ids[4]}
	for i, w := range want {
		it, ok, err := q.Lease("w")
		if err != nil || !ok {
			t.Fatalf("lease %d: %v %v", i, ok, err)
		}
		if it.ID != w || it.State != InFlight || it.Worker != "w" || it.Attempts != 1 {
			t.Fatalf("lease %d: got %s (%s), want %s", i, it.Capture.Path, it.State, w)
		}
	}
	if _, ok, err := q.Lease("w"); ok || err != nil {
		t.Fatalf("nothing due, got %v %v", ok, err)
	}
	mustVerify(t, q)
}

func TestLeasesOfCrashedRunGoBackToPending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := openT(t, path, nil)
	for i := 0; i < 3; i++ {
		mustEnqueue(t, q, capN(i))
	}
	a, _, _ := q.Lease("w1")
	mustLease(t, q, "w2")
	q.Close() // as if the process died: leases stay in the file
	q = openT(t, path, nil)
	c, _ := q.Counts()
	if c.InFlight != 0 || c.Pending != 3 {
		t.Fatalf("counts after reopen: %+v", c)
	}
	select {
	case <-q.Wake():
	default:
		t.Fatal("Open with pending work must signal Wake")
	}
	it, _ := q.Get(a.ID)
	if it.State != Pending || it.LastError == "" || it.Attempts != 1 {
		t.Fatalf("reverted item: %+v", it)
	}
	// FIFO order is kept: the first leased comes first again.
	if it, _, _ := q.Lease("w"); it.ID != a.ID {
		t.Fatalf("order after revert: %s", it.Capture.Path)
	}
	mustVerify(t, q)
}

func TestBackoffCappedJitteredAndReset(t *testing.T) {
	clk := newClock()
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), &Options{Now: clk.Now})
	it, _, _ := q.Enqueue(capN(1))
	other, _, _ := q.Enqueue(capN(2))
	lo, hi := DefaultBackoffMin, DefaultBackoffMin // never below BackoffMin (retry_min)
	for n := 1; n <= 12; n++ {
		got, ok, err := q.Lease("w")
		if err != nil || !ok || got.ID != it.ID {
			t.Fatalf("round %d: lease %+v %v %v", n, got, ok, err)
		}
		next, err := q.Fail(it.ID, "421 service not available")
		if err != nil {
			t.Fatal(err)
		}
		d := next.Sub(clk.Now())
		if d < lo || d > hi {
			t.Fatalf("failure %d: delay %s outside [%s, %s]", n, d, lo, hi)
		}
		st, _ := q.Get(it.ID)
		if st.State != Retry || !st.NextAttempt.Equal(next) || st.LastError == "" {
			t.Fatalf("after fail: %+v", st)
		}
		if due, ok := q.NextDue(); !ok || !due.Equal(next) {
			t.Fatalf("NextDue %v %v, want %v", due, ok, next)
		}
		// Not due yet: the other item (kept in flight) is not offered either.
		if n == 1 {
			if o, _, _ := q.Lease("w2"); o.ID != other.ID {
				t.Fatal("other item should be leased")
			}
			if err := q.Renew(other.ID); err != nil {
				t.Fatal(err)
			}
		}
		if _, ok, _ := q.Lease("w"); ok {
			t.Fatal("a retry item was leased before its time")
		}
		clk.Add(d)
		hi *= 2
		if hi > DefaultBackoffMax {
			hi = DefaultBackoffMax
		}
		lo = max(hi/2, DefaultBackoffMin)
		if n == 12 && hi != DefaultBackoffMax {
			t.Fatalf("backoff not capped: %s", hi)
		}
		if err := q.Renew(other.ID); err != nil {
			t.Fatal(err)
		}
	}
	// ResetBackoff: due now, next failure starts again from BackoffMin.
	mustLease(t, q, "w")
	mustFail(t, q, it.ID, "x")
	if err := q.ResetBackoff(); err != nil {
		t.Fatal(err)
	}
	st, _ := q.Get(it.ID)
	if st.State != Pending {
		t.Fatalf("after ResetBackoff: %s", st.State)
	}
	mustLease(t, q, "w")
	next, _ := q.Fail(it.ID, "x")
	if d := next.Sub(clk.Now()); d > DefaultBackoffMin {
		t.Fatalf("backoff not reset: %s", d)
	}
	mustVerify(t, q)
}

func TestLeaseExpiryAndRenew(t *testing.T) {
	clk := newClock()
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), &Options{Now: clk.Now, LeaseTime: time.Minute})
	it, _, _ := q.Enqueue(capN(1))
	mustLease(t, q, "w1")
	if due, ok := q.NextDue(); !ok || !due.Equal(clk.Now().Add(time.Minute)) {
		t.Fatalf("NextDue must include the lease expiry: %v %v", due, ok)
	}
	clk.Add(50 * time.Second)
	if err := q.Renew(it.ID); err != nil {
		t.Fatal(err)
	}
	clk.Add(50 * time.Second)
	if _, ok, _ := q.Lease("w2"); ok {
		t.Fatal("renewed lease was taken")
	}
	clk.Add(11 * time.Second)
	got, ok, _ := q.Lease("w2")
	if !ok || got.ID != it.ID || got.Worker != "w2" || got.Attempts != 2 {
		t.Fatalf("expired lease not re-leased: %+v %v", got, ok)
	}
	mustVerify(t, q)
}

func TestParkVanishedRetryNow(t *testing.T) {
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), nil)
	a, _, _ := q.Enqueue(capN(1))
	b, _, _ := q.Enqueue(capN(2))
	c, _, _ := q.Enqueue(capN(3))
	if err := q.Park(a.ID, "550 permission denied"); err != nil {
		t.Fatal(err)
	}
	if err := q.Park(b.ID, "553 bad name"); err != nil {
		t.Fatal(err)
	}
	if err := q.Vanished(c.ID); err != nil {
		t.Fatal(err)
	}
	st, _ := q.Get(c.ID)
	if st.State != Parked || !st.Vanished {
		t.Fatalf("vanished: %+v", st)
	}
	if _, ok, _ := q.Lease("w"); ok {
		t.Fatal("parked item leased")
	}
	if err := q.RetryNow(c.ID); !errors.Is(err, ErrState) {
		t.Fatalf("vanished must not be retried: %v", err)
	}
	if err := q.RetryNow(a.ID); err != nil {
		t.Fatal(err)
	}
	if st, _ := q.Get(a.ID); st.State != Pending || st.Reason != "" {
		t.Fatalf("after RetryNow: %+v", st)
	}
	if err := q.RetryNow(""); err != nil {
		t.Fatal(err)
	}
	cnt, _ := q.Counts()
	if cnt.Pending != 2 || cnt.Parked != 1 {
		t.Fatalf("counts: %+v", cnt)
	}
	// The vanished file is back: enqueue revives it.
	it, added, _ := q.Enqueue(capN(3))
	if !added || it.State != Pending || it.ID != c.ID {
		t.Fatalf("re-enqueue of vanished: %+v %v", it, added)
	}
	if err := q.RetryNow("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	mustVerify(t, q)
}

func TestDoneNeverGoesBack(t *testing.T) {
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), nil)
	a, _, _ := q.Enqueue(capN(1))
	mustLease(t, q, "w")
	if err := q.Ack(a.ID, "/up/IMG_00001.JPG", "ab12"); err != nil {
		t.Fatal(err)
	}
	st, _ := q.Get(a.ID)
	if st.State != Done || st.Remote != "/up/IMG_00001.JPG" || st.Hash != "ab12" || st.DoneAt.IsZero() || st.Capture.Size != capN(1).Size {
		t.Fatalf("done: %+v", st)
	}
	if err := q.Ack(a.ID, "/other", "cd"); err != nil {
		t.Fatal("second ack must be a no-op")
	}
	if _, err := q.Fail(a.ID, "late"); !errors.Is(err, ErrState) {
		t.Fatalf("fail on done: %v", err)
	}
	if err := q.Park(a.ID, "late"); !errors.Is(err, ErrState) {
		t.Fatalf("park on done: %v", err)
	}
	if err := q.Vanished(a.ID); !errors.Is(err, ErrState) {
		t.Fatalf("vanished on done: %v", err)
	}
	if err := q.RetryNow(a.ID); !errors.Is(err, ErrState) {
		t.Fatalf("retry on done: %v", err)
	}
	if err := q.Renew(a.ID); !errors.Is(err, ErrState) {
		t.Fatalf("renew on done: %v", err)
	}
	if err := q.Release(a.ID); err != nil {
		t.Fatalf("release of a done item must be a no-op: %v", err)
	}
	if err := q.ResetBackoff(); err != nil {
		t.Fatal(err)
	}
	if _, added, _ := q.Enqueue(capN(1)); added {
		t.Fatal("done capture enqueued again")
	}
	if st, _ := q.Get(a.ID); st.State != Done || st.Remote != "/up/IMG_00001.JPG" {
		t.Fatalf("done changed: %+v", st)
	}
	mustVerify(t, q)
}

// TestFirstLease: only the very first lease of an item is marked first; a
// released lease (shutdown mid-upload) and a crashed run's lease count too,
// across a reopen: an upload of the item may have begun.
func TestFirstLease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := openT(t, path, nil)
	mustEnqueue(t, q, capN(1))
	mustEnqueue(t, q, capN(2))
	a, _, _ := q.Lease("w")
	if !a.FirstLease {
		t.Fatalf("first lease not marked: %+v", a)
	}
	if err := q.Release(a.ID); err != nil {
		t.Fatal(err)
	}
	if again, _, _ := q.Lease("w"); again.ID != a.ID || again.FirstLease {
		t.Fatalf("lease after Release marked first (or another item): %+v", again)
	}
	b, _, _ := q.Lease("w")
	if b.ID == a.ID || !b.FirstLease {
		t.Fatalf("second item's first lease: %+v", b)
	}
	q.Close()
	q = openT(t, path, nil)
	for range 2 {
		it, ok, _ := q.Lease("w")
		if !ok || it.FirstLease {
			t.Fatalf("lease after reopen marked first: %+v", it)
		}
	}
	if got, _ := q.Get(a.ID); got.FirstLease {
		t.Fatal("Get must not mark FirstLease")
	}
	mustVerify(t, q)
}

func TestReleaseAndDrop(t *testing.T) {
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), nil)
	a, _, _ := q.Enqueue(capN(1))
	<-q.Wake()
	mustLease(t, q, "w")
	if err := q.Release(a.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-q.Wake():
	default:
		t.Fatal("Release must signal Wake")
	}
	st, _ := q.Get(a.ID)
	if st.State != Pending || st.Attempts != 0 || st.Worker != "" {
		t.Fatalf("released: %+v", st)
	}
	if err := q.Drop(a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Get(a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("dropped item: %v", err)
	}
	if err := q.Drop(a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("drop twice: %v", err)
	}
	if c, _ := q.Counts(); c != (Counts{}) {
		t.Fatalf("counts: %+v", c)
	}
	mustVerify(t, q)
}

func TestWakeAndNextDue(t *testing.T) {
	clk := newClock()
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), &Options{Now: clk.Now})
	select {
	case <-q.Wake():
		t.Fatal("empty queue signalled")
	default:
	}
	if _, ok := q.NextDue(); ok {
		t.Fatal("NextDue on empty queue")
	}
	a, _, _ := q.Enqueue(capN(1))
	mustEnqueue(t, q, capN(2)) // second signal coalesces (capacity 1)
	<-q.Wake()
	select {
	case <-q.Wake():
		t.Fatal("Wake must coalesce")
	default:
	}
	if _, added, err := q.Enqueue(capN(1)); added || err != nil { // no-op: no signal
		t.Fatalf("enqueue of a known capture: added %v, %v", added, err)
	}
	select {
	case <-q.Wake():
		t.Fatal("no-op enqueue signalled")
	default:
	}
	mustLease(t, q, "w")
	mustFail(t, q, a.ID, "x")
	<-q.Wake()
	if _, ok := q.NextDue(); !ok {
		t.Fatal("NextDue missing")
	}
}

func TestListCountsAndStates(t *testing.T) {
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), nil)
	for i := 0; i < 5; i++ {
		mustEnqueue(t, q, capN(i))
	}
	a, _, _ := q.Lease("w")
	b, _, _ := q.Lease("w")
	c, _, _ := q.Lease("w")
	d, _, _ := q.Lease("w")
	if err := q.Ack(a.ID, "/r/a", "h"); err != nil {
		t.Fatal(err)
	}
	mustFail(t, q, b.ID, "x")
	if err := q.Park(c.ID, "y"); err != nil {
		t.Fatal(err)
	}
	cnt, err := q.Counts()
	if err != nil || cnt != (Counts{Pending: 1, InFlight: 1, Retry: 1, Done: 1, Parked: 1}) {
		t.Fatalf("counts %+v %v", cnt, err)
	}
	all, _ := q.List()
	if len(all) != 5 || all[0].ID != d.ID || all[4].ID != a.ID {
		t.Fatalf("List(): %d items", len(all))
	}
	some, _ := q.List(Retry, Parked)
	if len(some) != 2 || some[0].ID != b.ID || some[1].ID != c.ID {
		t.Fatalf("List(Retry, Parked): %+v", some)
	}
	if _, err := q.List("bogus"); err == nil {
		t.Fatal("unknown state accepted")
	}
	mustVerify(t, q)
}

// TestHistoryKeptWhileOnCard: done items are never pruned while a scan
// finds their file, however many; once absent, they go by age and count.
func TestHistoryKeptWhileOnCard(t *testing.T) {
	clk := newClock()
	dbPath := filepath.Join(t.TempDir(), "q.db")
	opts := &Options{Now: clk.Now, HistoryMaxCount: 3, HistoryMaxAge: time.Hour}
	q := openT(t, dbPath, opts)
	var ids []string
	var listing []FileInfo
	for i := 0; i < 8; i++ {
		c := capN(i)
		it, _, _ := q.Enqueue(c)
		mustLease(t, q, "w")
		if err := q.Ack(it.ID, "/r", "h"); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, it.ID)
		listing = append(listing, FileInfo{Name: filepath.Base(c.Rel), Size: c.Size, ModTime: c.ModTime})
	}
	noFP := func(string) ([]byte, error) { t.Error("fingerprint read although every hint matches"); return nil, nil }
	if unknown, err := q.ScanDir("100CAM", listing, noFP); err != nil || len(unknown) != 0 {
		t.Fatalf("scan of the full card: %v %v", unknown, err)
	}
	if c, _ := q.Counts(); c.Done != 8 {
		t.Fatalf("8 shots on the card, bound 3: %d kept", c.Done)
	}
	// Shots 0-5 deleted from the card at 10-minute steps: 3 stay as history
	// by count, then age drops those absent for over an hour.
	for i := 0; i < 6; i++ {
		clk.Add(10 * time.Minute)
		if _, err := q.ScanDir("100CAM", listing[i+1:], noFP); err != nil {
			t.Fatal(err)
		}
		other := capN(100 + i) // in another folder; its Ack prunes
		other.Rel = strings.Replace(other.Rel, "100CAM", "101CAM", 1)
		it, _, _ := q.Enqueue(other)
		mustLease(t, q, "w")
		if err := q.Ack(it.ID, "/r", "h"); err != nil {
			t.Fatal(err)
		}
	}
	absentKept := 0
	for _, id := range ids[:6] {
		if _, err := q.Get(id); err == nil {
			absentKept++
		}
	}
	if absentKept != 3 {
		t.Fatalf("absent history kept %d, bound 3", absentKept)
	}
	for _, id := range ids[6:] {
		if _, err := q.Get(id); err != nil {
			t.Fatalf("shot on the card pruned: %v", err)
		}
	}
	clk.Add(2 * time.Hour)
	q.Close()
	q = openT(t, dbPath, opts)
	for i, id := range ids {
		_, err := q.Get(id)
		if gone := errors.Is(err, ErrNotFound); gone != (i < 6) {
			t.Fatalf("after 2 h: shot %d gone=%v", i, gone)
		}
	}
	mustVerify(t, q)
}

func TestConcurrentWorkersAckEachOnce(t *testing.T) {
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), nil)
	n := 60
	if testing.Short() {
		n = 30
	}
	var acked sync.Map
	var dup atomic.Int32
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			if _, _, err := q.Enqueue(capN(i)); err != nil {
				t.Error(err)
			}
		}
	}()
	var total atomic.Int32
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for total.Load() < int32(n) {
				it, ok, err := q.Lease(fmt.Sprint("w", w))
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					time.Sleep(time.Millisecond) // a worker's idle poll: nothing leasable yet
					continue
				}
				if _, loaded := acked.LoadOrStore(it.ID, true); loaded {
					dup.Add(1)
				}
				if err := q.Ack(it.ID, "/r/"+it.Capture.Rel, "h"); err != nil {
					t.Error(err)
				}
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	if dup.Load() != 0 {
		t.Fatalf("%d items leased twice", dup.Load())
	}
	if c, _ := q.Counts(); c.Done != n {
		t.Fatalf("counts %+v", c)
	}
	mustVerify(t, q)
}

func TestClosedQueueErrors(t *testing.T) {
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), nil)
	q.Close()
	if _, _, err := q.Enqueue(capN(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("enqueue on closed: %v", err)
	}
}

func lastTxID(t testing.TB, q *Queue) int {
	t.Helper()
	var id int
	if err := q.db.View(func(tx *bboltTx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestEnqueueBatchAndNoWriteForKnown(t *testing.T) {
	q := openT(t, filepath.Join(t.TempDir(), "q.db"), nil)
	var cs []Capture
	for i := 0; i < 50; i++ {
		cs = append(cs, capN(i))
	}
	cs = append(cs, capN(3)) // a duplicate inside the batch
	before := lastTxID(t, q)
	items, added, err := q.EnqueueBatch(cs)
	if err != nil {
		t.Fatal(err)
	}
	if got := lastTxID(t, q) - before; got != 1 {
		t.Fatalf("batch took %d write transactions, want 1", got)
	}
	if !added[0] || added[50] || items[50].ID != items[3].ID {
		t.Fatalf("duplicate in batch: %v %v", added[50], items[50].ID)
	}
	if c, _ := q.Counts(); c.Pending != 50 {
		t.Fatalf("counts %+v", c)
	}
	// A rescan of known captures writes nothing.
	before = lastTxID(t, q)
	for _, c := range cs {
		if _, added, err := q.Enqueue(c); err != nil || added {
			t.Fatal(added, err)
		}
	}
	if _, _, err := q.EnqueueBatch(cs); err != nil {
		t.Fatal(err)
	}
	if got := lastTxID(t, q) - before; got != 0 {
		t.Fatalf("rescan of known captures wrote %d transactions", got)
	}
	// Leasing on an idle queue writes nothing either.
	q2 := openT(t, filepath.Join(t.TempDir(), "q2.db"), nil)
	before = lastTxID(t, q2)
	for i := 0; i < 10; i++ {
		if _, ok, err := q2.Lease("w"); ok || err != nil {
			t.Fatalf("lease on an idle queue: %v %v", ok, err)
		}
	}
	if got := lastTxID(t, q2) - before; got != 0 {
		t.Fatalf("idle Lease wrote %d transactions", got)
	}
	// All or none: a batch that cannot be written leaves nothing.
	q3 := openT(t, filepath.Join(t.TempDir(), "q3.db"), &Options{MaxFileSize: 128 << 10})
	var big []Capture
	for i := 0; i < 400; i++ {
		c := capN(1000 + i)
		c.Path += strings.Repeat("/deep", 100)
		big = append(big, c)
	}
	if _, _, err := q3.EnqueueBatch(big); !errors.Is(err, ErrFull) {
		t.Fatalf("want ErrFull, got %v", err)
	}
	if c, _ := q3.Counts(); c != (Counts{}) {
		t.Fatalf("failed batch left items: %+v", c)
	}
	mustVerify(t, q3)
}
