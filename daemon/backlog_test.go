package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/queue"
)

// stopDaemon cancels a daemon started with startDaemon and waits for it.
func stopDaemon(t *testing.T, cancel context.CancelFunc, done chan error) {
	t.Helper()
	cancel()
	err := <-done
	done <- err // for runDaemon's cleanup
	if err != nil {
		t.Fatalf("daemon: %v", err)
	}
}

// shootOld writes a capture whose modification time is in 1970 (a camera
// whose clock was never set): a baseline by time would take it for old.
func shootOld(t *testing.T, p string, size int, seed uint64) {
	t.Helper()
	writeCapture(t, p, size, seed)
	old := time.Unix(1_000_000, 0)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
}

func onServer(t *testing.T, root string) map[string]bool {
	m := map[string]bool{}
	for _, n := range serverNames(t, root) {
		m[n] = true
	}
	return m
}

func stors(e *testEnv) int { return e.server().Stats().Stors }

func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return out.String() + errb.String(), code
}

// TestBacklogNewHoldsTheCard: with the default backlog = "new", the shots
// on the card at the first start are held and never STORed; a file still
// being written during that first scan is new and sent; a shot taken while
// the daemon runs is sent; after a stop, a shot taken meanwhile (with a
// 1970 clock) is sent at the next start and the backlog stays held.
func TestBacklogNewHoldsTheCard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var backlog []string
	for i := range 3 {
		rel := fmt.Sprintf("100CAM/OLD%05d.JPG", i)
		shootOld(t, filepath.Join(e.media, rel), 120<<10+i, uint64(100+i))
		backlog = append(backlog, rel)
	}
	// A shot being written when the daemon starts: half now, half later.
	writing := filepath.Join(e.media, "100CAM/DSC00001.JPG")
	f, err := os.Create(writing)
	if err != nil {
		t.Fatal(err)
	}
	half := bytes.Repeat([]byte("camftpd!"), 16<<10)
	if _, err := f.Write(half); err != nil {
		t.Fatal(err)
	}
	cfg := e.writeConfig("300ms", 2)
	if cfg.Backlog != "new" {
		t.Fatalf("default backlog %q, want new", cfg.Backlog)
	}
	d := New(cfg, testLogger(t))
	events, unsubscribe := d.Subscribe() // before the first scan
	defer unsubscribe()
	cancel, done := runDaemon(t, d)
	waitFor(t, 5*time.Second, "the first scan's baseline", func() bool { _, ok := d.Queue().Baseline(); return ok })
	if _, err := f.Write(half); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the shot being written sent", func() bool { return counts(t, d.Queue()).Done == 1 })
	writeCapture(t, filepath.Join(e.media, "100CAM/DSC00002.JPG"), 90<<10, 2)
	waitFor(t, 10*time.Second, "the new shot sent", func() bool { return counts(t, d.Queue()).Done == 2 })
	// A quiet window under test, not a wait: the held backlog must not be
	// sent in it (two settle windows).
	time.Sleep(within(400 * time.Millisecond))
	c := counts(t, d.Queue())
	if c.Held != 3 || c.Done != 2 || c.Pending+c.InFlight+c.Retry+c.Parked != 0 {
		t.Fatalf("queue %+v: want 3 held (the backlog), 2 done", c)
	}
	if n := stors(e); n != 2 {
		t.Fatalf("%d STORs, want 2: the backlog must not be sent", n)
	}
	srv := onServer(t, e.root)
	for _, rel := range backlog {
		if srv[rel] {
			t.Fatalf("backlog shot %s is on the server", rel)
		}
	}
	if st := d.Status(); st.Held["backlog"] != 3 {
		t.Fatalf("status held %v, want backlog: 3", st.Held)
	}
	out, _ := runCLI(t, "status", "-socket", e.sock)
	if !strings.Contains(out, "held:       3 backlog") {
		t.Fatalf("camftpd status does not show the held backlog:\n%s", out)
	}
	out, _ = runCLI(t, "queue", "list", "-socket", e.sock, "-state", "held")
	if strings.Count(out, "backlog") != 3 || !strings.Contains(out, "OLD00000.JPG") {
		t.Fatalf("queue list -state held:\n%s", out)
	}
	held := 0
	for len(events) > 0 {
		if ev := <-events; ev.Type == "held" && ev.Reason == HoldBacklog {
			held++
		}
	}
	if held != 3 {
		t.Fatalf("%d held events, want 3", held)
	}
	stopDaemon(t, cancel, done)

	// Taken while the daemon was stopped, with the camera clock at 1970.
	shootOld(t, filepath.Join(e.media, "100CAM/DSC00003.JPG"), 70<<10, 3)
	d, _, _ = startDaemon(t, cfg, testLogger(t))
	waitFor(t, 10*time.Second, "the shot taken while stopped sent", func() bool { return counts(t, d.Queue()).Done == 3 })
	time.Sleep(within(400 * time.Millisecond)) // a quiet window under test: the backlog stays held after a restart
	if c := counts(t, d.Queue()); c.Held != 3 || c.Done != 3 {
		t.Fatalf("after restart: %+v, want 3 held, 3 done", c)
	}
	if n := stors(e); n != 3 {
		t.Fatalf("%d STORs after restart, want 3", n)
	}
}

// TestBacklogAllSendsTheCard: backlog = "all" sends the shots on the card
// at the first start, and new ones.
func TestBacklogAllSendsTheCard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.extra = `backlog = "all"`
	for i := range 3 {
		shootOld(t, filepath.Join(e.media, fmt.Sprintf("100CAM/OLD%05d.JPG", i)), 100<<10+i, uint64(i))
	}
	d, _, _ := startDaemon(t, e.writeConfig("200ms", 2), testLogger(t))
	waitFor(t, 10*time.Second, "the card sent", func() bool { return counts(t, d.Queue()).Done == 3 })
	writeCapture(t, filepath.Join(e.media, "100CAM/DSC00001.JPG"), 50<<10, 9)
	waitFor(t, 10*time.Second, "the new shot sent", func() bool { return counts(t, d.Queue()).Done == 4 })
	if c := counts(t, d.Queue()); c.Held != 0 {
		t.Fatalf("queue %+v: nothing is held under backlog = all", c)
	}
	if _, ok := d.Queue().Baseline(); !ok {
		t.Fatal("no baseline recorded")
	}
	verifyArrived(t, e.media, e.root)
}

// TestBacklogConfigValidated: bad values are reported with their line
// and a fix, like every key.
func TestBacklogConfigValidated(t *testing.T) {
	_, err := ParseConfig("x.toml", "media_dir = \"/m\"\nstate_dir = \"/s\"\nbacklog = \"old\"\nonly_protected = \"yes\"\n[[server]]\nhost = \"h\"\nuser = \"u\"\n")
	var ces ConfigErrors
	if !errors.As(err, &ces) || len(ces) != 2 {
		t.Fatalf("want 2 errors, got %v", err)
	}
	if ces[0].Line != 3 || ces[0].Key != "backlog" || !strings.Contains(ces[0].Fix, `"new", "all"`) {
		t.Errorf("backlog error: %+v", ces[0])
	}
	if ces[1].Line != 4 || ces[1].Key != "only_protected" {
		t.Errorf("only_protected error: %+v", ces[1])
	}
}

// heldCard starts a daemon on a card whose shots are all held (the
// backlog of a first start).
func heldCard(t *testing.T, e *testEnv, rels ...string) (*Daemon, context.CancelFunc, chan error) {
	t.Helper()
	for i, rel := range rels {
		shootOld(t, filepath.Join(e.media, rel), 80<<10+i*1000, uint64(i+1))
	}
	d, cancel, done := startDaemon(t, e.writeConfig("200ms", 2), testLogger(t))
	waitFor(t, 5*time.Second, "the first scan's baseline", func() bool { _, ok := d.Queue().Baseline(); return ok })
	if c := counts(t, d.Queue()); c.Held != len(rels) {
		t.Fatalf("queue %+v: want %d held", c, len(rels))
	}
	return d, cancel, done
}

// TestQueueAddCLI: camftpd queue add against the running daemon's socket
// sends held shots by path and by pattern, says "already delivered" for
// a shot sent before (no second STOR), reports a pattern that matches
// nothing and a file that is not a capture as errors (exit 1), with
// control characters escaped; with the daemon stopped it adds a shot to
// the queue file.
func TestQueueAddCLI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d, cancel, done := heldCard(t, e, "100CAM/DSC00001.JPG", "100CAM/DSC00002.JPG", "100CAM/DSC00003.JPG",
		"100CAM/DSC00001.ARW", "101CAM/DSC00004.JPG")
	out, code := runCLI(t, "queue", "add", "-socket", e.sock, "100CAM/DSC00001.JPG")
	if code != 0 || !strings.Contains(out, "queued             100CAM/DSC00001.JPG (was held: backlog)") {
		t.Fatalf("queue add by path: exit %d\n%s", code, out)
	}
	waitFor(t, 10*time.Second, "the added shot sent", func() bool { return counts(t, d.Queue()).Done == 1 })
	out, code = runCLI(t, "queue", "add", "-socket", e.sock, "100CAM/*.JPG")
	if code != 0 || strings.Count(out, "queued ") != 2 || !strings.Contains(out, "already delivered  100CAM/DSC00001.JPG") ||
		strings.Contains(out, "ARW") {
		t.Fatalf("queue add by pattern: exit %d\n%s", code, out)
	}
	waitFor(t, 10*time.Second, "the pattern's shots sent", func() bool { return counts(t, d.Queue()).Done == 3 })
	time.Sleep(within(300 * time.Millisecond)) // a quiet window under test: the delivered shot is not sent again
	if n := stors(e); n != 3 {
		t.Fatalf("%d STORs, want 3 (the delivered shot is not sent again)", n)
	}
	if c := counts(t, d.Queue()); c.Held != 2 {
		t.Fatalf("queue %+v: the ARW and 101CAM stay held", c)
	}
	if err := os.WriteFile(filepath.Join(e.media, "100CAM", "notes\x1b[2J.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = runCLI(t, "queue", "add", "-socket", e.sock, "100CAM/*.MOV", "100CAM/notes\x1b[2J.txt")
	if code != 1 || !strings.Contains(out, "error: 100CAM/*.MOV: no capture matches") ||
		!strings.Contains(out, `error: 100CAM/notes\x1b[2J.txt: not a capture`) || strings.Contains(out, "\x1b") {
		t.Fatalf("errors: exit %d\n%q", code, out)
	}
	stopDaemon(t, cancel, done)

	// No daemon: the CLI opens the queue file.
	out, code = runCLI(t, "queue", "add", "-config", e.cfgPath, filepath.Join(e.media, "101CAM/DSC00004.JPG"))
	if code != 0 || !strings.Contains(out, "queued             101CAM/DSC00004.JPG (was held: backlog)") {
		t.Fatalf("queue add without a daemon: exit %d\n%s", code, out)
	}
	q, err := queue.Open(filepath.Join(e.state, "queue.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := q.Counts()
	q.Close()
	if c.Pending != 1 || c.Held != 1 {
		t.Fatalf("queue file after the add: %+v, want 1 pending, 1 held", c)
	}
	d, _, _ = startDaemon(t, e.writeConfig("200ms", 2), testLogger(t))
	waitFor(t, 10*time.Second, "the shot added offline sent", func() bool { return counts(t, d.Queue()).Done == 4 })
}

// TestPostAdd: POST /add (the camera's "transfer selected images") takes
// a JSON list of absolute and relative paths and answers one JSON line per
// file: a held shot and a shot the daemon never queued (the RAW of a
// RAW+JPEG pair under raw_jpeg = "jpeg") are queued and sent; a pattern
// that matches nothing and a path outside the media folder are errors.
func TestPostAdd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.extra = `raw_jpeg = "jpeg"`
	d, _, _ := heldCard(t, e, "100CAM/DSC00001.JPG", "100CAM/DSC00002.JPG")
	shootOld(t, filepath.Join(e.media, "100CAM/DSC00001.ARW"), 150<<10, 77)
	events := streamEvents(t, e.sock)
	// A quiet window under test (two settle windows): the watcher must not
	// queue the RAW of the pair in it (raw_jpeg); no event marks a skip.
	time.Sleep(within(500 * time.Millisecond))
	if c := counts(t, d.Queue()); c.Held+c.Pending != 2 {
		t.Fatalf("queue %+v: the RAW of the pair is not queued by the watcher", c)
	}
	body, _ := json.Marshal(AddRequest{Paths: []string{
		filepath.Join(e.media, "100CAM/DSC00002.JPG"), "100CAM/DSC00001.ARW", "200CAM/*.JPG", "../state/queue.db"}})
	resp, err := socketClient(e.sock).Post("http://camftpd/add", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res []AddResult
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var r AddResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		res = append(res, r)
	}
	if resp.StatusCode != http.StatusOK || len(res) != 4 {
		t.Fatalf("status %d, %d lines: %+v", resp.StatusCode, len(res), res)
	}
	want := []struct{ file, result, detail string }{
		{"100CAM/DSC00002.JPG", AddQueued, "was held: backlog"},
		{"100CAM/DSC00001.ARW", AddQueued, "not known before"},
		{"", AddError, "no capture matches"},
		{"", AddError, "outside the media directory"},
	}
	for i, w := range want {
		if r := res[i]; r.File != w.file || r.Result != w.result || !strings.Contains(r.Detail, w.detail) {
			t.Errorf("line %d: %+v, want %+v", i, r, w)
		}
	}
	waitFor(t, 10*time.Second, "both sent", func() bool { return counts(t, d.Queue()).Done == 2 })
	srv := onServer(t, e.root)
	if !srv["100CAM/DSC00002.JPG"] || !srv["100CAM/DSC00001.ARW"] || srv["100CAM/DSC00001.JPG"] {
		t.Fatalf("server holds %v", serverNames(t, e.root))
	}
	waitFor(t, 3*time.Second, "queued events", func() bool { return events.types()["queued"] == 2 })
	resp2, err := socketClient(e.sock).Post("http://camftpd/add", "application/json", strings.NewReader(`{"paths": []}`))
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusBadRequest {
		t.Fatalf("empty add: status %d, want 400", resp2.StatusCode)
	}
}

// TestOnlyProtected: with only_protected = true, a protected shot of the
// backlog is sent and an unprotected one held ("not protected"); a new
// unprotected shot is held and not STORed until chmod a-w (the FAT
// read-only attribute) sends it within two seconds; a shot protected as
// soon as it is written is sent; a held shot protected while the daemon
// was stopped is sent at the next start.
func TestOnlyProtected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.extra = "only_protected = true"
	protect := func(rel string) {
		if err := os.Chmod(filepath.Join(e.media, rel), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	shootOld(t, filepath.Join(e.media, "100CAM/PRO00001.JPG"), 90<<10, 1)
	protect("100CAM/PRO00001.JPG")
	shootOld(t, filepath.Join(e.media, "100CAM/OLD00001.JPG"), 91<<10, 2)
	cfg := e.writeConfig("200ms", 2)
	d, cancel, done := startDaemon(t, cfg, testLogger(t))
	events := streamEvents(t, e.sock)
	waitFor(t, 10*time.Second, "the protected backlog shot sent", func() bool { return counts(t, d.Queue()).Done == 1 })
	writeCapture(t, filepath.Join(e.media, "100CAM/DSC00001.JPG"), 80<<10, 3)
	waitFor(t, 5*time.Second, "the new unprotected shot held", func() bool { return counts(t, d.Queue()).Held == 2 })
	time.Sleep(within(400 * time.Millisecond)) // a quiet window under test: the unprotected shot is not STORed
	if n := stors(e); n != 1 {
		t.Fatalf("%d STORs, want 1 (only the protected shot)", n)
	}
	if st := d.Status(); st.Held[HoldNotProtected] != 2 {
		t.Fatalf("status held %v, want not protected: 2", st.Held)
	}
	start := time.Now()
	protect("100CAM/DSC00001.JPG")
	waitFor(t, 2*time.Second, "the shot sent once protected", func() bool { return counts(t, d.Queue()).Done == 2 })
	t.Logf("chmod a-w to upload done: %v", time.Since(start))
	writeCapture(t, filepath.Join(e.media, "100CAM/DSC00002.JPG"), 70<<10, 4)
	protect("100CAM/DSC00002.JPG")
	waitFor(t, 5*time.Second, "the shot protected at once sent", func() bool { return counts(t, d.Queue()).Done == 3 })
	waitFor(t, 3*time.Second, "queued event for the protected shot", func() bool {
		for _, ev := range events.all() {
			if ev.Type == "queued" && ev.File == "100CAM/DSC00001.JPG" && ev.Reason == "protected" {
				return true
			}
		}
		return false
	})
	stopDaemon(t, cancel, done)

	protect("100CAM/OLD00001.JPG") // while stopped
	d, _, _ = startDaemon(t, cfg, testLogger(t))
	waitFor(t, 10*time.Second, "the shot protected while stopped sent", func() bool { return counts(t, d.Queue()).Done == 4 })
	if c := counts(t, d.Queue()); c.Held != 0 || stors(e) != 4 {
		t.Fatalf("queue %+v, %d STORs: want all 4 sent once", c, stors(e))
	}
	verifyArrived(t, e.media, e.root)
}

// TestFirstScanBaselineCases: a first scan cut short (its marker next to
// the queue file) goes on holding the backlog; a queue that only holds
// what queue add put there before the first start is a first start too;
// a queue with a delivered history and no baseline (schema 1, used before
// baselines existed) takes its baseline and holds nothing.
func TestFirstScanBaselineCases(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		marker, done bool
		wantHeld     bool
	}{
		{"interrupted first scan (shots delivered meanwhile)", true, true, true},
		{"queue add before the first start", false, false, true},
		{"delivered history, no baseline", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			media := t.TempDir()
			for i, rel := range []string{"100CAM/A.JPG", "100CAM/B.JPG"} {
				shootOld(t, filepath.Join(media, rel), 10<<10+i, uint64(i))
			}
			q, err := queue.Open(filepath.Join(t.TempDir(), "q.db"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			p := filepath.Join(media, "100CAM/A.JPG")
			st, _ := os.Lstat(p)
			c, err := captureOf(p, "100CAM/A.JPG", st)
			if err != nil {
				t.Fatal(err)
			}
			it, _, err := q.Enqueue(c)
			if err != nil {
				t.Fatal(err)
			}
			if tc.done {
				if _, _, err := q.Lease("w"); err != nil {
					t.Fatal(err)
				}
				if err := q.Ack(it.ID, "100CAM/A.JPG", ""); err != nil {
					t.Fatal(err)
				}
			}
			marker := filepath.Join(filepath.Dir(q.Path()), firstScanMarker)
			if tc.marker {
				if err := writeSynced(marker); err != nil {
					t.Fatal(err)
				}
			}
			startWatcher(t, media, q, nil)
			var b queue.Item
			for _, x := range listAll(t, q) {
				if x.Capture.Rel == "100CAM/B.JPG" {
					b = x
				}
			}
			if held := b.State == queue.Held && b.Reason == HoldBacklog; held != tc.wantHeld {
				t.Fatalf("B is %s (%s); want held: %v", b.State, b.Reason, tc.wantHeld)
			}
			if _, ok := q.Baseline(); !ok {
				t.Fatal("no baseline after the start scan")
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the first-scan marker is still there")
			}
		})
	}
}

func listAll(t *testing.T, q *queue.Queue) []queue.Item {
	items, err := q.List()
	if err != nil {
		t.Fatal(err)
	}
	return items
}
