package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camftpd/camftpd/queue"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// testEnv is a media folder, a state folder, an in-process FTPS server with a
// fixed root and CA (so it can be stopped and started again) behind a TCP
// proxy with a fixed port, and a config file pointing at all of it.
type testEnv struct {
	t                       testing.TB
	dir, media, state, root string
	sock, cfgPath, caPath   string
	ca                      *ftpstest.CA
	cert                    *ftpstest.Cert
	mu                      sync.Mutex
	srv                     *ftpstest.Server
	proxy                   *tcpProxy
	extra                   string // extra top-level config lines
	srvExtra                string // extra [[server]] lines
	retryMin, retryMax      string // default 200ms, 1s
	password                string // default the server's
	noHash                  bool   // the server offers no HASH (set before startServer)
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{t: t, dir: dir, media: filepath.Join(dir, "media", "DCIM"), state: filepath.Join(dir, "state"),
		root: filepath.Join(dir, "server"), sock: filepath.Join(dir, "s.sock"), cfgPath: filepath.Join(dir, "camftpd.toml"),
		caPath: filepath.Join(dir, "ca.pem")}
	for _, d := range []string{e.media, e.state, e.root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if e.ca, err = ftpstest.NewCA(false); err != nil {
		t.Fatal(err)
	}
	if e.cert, err = e.ca.IssueCert(ftpstest.CertOptions{NotAfter: time.Now().Add(397 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.caPath, e.ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	e.startServer()
	e.proxy = newProxy(t, e.srv.Addr)
	t.Cleanup(func() {
		e.proxy.close()
		e.mu.Lock()
		if e.srv != nil {
			e.srv.Close()
		}
		e.mu.Unlock()
	})
	return e
}

func (e *testEnv) startServer() {
	e.t.Helper()
	if err := e.tryStartServer(); err != nil {
		e.t.Fatal(err)
	}
}

// tryStartServer is startServer for another goroutine than the test's,
// which must not call t.Fatal: it returns the error instead.
func (e *testEnv) tryStartServer() error {
	srv, err := ftpstest.Start(ftpstest.Options{Root: e.root, CA: e.ca, Cert: e.cert, NoHash: e.noHash})
	if err != nil {
		return fmt.Errorf("start the FTPS server: %w", err)
	}
	e.mu.Lock()
	e.srv = srv
	e.mu.Unlock()
	if e.proxy != nil {
		e.proxy.setBackend(srv.Addr)
	}
	return nil
}

// stopServer stops the FTPS server and cuts every connection through the proxy.
func (e *testEnv) stopServer() {
	e.proxy.setBackend("")
	e.mu.Lock()
	srv := e.srv
	e.srv = nil
	e.mu.Unlock()
	srv.Close()
}

func (e *testEnv) server() *ftpstest.Server {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.srv
}

func (e *testEnv) writeConfig(settle string, workers int) *Config {
	e.t.Helper()
	cfg := fmt.Sprintf(`media_dir = %q
state_dir = %q
status_socket = %q
storage_mount = ""
interface = ""
settle = %q
workers = %d
retry_min = %q
retry_max = %q
log_level = "debug"
%s
[[server]]
name = "test"
host = "127.0.0.1"
port = %d
user = "camftpd"
password = %q
ca_files = [%q]
remote_template = "{dir}/{name}"
timeout = "5s"
connect_timeout = "3s"
%s
`, e.media, e.state, e.sock, settle, workers, or(e.retryMin, "200ms"), or(e.retryMax, "1s"), e.extra, e.proxy.port(),
		or(e.password, "secret"), e.caPath, e.srvExtra)
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		e.t.Fatal(err)
	}
	c, err := LoadConfig(e.cfgPath)
	if err != nil {
		e.t.Fatalf("config: %v", err)
	}
	return c
}

// serverSlot is an extra [[server]] table for srvExtra: the test login on
// 127.0.0.1:port, short timeouts.
func (e *testEnv) serverSlot(name string, port int) string {
	return fmt.Sprintf(`
[[server]]
name = %q
host = "127.0.0.1"
port = %d
user = "camftpd"
password = "secret"
ca_files = [%q]
remote_template = "{dir}/{name}"
timeout = "2s"
connect_timeout = "2s"
`, name, port, e.caPath)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// testLogger logs to the test output (only shown on failure or -v).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// startDaemon runs a daemon in-process until the test ends.
func startDaemon(t *testing.T, cfg *Config, log *slog.Logger) (*Daemon, context.CancelFunc, chan error) {
	t.Helper()
	d := New(cfg, log)
	cancel, done := runDaemon(t, d)
	return d, cancel, done
}

// runDaemon runs d (its test hooks set) until the test ends; it returns
// when d is ready.
func runDaemon(t *testing.T, d *Daemon) (context.CancelFunc, chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("daemon stopped at start: %v", err)
	case <-time.After(within(10 * time.Second)):
		t.Fatalf("daemon not ready after %v", within(10*time.Second))
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon stopped with an error: %v", err)
			}
		case <-time.After(within(10 * time.Second)):
			t.Errorf("daemon did not stop within %v", within(10*time.Second))
		}
	})
	return cancel, done
}

// writeCapture writes a file like a camera: in a few chunks, then closes it.
func writeCapture(t testing.TB, path string, size int, seed uint64) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, uint64(size)))
	buf := make([]byte, 64<<10)
	for left := size; left > 0; {
		n := min(left, len(buf))
		for i := 0; i < n; i += 8 {
			v := r.Uint64()
			for j := 0; j < 8 && i+j < n; j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if _, err := f.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func fileSHA(t testing.TB, p string) string {
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

// treeSHA maps every regular file under root (relative, slash) to its SHA-256.
func treeSHA(t testing.TB, root string) map[string]string {
	out := map[string]string{}
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = fileSHA(t, p)
		return nil
	})
	return out
}

// verifyArrived checks the server holds exactly the media files: same
// names, same SHA-256, nothing else (no duplicate, no partial file).
func verifyArrived(t *testing.T, media, root string) {
	t.Helper()
	want := treeSHA(t, media)
	got := treeSHA(t, root)
	for rel, sum := range want {
		if g, ok := got[rel]; !ok {
			t.Errorf("missing on server: %s", rel)
		} else if g != sum {
			t.Errorf("sha256 mismatch for %s", rel)
		}
	}
	for rel := range got {
		if _, ok := want[rel]; !ok {
			t.Errorf("unexpected file on server (duplicate or partial): %s", rel)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// waitFor polls cond until it holds, for at most within(timeout): the
// timeout says "not hung", so it stretches under -race and emulation.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout = within(timeout)
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond) // the poll interval of this wait
	}
}

func counts(t *testing.T, q *queue.Queue) queue.Counts {
	c, err := q.Counts()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tcpProxy forwards a fixed loopback port to the current backend; with no
// backend it closes every connection (the server is down).
type tcpProxy struct {
	l       net.Listener
	mu      sync.Mutex
	backend string
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

func newProxy(t testing.TB, backend string) *tcpProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{l: l, backend: backend, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p
}

func (p *tcpProxy) port() int { return p.l.Addr().(*net.TCPAddr).Port }

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		be := p.backend
		p.mu.Unlock()
		if be == "" {
			c.Close()
			continue
		}
		b, err := net.DialTimeout("tcp", be, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[b] = struct{}{}, struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(b, c)
		go pipe(c, b)
	}
}

// setBackend switches the backend; "" cuts every connection.
func (p *tcpProxy) setBackend(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backend = addr
	if addr == "" {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *tcpProxy) close() {
	p.l.Close()
	p.setBackend("")
	p.wg.Wait()
}

// checkNoPartial checks that every file visible under its final name on the
// server is complete (same SHA-256 as the capture); temporary upload files
// (".camftpd-*.part") may exist while uploads are pending.
func checkNoPartial(t *testing.T, media, root string) {
	t.Helper()
	for rel, sum := range treeSHA(t, root) {
		if strings.HasPrefix(filepath.Base(rel), ".") {
			continue
		}
		if local := fileSHA(t, filepath.Join(media, rel)); local != sum {
			t.Fatalf("partial or wrong file visible on the server: %s", rel)
		}
	}
}
