package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/camftpd/camftpd/queue"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// ledDir makes a sysfs-like LED folder (trigger, brightness,
// max_brightness) and returns it with a reader of its trigger and
// brightness ("heartbeat/255": the error state).
func ledDir(t *testing.T) (string, func() string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "led")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, v := range map[string]string{"trigger": "none", "brightness": "0", "max_brightness": "255"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, func() string {
		tr, _ := os.ReadFile(filepath.Join(dir, "trigger"))
		br, _ := os.ReadFile(filepath.Join(dir, "brightness"))
		return string(tr) + "/" + string(br)
	}
}

const (
	ledError = "heartbeat/" // brightness left as it was
	ledIdle  = "none/255"
)

// TestStateParkedAndRetrying: a parked shot makes the state "attention"
// (not idle) and the LED an error until camftpd queue retry sends it; a
// shot waiting for its retry says when and why, with the LED an error,
// until it is sent; then idle, LED on.
func TestStateParkedAndRetrying(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.retryMin, e.retryMax = "1h", "2h" // a retry waits until asked for
	cfg := e.writeConfig("200ms", 1)
	led, ledState := ledDir(t)
	cfg.Profile.LED = led
	e.server().SetFaults(ftpstest.Faults{Replies: map[string]string{"STOR": "553 Could not create file (ftpstest)."}})
	d, _, _ := startDaemon(t, cfg, testLogger(t))
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), 50<<10, 1)
	waitFor(t, 10*time.Second, "parked", func() bool { return counts(t, d.Queue()).Parked == 1 })
	waitFor(t, 5*time.Second, "attention state", func() bool { return strings.HasPrefix(d.Status().State, "attention: 1 shot parked") })
	st := d.Status()
	for _, want := range []string{"100TEST/DSC00001.JPG", "553", "camftpd queue retry"} {
		if !strings.Contains(st.State, want) || !strings.Contains(st.Attention, want) {
			t.Fatalf("state %q / attention %q: no %q", st.State, st.Attention, want)
		}
	}
	// The LED follows the state event the park publishes, a moment after
	// the queue (which the status reads) says parked.
	waitFor(t, 5*time.Second, "LED error while a shot is parked", func() bool { return strings.HasPrefix(ledState(), ledError) })

	// Parked to retrying: a transient reply.
	e.server().SetFaults(ftpstest.Faults{Replies: map[string]string{"STOR": "451 Local error in processing (ftpstest)."}})
	if code := Main(context.Background(), []string{"queue", "retry", "-socket", e.sock}, &lockedBuffer{}, &lockedBuffer{}); code != 0 {
		t.Fatalf("queue retry: exit %d", code)
	}
	waitFor(t, 10*time.Second, "retrying", func() bool { return counts(t, d.Queue()).Retry == 1 })
	waitFor(t, 5*time.Second, "waiting for retry", func() bool {
		return strings.HasPrefix(d.Status().State, "waiting for retry: 1 shot, next attempt at ")
	})
	st = d.Status()
	if !strings.Contains(st.State, "451") || st.NextRetry.IsZero() || st.Attention != "" {
		t.Fatalf("state %q, next retry %v, attention %q", st.State, st.NextRetry, st.Attention)
	}
	waitFor(t, 5*time.Second, "LED error while a shot waits for its retry", func() bool { return strings.HasPrefix(ledState(), ledError) })

	e.server().SetFaults(ftpstest.Faults{})
	items, err := d.Queue().List(queue.Retry)
	if err != nil || len(items) != 1 {
		t.Fatalf("retry items: %v %v", items, err)
	}
	post(t, e.sock, "/retry?id="+items[0].ID)
	waitFor(t, 10*time.Second, "done", func() bool { return counts(t, d.Queue()).Done == 1 })
	waitFor(t, 5*time.Second, "idle", func() bool { return d.Status().State == "idle" })
	waitFor(t, 5*time.Second, "LED back on", func() bool { return ledState() == ledIdle })
	verifyArrived(t, e.media, e.root)
}

// TestPROTRefusedBlocks: a server that refuses PROT P (536, or 534 or 504
// on PROT alone) blocks uploads with a message naming PROT P and the fix;
// no shot is parked nor counted as an attempt. POST /resume while it
// still refuses blocks again; once the server accepts PROT P, camftpd
// queue retry lifts the block without a reload and the shot arrives
// exactly once.
func TestPROTRefusedBlocks(t *testing.T) {
	t.Parallel()
	for _, reply := range []string{"536 PROT P not supported (ftpstest)", "534 PROT P refused by policy (ftpstest)", "504 PROT P not implemented (ftpstest)"} {
		t.Run(reply[:3], func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			cfg := e.writeConfig("200ms", 1)
			led, ledState := ledDir(t)
			cfg.Profile.LED = led
			e.server().SetFaults(ftpstest.Faults{Replies: map[string]string{"PROT": reply}})
			d, _, _ := startDaemon(t, cfg, testLogger(t))
			writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), 80<<10, 2)
			blockedPROT := func() bool {
				s := d.Status().State
				return strings.HasPrefix(s, "blocked: tls-policy") && strings.Contains(s, "refuses PROT P")
			}
			waitFor(t, 10*time.Second, "blocked on PROT P", blockedPROT)
			st := d.Status().State
			for _, want := range []string{"force_local_data_ssl", "TLSRequired on", reply[:3], "camftpd queue retry"} {
				if !strings.Contains(st, want) {
					t.Fatalf("state %q: no %q", st, want)
				}
			}
			time.Sleep(within(300 * time.Millisecond)) // a quiet window under test: nothing parked, no attempt counted
			assertWaitsUnattempted(t, d.Queue())
			if got := ledState(); !strings.HasPrefix(got, ledError) {
				t.Fatalf("LED %q while blocked", got)
			}
			if n := e.server().Stats().Stors; n != 0 {
				t.Fatalf("%d STOR while PROT P is refused", n)
			}

			// Resumed while the server still refuses: blocked again.
			prots := protCount(e.server())
			post(t, e.sock, "/resume")
			waitFor(t, 10*time.Second, "another PROT P", func() bool { return protCount(e.server()) > prots })
			waitFor(t, 10*time.Second, "blocked again", blockedPROT)
			assertWaitsUnattempted(t, d.Queue())

			e.server().SetFaults(ftpstest.Faults{})
			if code := Main(context.Background(), []string{"queue", "retry", "-socket", e.sock}, &lockedBuffer{}, &lockedBuffer{}); code != 0 {
				t.Fatalf("queue retry: exit %d", code)
			}
			waitFor(t, 10*time.Second, "done", func() bool { return counts(t, d.Queue()).Done == 1 })
			waitFor(t, 5*time.Second, "idle", func() bool { return d.Status().State == "idle" })
			waitFor(t, 5*time.Second, "LED back on", func() bool { return ledState() == ledIdle })
			if n := e.server().Stats().StorsTo["/100TEST/DSC00001.JPG"]; n != 1 {
				t.Fatalf("%d STORs delivered to the shot, want exactly 1", n)
			}
			verifyArrived(t, e.media, e.root)
		})
	}
}

// assertWaitsUnattempted checks the one shot waits pending, not parked
// nor retrying, with no attempt counted.
func assertWaitsUnattempted(t *testing.T, q *queue.Queue) {
	t.Helper()
	if c := counts(t, q); c.Pending != 1 || c.Parked+c.Retry+c.Done != 0 {
		t.Fatalf("while blocked the shot should wait pending: %+v", c)
	}
	items, err := q.List(queue.Pending)
	if err != nil || len(items) != 1 || items[0].Attempts != 0 {
		t.Fatalf("pending items %+v (%v): want one with 0 attempts", items, err)
	}
}

func protCount(s *ftpstest.Server) int {
	n := 0
	for _, c := range s.Commands() {
		if strings.HasPrefix(strings.ToUpper(c), "PROT") {
			n++
		}
	}
	return n
}

// TestAuthBlockLiftedByResume: a wrong password blocks; once the server
// takes that password, POST /resume lifts the block without a reload and
// the shot arrives exactly once.
func TestAuthBlockLiftedByResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.password = "new-password"
	cfg := e.writeConfig("200ms", 1)
	d, _, _ := startDaemon(t, cfg, testLogger(t))
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), 60<<10, 3)
	waitFor(t, 10*time.Second, "blocked", func() bool { return strings.HasPrefix(d.Status().State, "blocked: auth") })
	time.Sleep(within(300 * time.Millisecond)) // a quiet window under test: the block holds without a resume
	if s := d.Status().State; !strings.HasPrefix(s, "blocked: auth") || !strings.Contains(s, "camftpd queue retry") {
		t.Fatalf("state %q", s)
	}
	assertWaitsUnattempted(t, d.Queue())

	// The server side is fixed: its account now has the new password.
	e.stopServer()
	srv, err := ftpstest.Start(ftpstest.Options{Root: e.root, CA: e.ca, Cert: e.cert, Password: "new-password"})
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.srv = srv
	e.mu.Unlock()
	e.proxy.setBackend(srv.Addr)
	post(t, e.sock, "/resume")
	waitFor(t, 10*time.Second, "done", func() bool { return counts(t, d.Queue()).Done == 1 })
	if n := srv.Stats().StorsTo["/100TEST/DSC00001.JPG"]; n != 1 {
		t.Fatalf("%d STORs delivered to the shot, want exactly 1", n)
	}
	if s := d.Status().State; s != "idle" {
		t.Fatalf("state %q after the upload", s)
	}
	verifyArrived(t, e.media, e.root)
}

// hostileNames are capture names a card can hold: CR, LF, an escape
// sequence, a tab, invalid UTF-8 and a bidirectional override.
var hostileNames = []string{"A\rB.JPG", "C\nD.JPG", "E\x1b[31mF\x1b]0;owned\x07.JPG", "G\tH.JPG", "I\xffJ.JPG", "K\u202eGPJ.EXE.JPG"}

// TestCLIEscapesControlCharacters feeds hostile names through every
// command that prints names or server text (status, queue list, queue
// add, queue retry and drop, live and on the queue file): no output has
// a raw control byte or invalid UTF-8, and queue list has one line per
// item.
func TestCLIEscapesControlCharacters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.writeConfig("200ms", 1)
	// A server reply with control bytes in it too (ftpstest sends the
	// reply line as given).
	e.server().SetFaults(ftpstest.Faults{Replies: map[string]string{"STOR": "553 no \x1b[2Jway\x07 (ftpstest)"}})
	d, cancel, done := startDaemon(t, cfg, testLogger(t))
	for i, n := range hostileNames {
		writeCapture(t, filepath.Join(e.media, "100TEST", n), 10<<10, uint64(10+i))
	}
	waitFor(t, 15*time.Second, "every name settled", func() bool {
		c := counts(t, d.Queue())
		return c.Parked == len(hostileNames)
	})
	run := func(args ...string) (string, string) {
		var out, errb lockedBuffer
		Main(context.Background(), args, &out, &errb)
		for _, s := range []string{out.String(), errb.String()} {
			assertPrintable(t, strings.Join(args, " "), s)
		}
		return out.String(), errb.String()
	}
	out, _ := run("status", "-socket", e.sock)
	if n := strings.Count(out, "\nerror:"); n != len(hostileNames) {
		t.Fatalf("status: %d error lines, want %d:\n%s", n, len(hostileNames), out)
	}
	if !strings.Contains(out, `E\x1b[31mF`) || !strings.Contains(out, `C\nD.JPG`) || !strings.Contains(out, `K\u202eGPJ`) || !strings.Contains(out, "553 no") {
		t.Fatalf("status does not show the escaped names and reply:\n%s", out)
	}
	checkList := func(out string) {
		t.Helper()
		if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(lines) != 1+len(hostileNames) {
			t.Fatalf("queue list: %d lines, want a header and %d items:\n%s", len(lines), len(hostileNames), out)
		}
	}
	out, _ = run("queue", "list", "-socket", e.sock)
	checkList(out)
	out, _ = run(append([]string{"queue", "add", "-socket", e.sock}, paths(hostileNames)...)...)
	if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(lines) != len(hostileNames) {
		t.Fatalf("queue add: %d lines for %d names:\n%s", len(lines), len(hostileNames), out)
	}
	run("queue", "retry", "-socket", e.sock, "\x1b[2Jno\nsuch")
	run("queue", "drop", "-socket", e.sock, "\x1b[2Jno\rsuch")

	// On the queue file, without a daemon.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil // for the cleanup
	out, _ = run("queue", "list", "-config", e.cfgPath)
	checkList(out)
	run(append([]string{"queue", "add", "-config", e.cfgPath}, paths(hostileNames)...)...)
	run("queue", "retry", "-config", e.cfgPath, "\x1b[2Jno\nsuch")
	run("queue", "drop", "-config", e.cfgPath, "\x1b]0;x\x07")
}

func paths(names []string) []string {
	p := make([]string, len(names))
	for i, n := range names {
		p[i] = "100TEST/" + n
	}
	return p
}

// assertPrintable fails when s holds a control byte other than LF,
// invalid UTF-8 or a bidirectional override.
func assertPrintable(t *testing.T, what, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("%s: output is not valid UTF-8: %q", what, s)
	}
	for _, r := range s {
		if r != '\n' && unsafeRune(r) {
			t.Fatalf("%s: raw %U in the output: %q", what, r, s)
		}
	}
}
