package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// trustConfig writes a config for one server at 127.0.0.1:port with the
// given login and no CA file, into dir, and returns its path.
func trustConfig(t *testing.T, dir string, port int, user, password, extra string) string {
	t.Helper()
	media, state := filepath.Join(dir, "media", "DCIM"), filepath.Join(dir, "state")
	for _, d := range []string{media, state} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`media_dir = %q
state_dir = %q
status_socket = %q
storage_mount = ""
interface = ""
settle = "200ms"
workers = 1
retry_min = "200ms"
retry_max = "1s"
%s
[[server]]
name = "nas"
host = "127.0.0.1"
port = %d
user = %q
password = %q
remote_template = "{dir}/{name}"
timeout = "10s"
connect_timeout = "5s"
`, media, state, filepath.Join(dir, "s.sock"), extra, port, user, password)
	path := filepath.Join(dir, "camftpd.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runTrust runs `camftpd trust args...` with stdin and returns its exit
// status, stdout and stderr.
func runTrust(t *testing.T, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), within(60*time.Second))
	defer cancel()
	code := cmdTrust(ctx, args, stdin, &out, &errb)
	return code, out.String(), errb.String()
}

// TestTrustServerPinsSelfSignedNAS: vsftpd with a self-signed certificate
// that names the server only in its CN, reached by IP address: the daemon
// refuses it (blocked, certificate) until `camftpd trust -server nas -yes`
// pins it; the trust command lifts the block and the capture is uploaded,
// accepted on the pin.
func TestTrustServerPinsSelfSignedNAS(t *testing.T) {
	t.Parallel()
	cert, err := ftpstest.SelfSigned(ftpstest.CertOptions{DNSNames: []string{}, CommonName: "nas.local"}, false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ftpstest.StartVsftpd(ftpstest.RealOptions{Cert: cert, AnyPassword: true})
	if err != nil {
		t.Fatalf("vsftpd: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	dir := t.TempDir()
	path := trustConfig(t, dir, r.Port, r.User, r.Password, "")
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	d := New(cfg, testLogger(t))
	events, stop := d.Subscribe()
	defer stop()
	runDaemon(t, d)
	writeCapture(t, filepath.Join(cfg.MediaDir, "100TEST", "DSC00001.JPG"), 200<<10, 7)

	ev := nextEvent(t, events, within(20*time.Second), "blocked", "done")
	if ev.Type != "blocked" || ev.State != "certificate" || !strings.Contains(ev.Error, "no host names at all") {
		t.Fatalf("without trust: %s %s %q, want blocked on the certificate", ev.Type, ev.State, ev.Error)
	}

	code, out, errs := runTrust(t, nil, "-config", path, "-server", "nas", "-yes")
	pin, spki := tlspolicy.CertPins(cert.Leaf)
	for _, s := range []string{"CN=nas.local", "(self-signed)", "names:        none", pin, spki, "today: refused", "pinned " + pin, "certificate block lifted"} {
		if !strings.Contains(out, s) {
			t.Errorf("trust output lacks %q", s)
		}
	}
	if code != 0 {
		t.Fatalf("trust exit %d: %s\n%s", code, errs, out)
	}
	t.Logf("camftpd trust:\n%s", out)
	ev = nextEvent(t, events, within(20*time.Second), "done", "blocked", "parked")
	if ev.Type != "done" {
		t.Fatalf("after trust: %s %q", ev.Type, ev.Error)
	}
	got, err := os.ReadFile(r.Path("100TEST/DSC00001.JPG"))
	if err != nil || len(got) != 200<<10 {
		t.Fatalf("uploaded file: %d bytes, %v", len(got), err)
	}
	st := d.Status()
	if st.TLS == nil || !st.TLS.Pinned || st.TLS.CertWarning != "" || st.TLS.CertDaysLeft < 390 {
		t.Fatalf("status tls %+v, want pinned, no warning, ~396 days left", st.TLS)
	}
	// Trusting again changes nothing.
	if code, out, _ := runTrust(t, nil, "-config", path, "-server", "nas", "-yes"); code != 0 || !strings.Contains(out, "already trusted") {
		t.Errorf("second trust: exit %d\n%s", code, out)
	}
	// camftpd check says which check accepted the certificate.
	var cout, cerr bytes.Buffer
	Main(context.Background(), []string{"check", "-config", path, "-server", "nas"}, &cout, &cerr)
	if !strings.Contains(cout.String(), "  certificate  ok      accepted on its pin (chain and name not checked)") {
		t.Errorf("camftpd check after trust:\n%s%s", cout.String(), cerr.String())
	}
}

// TestTrustImport: a server certificate given as PEM or DER is pinned, a
// CA certificate becomes a root of that server only; an expired
// certificate, a private key and a file that is no certificate are
// refused with one line, and without -yes nothing is trusted without a
// terminal. The daemon's policy then accepts the server on the pin.
func TestTrustImport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfgPath := trustConfig(t, dir, 2121, "u", "pw", "")
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	nas, err := ftpstest.SelfSigned(ftpstest.CertOptions{ECDSA: true, DNSNames: []string{}, CommonName: "nas"}, false)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ftpstest.NewNamedCA(true, "studio CA")
	if err != nil {
		t.Fatal(err)
	}
	expired, err := ftpstest.SelfSigned(ftpstest.CertOptions{ECDSA: true, NotBefore: time.Now().Add(-100 * 24 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}, false)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pemFile, derFile := write("nas.pem", nas.CertPEM), write("nas.cer", nas.Leaf.Raw)
	notTerm, err := os.Open(pemFile) // a file as stdin: not a terminal
	if err != nil {
		t.Fatal(err)
	}
	defer notTerm.Close()

	for _, c := range []struct {
		name, file string
		stdin      io.Reader
		yes        bool
		code       int
		has        string
	}{
		{"no terminal, no -yes", pemFile, notTerm, false, 2, "no terminal to ask on"},
		{"expired", write("old.pem", expired.CertPEM), nil, true, 2, "expired on"},
		{"private key", write("key.pem", nas.KeyPEM), nil, true, 2, "holds a PRIVATE KEY"},
		{"not a certificate", write("notes.txt", []byte("hello\n")), nil, true, 2, "neither a PEM nor a DER certificate"},
		{"missing", filepath.Join(dir, "nope.pem"), nil, true, 2, "cannot read it"},
	} {
		args := []string{"-config", cfgPath, "-import", c.file}
		if c.yes {
			args = append(args, "-yes")
		}
		code, _, errs := runTrust(t, c.stdin, args...)
		if code != c.code || !strings.Contains(errs, c.has) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q, want %d and one line with %q", c.name, code, errs, c.code, c.has)
		}
	}
	if _, err := os.Stat(trustStorePath(cfg)); err == nil {
		t.Fatal("a refused import wrote the trust store")
	}
	pin, _ := tlspolicy.CertPins(nas.Leaf)
	for _, f := range []string{pemFile, derFile} {
		code, out, errs := runTrust(t, nil, "-config", cfgPath, "-import", f, "-yes")
		if code != 0 || !strings.Contains(out, pin) {
			t.Fatalf("import %s: exit %d %s\n%s", f, code, errs, out)
		}
	}
	if code, out, errs := runTrust(t, nil, "-config", cfgPath, "-import", write("ca.pem", ca.PEM), "-yes"); code != 0 || !strings.Contains(out, "trusted CA") {
		t.Fatalf("import CA: exit %d %s\n%s", code, errs, out)
	}
	entries, err := tlspolicy.OpenTrustStore(trustStorePath(cfg)).Entries()
	if err != nil {
		t.Fatal(err)
	}
	e := entries["127.0.0.1"]
	if len(entries) != 1 || len(e.Pins) != 1 || e.Pins[0].Pin != pin || len(e.CAs) != 1 || !strings.Contains(e.CAs[0].Subject, "studio CA") {
		b, _ := json.MarshalIndent(entries, "", " ")
		t.Fatalf("trust store: %s", b)
	}
	if code, out, _ := runTrust(t, nil, "-config", cfgPath, "-list"); code != 0 || !strings.Contains(out, "pinned") || !strings.Contains(out, "studio CA") {
		t.Errorf("list: exit %d\n%s", code, out)
	}

	// The daemon's policy for the server accepts the pinned certificate
	// from a server reached by IP.
	srv, err := ftpstest.Start(ftpstest.Options{Cert: nas})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	opts := serverTLS(cfg, cfg.Servers[0])
	opts.Logger = slog.New(slog.DiscardHandler)
	p, err := tlspolicy.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), within(20*time.Second))
	defer cancel()
	if _, err := p.Probe(ctx, srv.Addr); err != nil {
		t.Fatalf("pinned by import, then probed: %v", err)
	}
}

// TestCertWarnDaysInStatus: a server certificate that expires in 10 days
// is a warning in GET /status and `camftpd status`, and in the log once
// (not once per connection); with cert_warn_days = 5 it is none.
func TestCertWarnDaysInStatus(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		extra string
		warn  bool
	}{{"", true}, {"cert_warn_days = 5", false}} {
		e := newEnv(t)
		cert, err := e.ca.IssueCert(ftpstest.CertOptions{NotAfter: time.Now().Add(10 * 24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		e.cert = cert
		e.stopServer()
		e.startServer()
		e.extra = c.extra
		cfg := e.writeConfig("200ms", 2)
		var logBuf lockedBuffer
		d, _, _ := startDaemon(t, cfg, slog.New(slog.NewTextHandler(&logBuf, nil)))
		for i := range 3 {
			writeCapture(t, filepath.Join(e.media, "100TEST", fmt.Sprintf("DSC%05d.JPG", i)), 20<<10, uint64(i))
		}
		waitAllDone(t, d, 3, 30*time.Second)
		st, err := sockStatus(e.sock)
		if err != nil {
			t.Fatal(err)
		}
		if st.TLS == nil || st.TLS.CertDaysLeft != 9 || st.TLS.Pinned {
			t.Fatalf("%q: status tls %+v, want 9 days left, on the chain", c.extra, st.TLS)
		}
		var b strings.Builder
		printStatus(&b, st)
		logged := strings.Count(logBuf.String(), "server certificate expires soon")
		// camftpd check's certificate step follows cert_warn_days too.
		var out, errb bytes.Buffer
		code := Main(context.Background(), []string{"check", "-config", e.cfgPath}, &out, &errb)
		stepWarns := strings.Contains(out.String(), "  certificate  warn    expires in 9 days")
		// A device that offers ChaCha20 first in TLS 1.3 (armv7) gets it from
		// the Go server: a warning of its own, exit 1 either way.
		if wantCode := map[bool]int{true: 1, false: 0}[c.warn || tlspolicy.ChaChaFirst()]; code != wantCode || stepWarns != c.warn {
			t.Errorf("%q: camftpd check exit %d (want %d), certificate step warns %v:\n%s%s", c.extra, code, wantCode, stepWarns, out.String(), errb.String())
		}
		if !c.warn {
			if st.TLS.CertWarning != "" || strings.Contains(b.String(), "tls cert warning") || logged != 0 {
				t.Errorf("cert_warn_days 5, 10 days left: warning %q, logged %d", st.TLS.CertWarning, logged)
			}
			continue
		}
		if !strings.Contains(st.TLS.CertWarning, "expires on "+cert.Leaf.NotAfter.UTC().Format(time.RFC3339)) || !strings.Contains(st.TLS.CertWarning, "in 9 day(s)") {
			t.Errorf("status cert_warning %q", st.TLS.CertWarning)
		}
		if !strings.Contains(b.String(), "tls cert warning: server 127.0.0.1 certificate") || !strings.Contains(b.String(), "(9 days left), accepted on its chain and name") {
			t.Errorf("camftpd status:\n%s", b.String())
		}
		// One policy per server per generation: one line for all its
		// connections (each worker's prewarm and 3 uploads).
		if logged != 1 {
			t.Errorf("expiry warning logged %d times, want once:\n%s", logged, logBuf.String())
		}
		t.Logf("camftpd status:\n%s", b.String())
	}
}
