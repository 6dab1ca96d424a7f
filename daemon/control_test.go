package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camftpd/camftpd/board"
	"github.com/camftpd/camftpd/queue"
	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// eventLog reads GET /events from the socket.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) types() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[string]int{}
	for _, e := range l.events {
		m[e.Type]++
	}
	return m
}

func (l *eventLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

func streamEvents(t *testing.T, sock string) *eventLog {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://camftpd/events", nil)
	resp, err := socketClient(sock).Do(req) //nolint:bodyclose // l.read closes it; bodyclose does not follow the goroutine
	if err != nil {
		t.Fatal(err)
	}
	l := &eventLog{}
	read := make(chan struct{})
	t.Cleanup(func() { cancel(); <-read }) // the canceled request ends the reads
	go l.read(resp, read)
	return l
}

// read records the events of stream resp until it ends, closes it, then
// closes done.
func (l *eventLog) read(resp *http.Response, done chan<- struct{}) {
	defer close(done)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var e Event
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			l.mu.Lock()
			l.events = append(l.events, e)
			l.mu.Unlock()
		}
	}
}

func post(t *testing.T, sock, path string) {
	t.Helper()
	if _, err := socketDo(context.Background(), sock, http.MethodPost, path, nil); err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
}

// TestStatusSocketPauseVanishedAndCLI drives the status socket: events
// stream, pause/resume, a capture deleted before upload (recorded as
// vanished, not retried), and the status and queue subcommands.
func TestStatusSocketPauseVanishedAndCLI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.writeConfig("200ms", 1)
	d, _, _ := startDaemon(t, cfg, testLogger(t))
	events := streamEvents(t, e.sock)
	post(t, e.sock, "/pause")
	if st := d.Status(); st.State != "paused" || !st.Paused {
		t.Fatalf("after pause: %+v", st)
	}
	for i, n := range []string{"DSC00001.JPG", "DSC00002.ARW", "DSC00003.JPG"} {
		writeCapture(t, filepath.Join(e.media, "100TEST", n), 200<<10, uint64(i))
	}
	waitFor(t, 5*time.Second, "3 pending", func() bool { return counts(t, d.Queue()).Pending == 3 })
	time.Sleep(within(300 * time.Millisecond)) // a quiet window under test: nothing is uploaded while paused
	if c := counts(t, d.Queue()); c.Done != 0 {
		t.Fatalf("uploaded while paused: %+v", c)
	}
	os.Remove(filepath.Join(e.media, "100TEST", "DSC00002.ARW"))
	post(t, e.sock, "/resume")
	waitFor(t, 10*time.Second, "2 done, 1 vanished", func() bool {
		c := counts(t, d.Queue())
		return c.Done == 2 && c.Parked == 1
	})
	parked, _ := d.Queue().List(queue.Parked)
	if len(parked) != 1 || !parked[0].Vanished {
		t.Fatalf("want the deleted file parked as vanished: %+v", parked)
	}
	waitFor(t, 3*time.Second, "events", func() bool {
		ty := events.types()
		return ty["queued"] == 3 && ty["start"] == 2 && ty["done"] == 2 && ty["vanished"] == 1 && ty["progress"] >= 2 && ty["state"] >= 2
	})

	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"status", "-socket", e.sock}, &out, &errb); code != 0 {
		t.Fatalf("status: %d %s", code, errb.String())
	}
	t.Logf("camftpd status:\n%s", out.String())
	// The in-process server (Go) follows the client's TLS 1.3 order: a
	// device that offers ChaCha20 first (armv7) gets it, class non-NIST.
	class := "recommended"
	if tlspolicy.ChaChaFirst() {
		class = "non-NIST"
	}
	for _, want := range []string{"state:      idle", "2 done", "1 parked", "tls:        TLS 1.", "(" + class + ")", "DSC00002.ARW",
		"completion: lease (read leases granted on the captures in " + filepath.Join(e.media, "100TEST") + ")"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q", want)
		}
	}
	out.Reset()
	if code := Main(context.Background(), []string{"status", "-socket", e.sock, "-json"}, &out, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	var st Status
	if err := json.Unmarshal(out.Bytes(), &st); err != nil || st.TLS == nil || st.TLS.Class != class || st.Queue.Done != 2 ||
		st.Completion.Mode != "lease" {
		t.Fatalf("status json: %v %s", err, out.String())
	}
	if strings.Contains(out.String(), "secret") {
		t.Fatal("status shows the password")
	}
	out.Reset()
	if code := Main(context.Background(), []string{"queue", "list", "-socket", e.sock}, &out, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	if !strings.Contains(out.String(), "DSC00001.JPG") || !strings.Contains(out.String(), "parked") {
		t.Fatalf("queue list:\n%s", out.String())
	}
	// Retry of a vanished item is refused; drop forgets it.
	if code := Main(context.Background(), []string{"queue", "retry", "-socket", e.sock, parked[0].ID}, &out, &errb); code == 0 {
		t.Error("retrying a vanished item should fail")
	}
	if code := Main(context.Background(), []string{"queue", "drop", "-socket", e.sock, parked[0].ID}, &out, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	if c := counts(t, d.Queue()); c.Parked != 0 {
		t.Fatalf("after drop: %+v", c)
	}
}

// TestAuthErrorBlocksUntilReload: a wrong password stops uploads with
// "blocked: auth" (no retry storm, nothing parked); reloading a fixed
// config resumes.
func TestAuthErrorBlocksUntilReload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.password = "wrong-password"
	cfg := e.writeConfig("200ms", 1)
	var logBuf lockedBuffer
	d, _, _ := startDaemon(t, cfg, NewLogger(cfg, &logBuf))
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), 100<<10, 1)
	waitFor(t, 10*time.Second, "blocked", func() bool { return strings.HasPrefix(d.Status().State, "blocked: auth") })
	st := d.Status()
	t.Logf("state: %s", st.State)
	time.Sleep(within(500 * time.Millisecond)) // a quiet window under test: no retry storm, nothing parked while blocked
	if c := counts(t, d.Queue()); c.Pending != 1 || c.Parked+c.Retry+c.Done != 0 {
		t.Fatalf("while blocked the capture should wait pending: %+v", c)
	}
	e.password = ""
	d.Reload(e.writeConfig("200ms", 1))
	waitFor(t, 10*time.Second, "uploaded after reload", func() bool { return counts(t, d.Queue()).Done == 1 })
	if s := d.Status().State; strings.HasPrefix(s, "blocked") {
		t.Fatalf("still %s", s)
	}
	if strings.Contains(logBuf.String(), "wrong-password") || strings.Contains(logBuf.String(), "=secret") {
		t.Fatalf("a password is in the log:\n%s", logBuf.String())
	}
}

// TestMountAndLinkEvents: card removed pauses (and what is written then is
// found by the rescan at remount); link down forgets the link meter's
// measurement; link up retries at once instead of waiting out the backoff.
func TestMountAndLinkEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.retryMin, e.retryMax = "30s", "1m"
	cfg := e.writeConfig("200ms", 1)
	cfg.Profile.StorageMount, cfg.Profile.Interface = "/fake/card", "fake0"
	start0 := time.Now()
	mount := make(chan board.MountEvent, 4)
	link := make(chan board.LinkEvent, 4)
	d := New(cfg, testLogger(t))
	d.watchMount = func(context.Context, string) (<-chan board.MountEvent, error) { return mount, nil }
	d.watchLink = func(context.Context, string) (<-chan board.LinkEvent, error) { return link, nil }
	runDaemon(t, d)
	mount <- board.MountEvent{Path: "/fake/card", Mounted: true}
	link <- board.LinkEvent{Iface: "fake0", Up: true}
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), 50<<10, 1)
	waitFor(t, 10*time.Second, "first upload", func() bool { return counts(t, d.Queue()).Done == 1 })

	mount <- board.MountEvent{Path: "/fake/card", Mounted: false}
	waitFor(t, 5*time.Second, "paused", func() bool { return d.Status().State == "paused: media unmounted" })
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00002.JPG"), 50<<10, 2)
	time.Sleep(within(500 * time.Millisecond)) // a quiet window under test: nothing is queued while unmounted
	if c := counts(t, d.Queue()); c.Pending+c.Done != 1 {
		t.Fatalf("queued while unmounted: %+v", c)
	}
	mount <- board.MountEvent{Path: "/fake/card", Mounted: true}
	waitFor(t, 10*time.Second, "upload after remount", func() bool { return counts(t, d.Queue()).Done == 2 })

	// Server unreachable: the capture waits out a 15-30 s backoff...
	e.stopServer()
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00003.JPG"), 50<<10, 3)
	waitFor(t, 10*time.Second, "retry scheduled", func() bool { return counts(t, d.Queue()).Retry == 1 })
	e.startServer()
	// The link meter has measured 100 kB/s on this link...
	d.gate.mu.Lock()
	d.gate.meter.span(start0, start0.Add(time.Second), 100_000)
	d.gate.mu.Unlock()
	if r := d.Status().Power.LinkBps; r != 100_000 {
		t.Fatalf("link meter %.0f B/s, want the 100 kB/s span", r)
	}
	// ...link down: nothing is tried, not even a login for a new capture,
	// and the measurement is forgotten (the link that comes back may be
	// another network)...
	link <- board.LinkEvent{Iface: "fake0", Up: false}
	waitFor(t, 5*time.Second, "waiting for the link", func() bool { return d.Status().State == "waiting: network link down" })
	if r := d.Status().Power.LinkBps; r != 0 {
		t.Fatalf("link meter still says %.0f B/s after the link went down", r)
	}
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00004.JPG"), 50<<10, 4)
	waitFor(t, 5*time.Second, "queued while the link is down", func() bool { return counts(t, d.Queue()).Pending == 1 })
	time.Sleep(within(500 * time.Millisecond)) // a quiet window under test: no connection while the link is down
	if n := e.server().Stats().Connections; n != 0 {
		t.Fatalf("%d connections to the server while the link was down", n)
	}
	// ...and link up retries everything at once, backoff or not.
	start := time.Now()
	link <- board.LinkEvent{Iface: "fake0", Up: true}
	waitFor(t, 5*time.Second, "upload right after link up", func() bool { return counts(t, d.Queue()).Done == 4 })
	t.Logf("uploaded %v after link up (backoff was 15-30 s)", time.Since(start))
	verifyArrived(t, e.media, e.root)
}

// TestLinkDownMidUpload: link down stops a running upload at once (released,
// not failed: no backoff); link up resumes it from the server's temporary
// file with REST.
func TestLinkDownMidUpload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.srvExtra = "bandwidth_limit = \"1MB/s\"\n"
	cfg := e.writeConfig("200ms", 1)
	cfg.Profile.Interface = "fake0"
	link := make(chan board.LinkEvent, 4)
	d := New(cfg, testLogger(t))
	d.watchLink = func(context.Context, string) (<-chan board.LinkEvent, error) { return link, nil }
	runDaemon(t, d)
	link <- board.LinkEvent{Iface: "fake0", Up: true}
	const size = 3 << 20
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00005.JPG"), size, 5)
	waitFor(t, 10*time.Second, "1 MiB sent", func() bool {
		st := d.Status()
		return len(st.Uploads) > 0 && st.Uploads[0].Sent > 1<<20
	})
	link <- board.LinkEvent{Iface: "fake0", Up: false}
	waitFor(t, time.Second, "upload stopped at link down", func() bool { return len(d.Status().Uploads) == 0 })
	// The stopped upload's lease is released (pending), or, wrongly, the
	// capture is scheduled for a retry: wait for either, then judge.
	waitFor(t, 5*time.Second, "the stopped upload released or retried", func() bool {
		c := counts(t, d.Queue())
		return c.InFlight == 0 && c.Pending+c.Retry > 0
	})
	if c := counts(t, d.Queue()); c.Pending != 1 || c.Retry != 0 {
		t.Fatalf("after link down: %+v, want the capture pending (released), not retrying", c)
	}
	stors := e.server().Stats().Stors
	link <- board.LinkEvent{Iface: "fake0", Up: true}
	waitFor(t, 10*time.Second, "upload done after link up", func() bool { return counts(t, d.Queue()).Done == 1 })
	st := e.server().Stats()
	if st.Stors != stors+1 || st.BytesReceived > size+size/8 {
		t.Fatalf("after link up: %d STOR (want %d), %d bytes received for a %d-byte capture (want a resume, not a restart)",
			st.Stors, stors+1, st.BytesReceived, size)
	}
	verifyArrived(t, e.media, e.root)
	checkNoPartial(t, e.media, e.root)
}

// TestFailoverToNextServer: the active server refuses connections; after
// failover_after transient failures the next [[server]] takes over.
func TestFailoverToNextServer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dead := newProxy(t, "")
	t.Cleanup(dead.close)
	e.extra = "active = \"down\"\nfailover = true\nfailover_after = 2"
	e.srvExtra = e.serverSlot("down", dead.port())
	cfg := e.writeConfig("200ms", 1)
	d, _, _ := startDaemon(t, cfg, testLogger(t))
	if s := d.Status().Server; s != "down" {
		t.Fatalf("active server %q", s)
	}
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), 50<<10, 1)
	waitFor(t, 20*time.Second, "upload through the second server", func() bool { return counts(t, d.Queue()).Done == 1 })
	if s := d.Status().Server; s != "test" {
		t.Fatalf("active server after failover %q", s)
	}
	verifyArrived(t, e.media, e.root)
}

// TestCheckCommand runs `camftpd check` against the test server: every
// step passes (exit 0), with a recommended suite and a certificate well
// inside cert_warn_days (the warning is TestCheckCertExpiryWarns and
// transfer's TestConnTestCertificateExpiry); a bad config exits 2 with
// every error.
func TestCheckCommand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.writeConfig("1s", 1)
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"check", "-config", e.cfgPath}, &out, &errb)
	t.Logf("check (exit %d):\n%s%s", code, out.String(), errb.String())
	wantCode, result := 0, "\nresult: PASS\n"
	if tlspolicy.ChaChaFirst() { // the Go server follows this device's TLS 1.3 order: ChaCha20 (non-NIST), a warning
		wantCode, result = 1, "\nresult: WARN"
	}
	if code != wantCode || !strings.Contains(out.String(), "recommended") || !strings.Contains(out.String(), "  certificate  ok      verified") ||
		!strings.Contains(out.String(), "  dele         ok      deleted") || !strings.Contains(out.String(), result) {
		t.Fatalf("check: exit %d", code)
	}
	if want := "completion lease (not proven: no capture"; !strings.Contains(out.String(), want) {
		t.Fatalf("check with an empty card lacks %q", want)
	}
	shot := filepath.Join(e.media, "100TEST", "DSC00001.JPG")
	writeCapture(t, shot, 1000, 1)
	out.Reset()
	Main(context.Background(), []string{"check", "-config", e.cfgPath}, &out, &errb)
	if want := "completion lease (read leases granted on " + shot + ")"; !strings.Contains(out.String(), want) {
		t.Fatalf("check lacks %q:\n%s", want, out.String())
	}
	bad := filepath.Join(e.dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("workers = 0\nsettle = \"x\"\n[[server]]\nhost = \"h\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := Main(context.Background(), []string{"check", "-config", bad}, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "bad.toml:1: workers") || !strings.Contains(errb.String(), "bad.toml:2: settle") {
		t.Fatalf("bad config: exit %d\n%s", code, errb.String())
	}
}

// TestFailbackToPrimary: after a failover, the configured server is tried
// again every failback_after with a login; once it answers, the next
// capture goes to it.
func TestFailbackToPrimary(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	primary := newProxy(t, "") // down at first
	t.Cleanup(primary.close)
	e.extra = "active = \"primary\"\nfailover = true\nfailover_after = 2\nfailback_after = \"1s\""
	e.srvExtra = e.serverSlot("primary", primary.port())
	cfg := e.writeConfig("200ms", 1)
	var logBuf lockedBuffer // the failback's tries are seen in its log
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(&logBuf, tWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, _, _ := startDaemon(t, cfg, logger)
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), 50<<10, 1)
	waitFor(t, 20*time.Second, "upload through the failover server", func() bool { return counts(t, d.Queue()).Done == 1 })
	if s := d.Status().Server; s != "test" {
		t.Fatalf("active server after failover %q", s)
	}
	waitFor(t, 5*time.Second, "a failback try while the primary is still down", func() bool {
		return bytes.Contains(logBuf.Bytes(), []byte("staying on the failover server"))
	})
	if s := d.Status().Server; s != "test" {
		t.Fatalf("failed back to a server that is down: %q", s)
	}
	root2 := filepath.Join(t.TempDir(), "primary")
	if err := os.MkdirAll(root2, 0o755); err != nil {
		t.Fatal(err)
	}
	srv2, err := ftpstest.Start(ftpstest.Options{Root: root2, CA: e.ca, Cert: e.cert})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv2.Close() })
	primary.setBackend(srv2.Addr)
	waitFor(t, 5*time.Second, "back on the primary", func() bool { return d.Status().Server == "primary" })
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00002.JPG"), 50<<10, 2)
	waitFor(t, 10*time.Second, "second upload", func() bool { return counts(t, d.Queue()).Done == 2 })
	if _, err := os.Stat(filepath.Join(root2, "100TEST", "DSC00002.JPG")); err != nil {
		t.Fatalf("second capture not on the primary: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.root, "100TEST", "DSC00002.JPG")); err == nil {
		t.Fatal("second capture went to the failover server too")
	}
}
