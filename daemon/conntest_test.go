package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// TestCheckCLIWalk: camftpd check walks every step: a wrong password
// fails at the login step (exit 2; it passed before, the check stopped
// after the handshake); -server all tests every server and exits with the
// worst result (the second server, a proxy with no backend, accepts and
// closes: a failed greeting); an unknown server name is refused.
func TestCheckCLIWalk(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.password = "wrong"
	dead := newProxy(t, "")
	t.Cleanup(dead.close)
	e.srvExtra = e.serverSlot("down", dead.port())
	e.writeConfig("1s", 1)
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), append([]string{"check", "-config", e.cfgPath}, args...), &out, &errb)
		t.Logf("check %v (exit %d):\n%s%s", args, code, out.String(), errb.String())
		return code, out.String(), errb.String()
	}
	code, out, _ := run()
	for _, want := range []string{"  login        fail    login: server refused the login", "check user name and password",
		"  mkd          skipped not run: the login step failed", "result: FAIL at the login step"} {
		if !strings.Contains(out, want) {
			t.Errorf("wrong password: output lacks %q", want)
		}
	}
	if code != 2 {
		t.Errorf("wrong password: exit %d, want 2", code)
	}
	code, out, _ = run("-server", "all")
	if code != 2 || !strings.Contains(out, `server "test"`) || !strings.Contains(out, `server "down"`) ||
		!strings.Contains(out, "  greeting     fail    connect 127.0.0.1:") || strings.Count(out, "result: FAIL") != 2 {
		t.Errorf("-server all: exit %d, want both servers tested, both failing", code)
	}
	code, _, errs := run("-server", "nosuch")
	if code != 2 || !strings.Contains(errs, `no [[server]] named "nosuch"`) {
		t.Errorf("-server nosuch: exit %d, %q", code, errs)
	}
}

// readCheck reads a POST /check answer: its events, in order.
func readCheck(t *testing.T, body io.Reader, first chan<- struct{}) []Event {
	t.Helper()
	var evs []Event
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Errorf("POST /check line %q: %v", sc.Text(), err)
			continue
		}
		if len(evs) == 0 && first != nil {
			close(first)
		}
		evs = append(evs, e)
	}
	return evs
}

// TestPostCheck: POST /check over the status socket runs the connection
// test against the real (in-process) server and streams one event per
// step, then the summaries; the events reach GET /events too. A second
// POST /check meanwhile is refused with 409, and an upload during the
// test goes through (the test has a connection of its own).
func TestPostCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.writeConfig("200ms", 1)
	d, _, _ := startDaemon(t, cfg, testLogger(t))
	stream := streamEvents(t, e.sock)
	cl := socketClient(e.sock)
	defer cl.CloseIdleConnections()

	code, b := postCheck(t, cl, "?server=nosuch")
	if code != http.StatusBadRequest || !strings.Contains(string(b), "nosuch") {
		t.Fatalf("unknown server: %d %q", code, b)
	}

	// A slow server: the test takes about 30 replies of 60 ms.
	e.server().SetFaults(ftpstest.Faults{Delay: 60 * time.Millisecond})
	resp, err := cl.Post("http://camftpd/check", "", nil) //nolint:bodyclose // closed by the defer below; bodyclose does not follow the reading goroutine
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make(chan struct{})
	got := make(chan []Event, 1)
	go func() { got <- readCheck(t, resp.Body, first) }()
	select {
	case <-first:
	case <-time.After(within(10 * time.Second)):
		t.Fatal("no event from POST /check")
	}
	cl2 := socketClient(e.sock)
	defer cl2.CloseIdleConnections()
	if code, b := postCheck(t, cl2, ""); code != http.StatusConflict {
		t.Errorf("second POST /check during the first: %d %q, want 409", code, b)
	}
	writeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), 100<<10, 1)

	var evs []Event
	select {
	case evs = <-got:
	case <-time.After(within(60 * time.Second)):
		t.Fatal("POST /check did not end")
	}
	var steps []string
	for _, ev := range evs {
		t.Logf("%s %s %s %s %s %s", ev.Type, ev.Server, ev.Step, ev.Result, ev.Detail, ev.Fix)
		if ev.Type == "check" {
			steps = append(steps, ev.Step)
			if ev.Server != "test" || ev.Result == "fail" {
				t.Errorf("step event %+v", ev)
			}
		}
	}
	if !slices.Equal(steps, transfer.TestSteps()) {
		t.Errorf("steps %v, want %v", steps, transfer.TestSteps())
	}
	n := len(evs)
	want := "pass"
	if tlspolicy.ChaChaFirst() { // the Go server follows this device's TLS 1.3 order: ChaCha20, a warning
		want = "warn"
	}
	if n < 2 || evs[n-2].Type != "check-done" || evs[n-2].Server != "test" || evs[n-1].Type != "check-done" || evs[n-1].Server != "" ||
		evs[n-1].Result != want {
		t.Errorf("summaries %+v", evs[max(0, n-2):])
	}
	waitFor(t, 20*time.Second, "the upload during the test", func() bool { return counts(t, d.Queue()).Done == 1 })
	verifyArrived(t, e.media, e.root)
	waitFor(t, 5*time.Second, "the test's events on GET /events", func() bool { return stream.types()["check"] == len(steps) })

	// The next one runs.
	e.server().SetFaults(ftpstest.Faults{})
	code, b = postCheck(t, cl2, "?server=all")
	evs = readCheck(t, bytes.NewReader(b), nil)
	if code != http.StatusOK || len(evs) != len(steps)+2 {
		t.Fatalf("second test: %d, %d events", code, len(evs))
	}
}

// postCheck sends POST /check+query and returns the status and the body.
func postCheck(t *testing.T, cl *http.Client, query string) (int, []byte) {
	t.Helper()
	resp, err := cl.Post("http://camftpd/check"+query, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}
