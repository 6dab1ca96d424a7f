package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/camftpd/camftpd/queue"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// TestOrphanTempRemoved: an upload cut mid-way leaves its temporary file
// on the server; the capture is then deleted from the card. When the
// worker finds it gone, the temporary file is recorded in the queue and
// deleted from the server; a server that refuses the DELE (421) keeps it
// recorded across a restart, and the next start deletes it. Without the
// fix the .part file stays on the server.
func TestOrphanTempRemoved(t *testing.T) {
	e := newEnv(t)
	e.retryMin, e.retryMax = "1m", "2m" // the test says when to retry
	cfg := e.writeConfig("100ms", 1)
	d := New(cfg, testLogger(t))
	events, unsub := d.Subscribe()
	defer unsub()
	cancel, done := runDaemon(t, d)
	srv := e.server()
	srv.SetFaults(ftpstest.Faults{CutAfterBytes: 64 << 10, CutEvery: true})
	local := filepath.Join(e.media, "100TEST", "DSC00001.JPG")
	writeCapture(t, local, 1<<20, 1)
	id := waitEvent(t, events, "retry").ID
	temps, _ := filepath.Glob(filepath.Join(e.root, "100TEST", "*.part"))
	if len(temps) != 1 {
		t.Fatalf("temporary files on the server after the cut upload: %v, want 1", temps)
	}
	srv.SetFaults(ftpstest.Faults{Replies: map[string]string{"DELE": "421 busy, try later"}})
	if err := os.Remove(local); err != nil {
		t.Fatal(err)
	}
	if err := d.Queue().RetryNow(id); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, "vanished")
	waitFor(t, 10*time.Second, "a DELE refused", func() bool {
		return slices.ContainsFunc(srv.Commands(), func(c string) bool { return len(c) > 5 && c[:5] == "DELE " })
	})
	cancel()
	done <- <-done // stopped; the value stays for runDaemon's cleanup
	q, err := queue.Open(filepath.Join(e.state, "queue.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	orphans, err := q.Orphans("test", 10)
	q.Close()
	if err != nil || !slices.Contains(orphans, "100TEST/"+filepath.Base(temps[0])) {
		t.Fatalf("orphans recorded after the refused DELE and a stop: %v, %v; want %s among them", orphans, err, temps[0])
	}
	if _, err := os.Stat(temps[0]); err != nil {
		t.Fatalf("the refused DELE removed the temporary file: %v", err)
	}
	srv.SetFaults(ftpstest.Faults{})
	d2 := New(cfg, testLogger(t))
	runDaemon(t, d2)
	waitFor(t, 10*time.Second, "the temporary file deleted from the server", func() bool {
		_, err := os.Stat(temps[0])
		return err != nil
	})
	waitFor(t, 10*time.Second, "the orphan list emptied", func() bool {
		o, err := d2.Queue().Orphans("test", 10)
		return err == nil && len(o) == 0
	})
	if left, _ := filepath.Glob(filepath.Join(e.root, "100TEST", "*")); len(left) != 0 {
		t.Fatalf("files left on the server: %v", left)
	}
}

// waitEvent returns the next event of type typ.
func waitEvent(t *testing.T, events <-chan Event, typ string) Event {
	t.Helper()
	timeout := time.After(within(30 * time.Second))
	for {
		select {
		case ev := <-events:
			if ev.Type == typ {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event within 30 s", typ)
		}
	}
}
