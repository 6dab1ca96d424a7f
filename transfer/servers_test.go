package transfer

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// target is a server under test: the in-process ftpserverlib server or a
// real one.
type target struct {
	name       string
	host       string
	port       int
	capem      []byte
	serverName string
	user, pass string
	inproc     *ftpstest.Server
	real       *ftpstest.Real
}

// startTarget starts server name ("inproc", "vsftpd", "proftpd",
// "pureftpd") with an RSA or ECDSA certificate.
func startTarget(t testing.TB, name string, ecdsa bool) *target {
	t.Helper()
	return startTargetWith(t, name, ftpstest.Options{ECDSA: ecdsa}, ftpstest.RealOptions{ECDSA: ecdsa})
}

// startTargetWith starts the server name with in (the in-process server)
// or real (the others): a chosen certificate, faults, HASH.
func startTargetWith(t testing.TB, name string, in ftpstest.Options, real ftpstest.RealOptions) *target {
	t.Helper()
	tg := &target{name: name}
	if name == "inproc" {
		s, err := ftpstest.Start(in)
		if err != nil {
			t.Fatalf("ftpstest.Start: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		tg.inproc = s
		tg.host, tg.port, tg.capem, tg.serverName = s.Host, s.Port, s.CAPEM, s.ServerName
		tg.user, tg.pass = "camftpd", "secret"
		return tg
	}
	r, err := ftpstest.StartReal(name, real)
	if err != nil {
		t.Fatalf("start %s: %v (install the servers with `scripts/ftpservers install`)", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, tail(r.LogText(), 4000))
		}
		r.Close()
	})
	tg.real = r
	tg.host, tg.port, tg.capem, tg.serverName = r.Host, r.Port, r.CAPEM, r.ServerName
	tg.user, tg.pass = r.User, r.Password
	return tg
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// path is the local path of a remote path.
func (tg *target) path(remote string) string {
	if tg.inproc != nil {
		return tg.inproc.Path(remote)
	}
	return tg.real.Path(remote)
}

// write creates a remote file directly on the server's disk.
func (tg *target) write(t testing.TB, remote string, data []byte) {
	t.Helper()
	if tg.real != nil {
		if err := tg.real.WriteFile(remote, data); err != nil {
			t.Fatal(err)
		}
		return
	}
	p := tg.path(remote)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (tg *target) mkdir(t testing.TB, remote string) {
	t.Helper()
	if tg.real != nil {
		if err := tg.real.MkdirAll(remote); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.MkdirAll(tg.path(remote), 0o755); err != nil {
		t.Fatal(err)
	}
}

// tlsConfig builds the client TLS config with tlspolicy, as the daemon does.
func (tg *target) tlsConfig(t testing.TB, max12 bool) *tls.Config {
	return tg.tlsConfigFunc(t, max12, nil)
}

func (tg *target) tlsConfigFunc(t testing.TB, max12 bool, f func(tlspolicy.Negotiated)) *tls.Config {
	t.Helper()
	p, err := tlspolicy.New(tlspolicy.Options{ServerName: tg.serverName, CAPEM: [][]byte{tg.capem}, MaxTLS12: max12, OnNegotiated: f})
	if err != nil {
		t.Fatalf("tlspolicy.New: %v", err)
	}
	return p.Config()
}

func (tg *target) config(t testing.TB, max12 bool) Config {
	return Config{
		Host: tg.host, Port: tg.port, User: tg.user, Password: tg.pass,
		TLS: tg.tlsConfig(t, max12), Timeout: 5 * time.Second, ConnectTimeout: 5 * time.Second,
		Logger: testLogger(t),
	}
}

// sha256File returns the hex SHA-256 of a local file.
func sha256File(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// localFile writes n random bytes to a temp file.
func localFile(t testing.TB, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	p := filepath.Join(t.TempDir(), "capture.jpg")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	writerGone(t, p)
	return p, data
}

// writerGone waits until no process holds p open for writing, as the
// daemon's watcher does before it queues a capture. Closing the file is not
// enough while other tests of the package start servers: a child forked in
// that moment holds a copy of the writing descriptor until its exec (seen
// in 25 of 3,000 write-close-check rounds beside a fork/exec loop), and an
// upload then refuses the file as still being written (ErrStillWriting).
func writerGone(t testing.TB, p string) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		active, supported, err := WriterActive(f)
		if !supported || err != nil || !active {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still open for writing after 10 s", p)
		}
	}
}

func sumHex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// hashOf says whether an "alg:hex" Result.Hash is data's.
func hashOf(h string, data []byte) bool {
	alg, v, _ := strings.Cut(h, ":")
	switch alg {
	case "sha256":
		return v == sumHex(data)
	case "md5":
		s := md5.Sum(data)
		return v == hex.EncodeToString(s[:])
	case "crc32":
		return v == fmt.Sprintf("%08x", crc32.ChecksumIEEE(data))
	case "crc32c":
		return v == fmt.Sprintf("%08x", crc32.Checksum(data, castagnoli))
	}
	return false
}

// noTemp fails when a temporary upload file is left in the remote dir.
func noTemp(t testing.TB, tg *target, remoteDir string) {
	t.Helper()
	ents, _ := os.ReadDir(tg.path(remoteDir))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) || strings.HasPrefix(e.Name(), plainPrefix) {
			t.Errorf("temporary file %s left in %s", e.Name(), remoteDir)
		}
	}
}

func wantFile(t testing.TB, tg *target, remote string, data []byte) {
	t.Helper()
	got, err := os.ReadFile(tg.path(remote))
	if err != nil {
		t.Fatalf("remote %s: %v", remote, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("remote %s: %d bytes, sha256 %s; want %d bytes, sha256 %s", remote, len(got), sumHex(got), len(data), sumHex(data))
	}
}

// goroutines waits until the number of goroutines is back to at most base.
func goroutines(t testing.TB, base int) {
	t.Helper()
	deadline := time.Now().Add(within(5 * time.Second))
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutine leak: %d goroutines, want <= %d\n%s", runtime.NumGoroutine(), base, buf[:n])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var _ = context.Background

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testLogger logs to t at Info (Debug with CAMFTPD_TEST_DEBUG=1).
func testLogger(t testing.TB) *slog.Logger {
	lvl := slog.LevelInfo
	if os.Getenv("CAMFTPD_TEST_DEBUG") != "" {
		lvl = slog.LevelDebug - 4
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: lvl}))
}
