package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/camftpd/camftpd/internal/testtime"
)

type bboltTx = bolt.Tx

// The structural check at Open runs this test binary as a child: under
// qemu-user, through the emulator (childArgv).
func init() { checkArgv = childArgv }

// filledQueue creates a queue file with n items, half of them done, and
// closes it. It writes in a few transactions to stay fast under qemu.
func filledQueue(t *testing.T, path string, n int) {
	t.Helper()
	q, err := Open(path, &Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var cs []Capture
	for i := 0; i < n; i++ {
		cs = append(cs, capN(i))
	}
	items, _, err := q.EnqueueBatch(cs)
	if err != nil {
		t.Fatal(err)
	}
	err = q.update("fill", "", func(tx *txn) error {
		for _, it := range items[:n/2] {
			r, err := tx.get(it.ID)
			if err != nil {
				return err
			}
			if err := tx.move(r, func(r *rec) {
				r.State, r.DoneAt = Done, time.Now()
				r.Remote, r.Hash = "/remote/"+r.Capture.Rel+strings.Repeat("x", 200), strings.Repeat("ab", 32)
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, q)
	q.Close()
}

// crashed removes the clean-close marker of the queue file at path: its
// next Open is one after a crash or a power cut, which leave no marker.
func crashed(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path + cleanSuffix); err != nil {
		t.Fatalf("no clean-close marker after Close: %v", err)
	}
}

// openRecovered opens a damaged file and checks the recovery contract.
func openRecovered(t *testing.T, path string) *Queue {
	t.Helper()
	var logbuf bytes.Buffer
	q, err := Open(path, &Options{Logger: slog.New(slog.NewTextHandler(&logbuf, nil))})
	if err != nil {
		t.Fatalf("Open of a damaged file must recover, got: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	if !q.Recovered() {
		t.Fatal("Recovered() = false")
	}
	line := logbuf.String()
	if !strings.Contains(line, "level=ERROR") || !strings.Contains(line, "moved aside") || !strings.Contains(line, ".corrupt-") {
		t.Fatalf("log line not clear: %q", line)
	}
	t.Logf("log: %s", strings.TrimSpace(line))
	aside, _ := filepath.Glob(path + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("moved-aside files: %v", aside)
	}
	// The fresh queue works.
	if c, _ := q.Counts(); c != (Counts{}) {
		t.Fatalf("fresh queue not empty: %+v", c)
	}
	if _, added, err := q.Enqueue(capN(1)); err != nil || !added {
		t.Fatalf("enqueue on recovered queue: %v", err)
	}
	mustVerify(t, q)
	return q
}

func TestCorruptGarbageFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	garbage := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	openRecovered(t, path)
}

// usedSize is the part of the file bbolt's meta claims (high water mark).
func usedSize(t *testing.T, path string) int64 {
	q := openT(t, path, nil)
	var n int64
	if err := q.db.View(func(tx *bboltTx) error { n = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	q.Close()
	return n
}

func TestCorruptTruncatedFile(t *testing.T) {
	for _, keep := range []int64{-1, 6000} {
		path := filepath.Join(t.TempDir(), "q.db")
		filledQueue(t, path, 400)
		used := usedSize(t, path)
		fi, _ := os.Stat(path)
		// Cutting only the unused tail (the file grows ahead of use) is harmless.
		if err := os.Truncate(path, used); err != nil {
			t.Fatal(err)
		}
		q := openT(t, path, nil)
		if c, _ := q.Counts(); q.Recovered() || c.Pending+c.Done != 400 {
			t.Fatalf("cutting the unused tail lost data: %+v recovered=%v", c, q.Recovered())
		}
		q.Close()
		cut := used / 2
		if keep > 0 {
			cut = keep // shorter than two pages: bbolt's own size check
		}
		if err := os.Truncate(path, cut); err != nil {
			t.Fatal(err)
		}
		t.Logf("file %d bytes, used %d, truncated to %d", fi.Size(), used, cut)
		openRecovered(t, path)
	}
}

func TestCorruptPagesWithValidMeta(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	filledQueue(t, path, 400)
	crashed(t, path)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	// Keep the two meta pages, scribble over the rest.
	junk := bytes.Repeat([]byte{0xA5, 0x17, 0x00, 0xFF}, int(fi.Size()-8192)/4)
	if _, err := f.WriteAt(junk, 8192); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	openRecovered(t, path)
}

func TestCorruptRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := openT(t, path, nil)
	it := mustEnqueue(t, q, capN(1))
	// A record that bbolt stores fine but that does not decode.
	if err := q.db.Update(func(tx *bboltTx) error {
		return tx.Bucket(bucketItems).Put([]byte(it.ID), []byte{9, 9, 9})
	}); err != nil {
		t.Fatal(err)
	}
	q.Close()
	openRecovered(t, path)
}

func TestEmptyFileIsRecovered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	openRecovered(t, path)
}

func TestIndexesRebuiltWhenInconsistent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := openT(t, path, nil)
	for i := 0; i < 5; i++ {
		mustEnqueue(t, q, capN(i))
	}
	a := mustLease(t, q, "w")
	if err := q.Ack(a.ID, "/r", "h"); err != nil {
		t.Fatal(err)
	}
	if err := q.db.Update(func(tx *bboltTx) error {
		return tx.DeleteBucket(indexBucket[Pending])
	}); err != nil {
		t.Fatal(err)
	}
	if err := q.db.Update(func(tx *bboltTx) error {
		_, err := tx.CreateBucket(indexBucket[Pending])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := q.Verify(); err == nil {
		t.Fatal("Verify missed an emptied index")
	}
	q.Close()
	q = openT(t, path, nil)
	if q.Recovered() {
		t.Fatal("an index problem must be repaired, not recovered")
	}
	mustVerify(t, q)
	if c, _ := q.Counts(); c.Pending != 4 || c.Done != 1 {
		t.Fatalf("counts after rebuild: %+v", c)
	}
}

func TestSecondProcessGetsLockError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	openT(t, path, nil)
	start := time.Now()
	// flock is per open file description, so a second Open in this process
	// contends like a second process would.
	_, err := Open(path, &Options{LockTimeout: 300 * time.Millisecond, Logger: quietLogger()})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("want ErrLocked, got %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("lock wait took %s", el)
	}
	if !strings.Contains(err.Error(), "another camftpd") {
		t.Fatalf("unclear error: %v", err)
	}
	t.Logf("error: %v", err)
	if _, err := os.Stat(path); err != nil {
		t.Fatal("locked file must not be moved aside")
	}
}

// TestDiskFullTmpfs mounts a small tmpfs (root) and fills it: writes fail
// with ErrFull and a clear line, and every item keeps its previous state.
func TestDiskFullTmpfs(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v: this test needs root (CAP_SYS_ADMIN) to mount a small tmpfs", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount the test's tmpfs %s: %v", dir, err)
		}
	})
	path := filepath.Join(dir, "q.db")
	q := openT(t, path, nil)
	for i := 0; i < 10; i++ {
		mustEnqueue(t, q, capN(i))
	}
	leased, _, _ := q.Lease("w")
	// Fill the rest of the filesystem.
	filler := filepath.Join(dir, "filler")
	f, _ := os.Create(filler)
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	before, _ := q.List()
	// Write until the file needs a page it cannot get.
	var ferr error
	var failed Capture
	for i := 100; i < 5000 && ferr == nil; i++ {
		c := capN(i)
		c.Path += strings.Repeat("/long", 200)
		_, _, ferr = q.Enqueue(c)
		failed = c
	}
	if !errors.Is(ferr, ErrFull) {
		t.Fatalf("want ErrFull, got %v", ferr)
	}
	t.Logf("error: %v", ferr)
	if !strings.Contains(ferr.Error(), "no space left") || !strings.Contains(ferr.Error(), "free space") {
		t.Fatalf("unclear error: %v", ferr)
	}
	if _, ok, _ := q.Lookup(failed); ok {
		t.Fatal("failed enqueue left an item")
	}
	// A big Ack cannot be written either: the item stays in flight.
	err := q.Ack(leased.ID, strings.Repeat("/remote", 20000), "h")
	if !errors.Is(err, ErrFull) {
		t.Fatalf("ack on full disk: %v", err)
	}
	if it, _ := q.Get(leased.ID); it.State != InFlight {
		t.Fatalf("item moved on a failed write: %s", it.State)
	}
	for _, it := range before {
		got, err := q.Get(it.ID)
		if err != nil || got.State != it.State {
			t.Fatalf("item %s: %v %v, was %s", it.ID, got.State, err, it.State)
		}
	}
	mustVerify(t, q)
	// Space comes back: the same operations work.
	os.Remove(filler)
	if err := q.Ack(leased.ID, strings.Repeat("/remote", 20000), "h"); err != nil {
		t.Fatalf("ack after space came back: %v", err)
	}
	if _, added, err := q.Enqueue(failed); err != nil || !added {
		t.Fatalf("enqueue after space came back: %v", err)
	}
	q.Close()
	q = openT(t, path, nil)
	mustVerify(t, q)
	if it, _ := q.Get(leased.ID); it.State != Done {
		t.Fatalf("after reopen: %s", it.State)
	}
}

// TestMaxFileSize: the file bound gives the same clear ErrFull.
func TestMaxFileSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := openT(t, path, &Options{MaxFileSize: 256 << 10})
	var err error
	n := 0
	for i := 0; i < 20000 && err == nil; i++ {
		c := capN(i)
		c.Path += strings.Repeat("/deep", 100)
		_, _, err = q.Enqueue(c)
		n++
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("want ErrFull, got %v", err)
	}
	t.Logf("after %d enqueues: %v", n, err)
	if c, _ := q.Counts(); c.Pending != n-1 {
		t.Fatalf("counts %+v, want %d pending", c, n-1)
	}
	mustVerify(t, q)
}

// TestCorruptRandomPageDamage damages random bytes of a real file's pages
// (pointers, counts, flags, data): Open must either find the file sound or
// recover it, never crash, hang or hand out an inconsistent queue.
func TestCorruptRandomPageDamage(t *testing.T) {
	// Each case runs the checking child (this test binary again): under
	// -race that costs about 0.85 s a case, so make test's -race run takes
	// 40 cases; the full 150 run in make test-arm64 (arm64 and armv7, no
	// -race: 27 s under emulation).
	cases := 150
	if testing.Short() || testtime.Race() {
		cases = 40
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	filledQueue(t, good, 1000)
	used := usedSize(t, good)
	data, _ := os.ReadFile(good)
	data = data[:used]
	r := rand.New(rand.NewPCG(3, 4))
	rec, history := 0, 0
	for n := 0; n < cases; n++ {
		b := append([]byte(nil), data...)
		pages := len(b) / 4096
		for j := 0; j < 1+r.IntN(4); j++ {
			pg := 2 + r.IntN(pages-2)
			off := pg*4096 + r.IntN(4096-8)
			switch r.IntN(3) {
			case 0:
				binary.LittleEndian.PutUint64(b[off:], r.Uint64())
			case 1:
				binary.LittleEndian.PutUint64(b[off:], uint64(r.IntN(1<<20)))
			default:
				b[off] ^= 0xff
			}
		}
		path := filepath.Join(t.TempDir(), "q.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		q, err := Open(path, &Options{Logger: quietLogger()})
		if err != nil {
			t.Fatalf("case %d: %v", n, err)
		}
		if q.Recovered() {
			rec++
		}
		it, _, err := q.Enqueue(capN(99999))
		if err != nil {
			t.Fatalf("case %d: %v", n, err)
		}
		if l, ok, err := q.Lease("w"); err != nil || !ok {
			t.Fatalf("case %d: lease: %v %v", n, ok, err)
		} else if err := q.Ack(l.ID, "/r", "h"); err != nil {
			t.Fatalf("case %d: ack: %v", n, err)
		}
		if _, err := q.Get(it.ID); err != nil {
			t.Fatalf("case %d: %v", n, err)
		}
		// Open vouches for the work (active items, indexes, counts); damage
		// in the history of done items is found when a record is read.
		if err := q.db.View(verifyActiveTx); err != nil {
			t.Fatalf("case %d: %v", n, err)
		}
		if q.Verify() != nil {
			history++
		}
		q.Close()
	}
	t.Logf("%d damaged files: %d recovered, %d found sound (damage in free space or repaired), of which %d with damage left in done history",
		cases, rec, cases-rec, history)
}

// TestBboltCheckReportsCopiedPage pins what Open relies on in bbolt: a page
// of a real queue file overwritten with another in-use page (a torn or
// misdirected write) is reported by Tx.Check as an error, under its own
// recover, and Open moves the file aside. The damage is made through
// bbolt's exported Tx.Page and Info (page types and size), not its format.
func TestBboltCheckReportsCopiedPage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	filledQueue(t, path, 400)
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	var leaves []int
	ps := db.Info().PageSize
	err = db.View(func(tx *bolt.Tx) error {
		for id := 2; ; id++ {
			p, err := tx.Page(id)
			if err != nil || p == nil {
				return err
			}
			if p.Type == "leaf" {
				leaves = append(leaves, id)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if len(leaves) < 2 {
		t.Fatalf("want two leaf pages, found %v", leaves)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	crashed(t, path)
	from, to := leaves[len(leaves)-1], leaves[0]
	copy(b[to*ps:(to+1)*ps], b[from*ps:(from+1)*ps])
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("bolt.Open of a file with a damaged leaf page: %v", err)
	}
	var found []error
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			found = append(found, err)
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(found) == 0 {
		t.Fatalf("bbolt's Tx.Check found nothing wrong with leaf page %d overwritten by page %d: Open can no longer rely on it", to, from)
	}
	t.Logf("Tx.Check: %v", found[0])
	openRecovered(t, path)
}

// TestCleanCloseMarker: a start after a clean Close skips bbolt's full
// check (the checking child does not run); a start after a crash (no
// marker) or with a file changed since the Close (its mtime moved) runs it.
func TestCleanCloseMarker(t *testing.T) {
	runs := 0
	argv := checkArgv
	checkArgv = func() ([]string, error) { runs++; return argv() }
	t.Cleanup(func() { checkArgv = argv })
	path := filepath.Join(t.TempDir(), "q.db")
	filledQueue(t, path, 50)
	reopen := func(what string, want int) {
		t.Helper()
		before := runs
		q := openT(t, path, nil)
		if _, err := os.Stat(path + cleanSuffix); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: the marker outlived Open: %v", what, err)
		}
		if c, _ := q.Counts(); q.Recovered() || c.Pending+c.Done != 50 {
			t.Fatalf("%s: %+v recovered=%v", what, c, q.Recovered())
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		if got := runs - before; got != want {
			t.Fatalf("%s: the full check ran %d times, want %d", what, got, want)
		}
	}
	reopen("after a clean Close", 0)
	crashed(t, path)
	reopen("after a crash", 1)
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	reopen("with the file changed since the Close", 1)
	reopen("after a clean Close again", 0)
}
