package transfer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// TestHashVariants: the server's hash is used whichever way it offers it:
// HASH (SHA-256), XSHA256, XMD5, XCRC; with none, size only.
func TestHashVariants(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	cases := []struct {
		hide []string
		verb string
		want string
	}{
		{nil, "HASH", "size+sha256"},
		{[]string{"HASH"}, "XSHA256", "size+sha256"},
		{[]string{"HASH", "XSHA"}, "XMD5", "size+md5"},
		{[]string{"HASH", "XSHA", "MD5"}, "XCRC", "size+crc32"},
		{[]string{"HASH", "XSHA", "MD5", "XCRC"}, "", "size"},
	}
	for i, c := range cases {
		tg.inproc.SetFaults(ftpstest.Faults{HideFeatures: c.hide})
		tg.inproc.ResetStats()
		p, data := localFile(t, 70000+i)
		remote := "hv/" + strings.ToLower(c.want) + ".bin"
		res, err := uploadOnce(t, tg.config(t, false), Job{LocalPath: p, Remote: remote})
		if err != nil {
			t.Fatal(err)
		}
		if res.Verified != c.want {
			t.Errorf("hidden %v: verified %q, want %q", c.hide, res.Verified, c.want)
		}
		used := false
		for _, cmd := range tg.inproc.Commands() {
			used = used || c.verb != "" && strings.HasPrefix(cmd, c.verb+" ")
		}
		if c.verb != "" && !used {
			t.Errorf("hidden %v: %s not used: %q", c.hide, c.verb, tg.inproc.Commands())
		}
		wantFile(t, tg, remote, data)
	}
}

// TestHashMismatch: a server hash that differs is an error (never a
// success); the temporary file is deleted and nothing is renamed.
func TestHashMismatch(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	tg.inproc.SetFaults(ftpstest.Faults{Replies: map[string]string{"HASH": "213 SHA-256 0-10 " + strings.Repeat("0", 64) + " x"}})
	p, data := localFile(t, 10000)
	_, err := uploadOnce(t, tg.config(t, false), Job{LocalPath: p, Remote: "hm/x.jpg", TempID: "hm"})
	if ClassOf(err) != Transient || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("%v (%v)", err, ClassOf(err))
	}
	if _, err := os.Stat(tg.path("hm/x.jpg")); err == nil {
		t.Fatal("renamed after a hash mismatch")
	}
	noTemp(t, tg, "hm")
	tg.inproc.SetFaults(ftpstest.Faults{})
	if _, err := uploadOnce(t, tg.config(t, false), Job{LocalPath: p, Remote: "hm/x.jpg", TempID: "hm"}); err != nil {
		t.Fatal(err)
	}
	wantFile(t, tg, "hm/x.jpg", data)
}

// TestNoRest: when the server refuses REST (or does not offer REST STREAM),
// a leftover temporary file is not resumed: the upload starts again.
func TestNoRest(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	for _, f := range []ftpstest.Faults{
		{Replies: map[string]string{"REST": "502 REST not implemented"}},
		{HideFeatures: []string{"REST"}},
	} {
		tg.inproc.SetFaults(f)
		p, data := localFile(t, 300<<10)
		tg.write(t, "nr/"+tempPrefix+"nr"+tempSuffix, data[:100<<10])
		res, err := uploadOnce(t, tg.config(t, false), Job{LocalPath: p, Remote: "nr/x.jpg", TempID: "nr"})
		if err != nil {
			t.Fatal(err)
		}
		if res.ResumedFrom != 0 {
			t.Fatalf("resumed from %d", res.ResumedFrom)
		}
		wantFile(t, tg, "nr/x.jpg", data)
	}
}

// TestIdleSessionReplaced: an idle control connection the server no longer
// wants (NOOP fails) is replaced by a new one, transparently.
func TestIdleSessionReplaced(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	c := New(tg.config(t, false))
	defer c.Close()
	p, data := localFile(t, 1000)
	if _, err := c.Upload(t.Context(), Job{LocalPath: p, Remote: "is/a.jpg"}); err != nil {
		t.Fatal(err)
	}
	logins := tg.inproc.Stats().Logins
	ageIdle(c, warmFor)
	tg.inproc.SetFaults(ftpstest.Faults{Replies: map[string]string{"NOOP": "421 Timeout, closing control connection"}})
	if _, err := c.Upload(t.Context(), Job{LocalPath: p, Remote: "is/b.jpg"}); err != nil {
		t.Fatal(err)
	}
	if n := tg.inproc.Stats().Logins - logins; n != 1 {
		t.Fatalf("%d new logins, want 1", n)
	}
	tg.inproc.SetFaults(ftpstest.Faults{})
	if _, err := c.Upload(t.Context(), Job{LocalPath: p, Remote: "is/c.jpg"}); err != nil {
		t.Fatal(err)
	}
	if n := tg.inproc.Stats().Logins - logins; n != 1 {
		t.Fatalf("%d new logins, want 1 (the idle connection is reused)", n)
	}
	wantFile(t, tg, "is/c.jpg", data)
}

// ageIdle makes c's idle sessions look unused for d.
func ageIdle(c *Client, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.idle {
		s.lastUsed = time.Now().Add(-d)
	}
}

// TestWarmSessionNoNOOP: a session used within warmFor is reused without a
// NOOP; when the server dropped it meanwhile, the upload logs in again
// once, transparently, and the file arrives once.
func TestWarmSessionNoNOOP(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	c := New(tg.config(t, false))
	defer c.Close()
	p, data := localFile(t, 1000)
	if _, err := c.Upload(t.Context(), Job{LocalPath: p, Remote: "wn/a.jpg"}); err != nil {
		t.Fatal(err)
	}
	tg.inproc.ResetStats()
	if _, err := c.Upload(t.Context(), Job{LocalPath: p, Remote: "wn/b.jpg", Fresh: true}); err != nil {
		t.Fatal(err)
	}
	st := tg.inproc.Stats()
	if st.Logins != 0 {
		t.Fatalf("%d new logins, want 0 (warm session reused)", st.Logins)
	}
	// Before STOR: neither a NOOP nor a SIZE probe of the temporary name.
	want := []string{"EPSV", "STOR"}
	if len(st.Commands) < 2 || strings.Fields(st.Commands[0])[0] != want[0] || strings.Fields(st.Commands[1])[0] != want[1] {
		t.Fatalf("warm fresh upload began with %q, want EPSV, STOR", st.Commands)
	}
	// DropSessions has closed the server's end when it returns: the
	// client's idle session is dead now, whenever it notices.
	tg.inproc.DropSessions()
	if _, err := c.Upload(t.Context(), Job{LocalPath: p, Remote: "wn/c.jpg", Fresh: true}); err != nil {
		t.Fatalf("upload after the server dropped the idle session: %v", err)
	}
	if n := tg.inproc.Stats().Logins; n != 1 {
		t.Fatalf("%d new logins after the drop, want 1", n)
	}
	wantFile(t, tg, "wn/b.jpg", data)
	wantFile(t, tg, "wn/c.jpg", data)
}

// TestWarm: Warm logs in ahead, and the upload then uses that session.
func TestWarm(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	c := New(tg.config(t, false))
	defer c.Close()
	if err := c.Warm(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := c.Warm(t.Context()); err != nil { // one idle: nothing to do
		t.Fatal(err)
	}
	if n := tg.inproc.Stats().Logins; n != 1 {
		t.Fatalf("%d logins after two Warm calls, want 1", n)
	}
	p, data := localFile(t, 5000)
	if _, err := c.Upload(t.Context(), Job{LocalPath: p, Remote: "wm/a.jpg", Fresh: true}); err != nil {
		t.Fatal(err)
	}
	if n := tg.inproc.Stats().Logins; n != 1 {
		t.Fatalf("%d logins after the upload, want 1 (the warm session)", n)
	}
	wantFile(t, tg, "wm/a.jpg", data)

	bad := tg.config(t, false)
	bad.Password = "wrong"
	cb := New(bad)
	defer cb.Close()
	if err := cb.Warm(t.Context()); ClassOf(err) != Auth {
		t.Fatalf("Warm with a wrong password: %v (class %v), want class Auth", err, ClassOf(err))
	}
}

// TestCancelDuringConnect: goftp's connect takes no context; canceling
// returns at once anyway, and Close waits for the abandoned connect, so no
// goroutine is left behind.
func TestCancelDuringConnect(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	base := runtime.NumGoroutine()
	tg.inproc.SetFaults(ftpstest.Faults{Delay: 700 * time.Millisecond})
	cfg := tg.config(t, false)
	cfg.Timeout, cfg.ConnectTimeout = 2*time.Second, 10*time.Second
	c := New(cfg)
	p, _ := localFile(t, 10)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Upload(ctx, Job{LocalPath: p, Remote: "cc/x.jpg"})
	if el := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || ClassOf(err) != Transient || el > within(500*time.Millisecond) {
		t.Fatalf("%v (%v) after %v", err, ClassOf(err), el)
	}
	c.Close()
	tg.inproc.SetFaults(ftpstest.Faults{})
	goroutines(t, base)
}

// TestPipelinedRenameRefused: RNFR and RNTO go out together; when the
// server refuses the RNFR, the error names it, the pipelined RNTO's 503 is
// read (the control connection stays in step), and the next upload on the
// same connection works.
func TestPipelinedRenameRefused(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	cfg := tg.config(t, false)
	cfg.SameName = Rename
	c := New(cfg)
	defer c.Close()
	p, data := localFile(t, 2000)
	tg.inproc.SetFaults(ftpstest.Faults{Replies: map[string]string{"RNFR": "550 Permission denied (ftpstest)"}})
	_, err := c.Upload(t.Context(), Job{LocalPath: p, Remote: "pr/a.jpg"})
	if err == nil || codeOf(err) != 550 || !strings.Contains(err.Error(), "rename") {
		t.Fatalf("refused RNFR: %v", err)
	}
	tg.inproc.SetFaults(ftpstest.Faults{})
	logins := tg.inproc.Stats().Logins
	if _, err := c.Upload(t.Context(), Job{LocalPath: p, Remote: "pr/b.jpg"}); err != nil {
		t.Fatalf("next upload on the same connection: %v", err)
	}
	if n := tg.inproc.Stats().Logins - logins; n != 0 {
		t.Fatalf("%d new logins: the connection was not reused (out of step?)", n)
	}
	wantFile(t, tg, "pr/b.jpg", data)
	if _, err := os.Stat(tg.inproc.Path("pr/a.jpg")); err == nil {
		t.Fatal("pr/a.jpg exists although its rename was refused")
	}
}

// TestRecordedHash: the file is hashed with what the server checks
// (SHA-256 here), else with CRC-32C; RecordSHA256 adds a SHA-256 anyway.
func TestRecordedHash(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	p, data := localFile(t, 70000)
	for _, tc := range []struct {
		noHash, record bool
		alg, verified  string
	}{
		{false, false, "sha256", "size+sha256"},
		{true, false, "crc32c", "size"},
		{true, true, "sha256", "size"},
	} {
		tg.inproc.SetFaults(ftpstest.Faults{})
		if tc.noHash {
			tg.inproc.SetFaults(ftpstest.Faults{HideFeatures: []string{"HASH", "XSHA", "XMD5", "XCRC", "MD5"}})
		}
		cfg := tg.config(t, false)
		cfg.RecordSHA256 = tc.record
		res, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: fmt.Sprintf("rh/%v-%v.jpg", tc.noHash, tc.record)})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(res.Hash, tc.alg+":") || !hashOf(res.Hash, data) || res.Verified != tc.verified {
			t.Errorf("server hash %v, RecordSHA256 %v: Hash %q verified %q, want %s of the file, verified %q",
				!tc.noHash, tc.record, res.Hash, res.Verified, tc.alg, tc.verified)
		}
	}
}

// TestLocalFileChangedDuringUpload: a capture that grows while it is sent
// is not renamed into place: the upload fails with class Local, the final
// name does not exist and the temporary file is gone.
func TestLocalFileChangedDuringUpload(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	p, _ := localFile(t, 2<<20)
	grown := false
	job := Job{LocalPath: p, Remote: "ch/x.jpg", TempID: "ch1", Progress: func(sent, total int64) {
		if !grown && sent > total/2 {
			grown = true
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := f.Write(make([]byte, 1000)); err != nil {
				t.Error(err)
			}
			f.Close()
		}
	}}
	_, err := uploadOnce(t, tg.config(t, false), job)
	if ClassOf(err) != Local || !strings.Contains(err.Error(), "changed during the upload") {
		t.Fatalf("upload of a growing file: %v (class %v), want class Local, changed during the upload", err, ClassOf(err))
	}
	if _, err := os.Stat(tg.inproc.Path("ch/x.jpg")); err == nil {
		t.Fatal("the half-written capture was renamed into place")
	}
	noTemp(t, tg, "ch")
}
