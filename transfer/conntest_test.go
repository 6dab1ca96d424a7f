package transfer

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// walk runs the connection test on cfg with Remote remote and logs it. It
// checks that every step is reported once, in TestSteps' order, and that
// Report saw what Test returned.
func walk(t *testing.T, cfg Config, o TestOptions) map[string]StepResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within(60*time.Second))
	defer cancel()
	var order []string
	o.Report = func(r StepResult) { order = append(order, r.Step) }
	rs := Test(ctx, cfg, o)
	m := map[string]StepResult{}
	for _, r := range rs {
		t.Logf("%-12s %-7s %s", r.Step, r.Verdict, r.Detail)
		if r.Fix != "" {
			t.Logf("%-12s %-7s fix: %s", "", "", r.Fix)
		}
		m[r.Step] = r
	}
	got := stepsOf(rs)
	if !slices.Equal(order, got) {
		t.Errorf("Report saw %v, Test returned %v", order, got)
	}
	if want := TestSteps(); !slices.Equal(got, want) {
		t.Errorf("steps %v, want %v", got, want)
	}
	return m
}

func stepsOf(rs []StepResult) []string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Step)
	}
	return s
}

// leftOnServer lists the test's files found under root.
func leftOnServer(t *testing.T, root string) []string {
	t.Helper()
	var left []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(d.Name(), "camftpd-check-") {
			left = append(left, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return left
}

// yearCert is a CA and a server certificate valid for a year (the
// servers' default one expires within a day: a warning).
func yearCert(t *testing.T, days int) (*ftpstest.CA, *ftpstest.Cert) {
	t.Helper()
	ca, err := ftpstest.NewCA(false)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cert, err := ca.IssueCert(ftpstest.CertOptions{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Duration(days) * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return ca, cert
}

// checkTarget starts server name with a certificate valid for days
// (ProFTPD with its hash module).
func checkTarget(t *testing.T, name string, days int, faults *ftpstest.Faults) *target {
	t.Helper()
	ca, cert := yearCert(t, days)
	return startTargetWith(t, name, ftpstest.Options{CA: ca, Cert: cert, Faults: faults}, ftpstest.RealOptions{CA: ca, Cert: cert, Hash: true})
}

func (tg *target) root() string {
	if tg.inproc != nil {
		return tg.inproc.Root
	}
	return tg.real.Root
}

// TestConnTestServers: against the in-process server, vsftpd, ProFTPD
// (with mod_digest) and Pure-FTPd with a valid certificate, every step is
// ok, but the hash on the servers that have no hash command (a warning:
// uploads verify the size); the folder is created and kept, the test file
// is gone.
func TestConnTestServers(t *testing.T) {
	noHash := map[string]bool{"vsftpd": true, "pureftpd": true}
	// The Go server and vsftpd follow the client's TLS 1.3 order: a device
	// that offers ChaCha20 first (armv7) gets it, a warning (non-NIST);
	// ProFTPD and Pure-FTPd choose AES-256-GCM themselves.
	chacha := map[string]bool{"inproc": tlspolicy.ChaChaFirst(), "vsftpd": tlspolicy.ChaChaFirst()}
	for _, name := range append([]string{"inproc"}, ftpstest.RealServers()...) {
		t.Run(name, func(t *testing.T) {
			tg := checkTarget(t, name, 365, nil)
			m := walk(t, tg.config(t, false), TestOptions{Remote: "2026-11-30/sub/CHECK0001.JPG"})
			for _, step := range TestSteps() {
				want := StepOK
				if step == StepHash && noHash[name] || step == StepHandshake && chacha[name] {
					want = StepWarn
				}
				if r := m[step]; r.Verdict != want {
					t.Errorf("%s: %s (%s), want %s", step, r.Verdict, r.Detail, want)
				}
			}
			if h := m[StepHash]; noHash[name] && !strings.Contains(h.Detail, "verified by size only") {
				t.Errorf("hash warning %q does not say what uploads lose", h.Detail)
			}
			if !strings.Contains(m[StepData].Detail, "passive") || !strings.Contains(m[StepRest].Detail, "resumed at 4096") {
				t.Errorf("data %q, rest %q", m[StepData].Detail, m[StepRest].Detail)
			}
			if left := leftOnServer(t, tg.root()); len(left) > 0 {
				t.Errorf("left on the server: %v", left)
			}
			if st, err := os.Stat(filepath.Join(tg.root(), "2026-11-30", "sub")); err != nil || !st.IsDir() {
				t.Errorf("the template's folder was not created: %v", err)
			}
		})
	}
}

// TestConnTestCertificateExpiry: a certificate that expires within
// CertWarnDays (30 by default) is a warning naming the days left; with
// a smaller CertWarnDays it is ok; an expired one fails the certificate
// step (class certificate) and nothing is logged in or written.
func TestConnTestCertificateExpiry(t *testing.T) {
	tg := checkTarget(t, "inproc", 10, nil)
	cfg := tg.config(t, false)
	m := walk(t, cfg, TestOptions{Remote: "CHECK0001.JPG"})
	if c := m[StepCertificate]; c.Verdict != StepWarn || !strings.Contains(c.Detail, "expires in 9 days") || !strings.Contains(c.Detail, "warning from 30 days") {
		t.Errorf("certificate 10 days before expiry: %s %q", c.Verdict, c.Detail)
	}
	if m[StepDelete].Verdict != StepOK || m[StepMkdir].Verdict != StepSkipped {
		t.Errorf("dele %s, mkd %s (%s)", m[StepDelete].Verdict, m[StepMkdir].Verdict, m[StepMkdir].Detail)
	}
	m = walk(t, cfg, TestOptions{Remote: "CHECK0001.JPG", CertWarnDays: 5})
	if c := m[StepCertificate]; c.Verdict != StepOK {
		t.Errorf("certificate 10 days before expiry, warning from 5: %s %q", c.Verdict, c.Detail)
	}

	ca, err := ftpstest.NewCA(false)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := ca.IssueCert(ftpstest.CertOptions{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := ftpstest.Start(ftpstest.Options{CA: ca, Cert: expired})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg.Port, cfg.TLS = s.Port, (&target{serverName: s.ServerName, capem: s.CAPEM}).tlsConfig(t, false)
	m = walk(t, cfg, TestOptions{Remote: "CHECK0001.JPG"})
	wantFailAt(t, m, StepCertificate, "expired", Certificate)
	for _, cmd := range s.Commands() {
		if strings.HasPrefix(cmd, "PASS") {
			t.Fatalf("sent %q to a server with an expired certificate", cmd)
		}
	}
}

// wantFailAt checks that the walk failed at step with a message holding
// want and a fix, that every step before it passed (ok or warn) and every
// later one was skipped (but dele).
func wantFailAt(t *testing.T, m map[string]StepResult, step, want string, class Class) {
	t.Helper()
	r := m[step]
	if r.Verdict != StepFail || !strings.Contains(r.Detail, want) || r.Fix == "" || ClassOf(r.Err) != class {
		t.Fatalf("%s: %s %q (fix %q, class %v); want a fail naming %q, class %v", step, r.Verdict, r.Detail, r.Fix, ClassOf(r.Err), want, class)
	}
	// Skipped before the failed step: mkd when there is no folder, data
	// when STOR was refused before the data connection's TLS.
	skippedOK := func(s string) bool {
		return m[s].Verdict == StepSkipped && (s == StepMkdir || s == StepData && step == StepStor)
	}
	before := true
	for _, s := range TestSteps() {
		switch {
		case s == step:
			before = false
		case before && m[s].Verdict != StepOK && m[s].Verdict != StepWarn && !skippedOK(s):
			t.Errorf("%s before the failed %s: %s %q", s, step, m[s].Verdict, m[s].Detail)
		case !before && s != StepDelete && m[s].Verdict != StepSkipped:
			t.Errorf("%s after the failed %s: %s %q, want skipped", s, step, m[s].Verdict, m[s].Detail)
		}
	}
}

// TestConnTestFaults: a fault injected at each step of the walk fails
// that step, with its own message, and the walk leaves nothing on the
// server.
func TestConnTestFaults(t *testing.T) {
	cases := []struct {
		name   string
		faults ftpstest.Faults
		cfg    func(*Config)
		step   string
		want   string
		class  Class
	}{
		{"greeting-421", ftpstest.Faults{Reply421OnConnect: true}, nil, StepGreeting, "421", Transient},
		{"auth-tls-refused", ftpstest.Faults{Replies: map[string]string{"AUTH": "500 AUTH not understood"}}, nil, StepAuthTLS, "server refused AUTH TLS", TLSPolicy},
		{"handshake-alert", ftpstest.Faults{HandshakeFault: ftpstest.AlertInternalError, HandshakeFaults: 100}, nil, StepHandshake, "internal error", Transient},
		{"wrong-password", ftpstest.Faults{}, func(c *Config) { c.Password = "wrong" }, StepLogin, "check user name and password", Auth},
		{"prot-536", ftpstest.Faults{Replies: map[string]string{"PROT": "536 PROT P not supported"}}, nil, StepProt, "536 PROT P not supported", TLSPolicy},
		{"mkd-550", ftpstest.Faults{Replies: map[string]string{"MKD": "550 Permission denied (mkd fault)"}}, nil, StepMkdir, "MKD check: not allowed or not found on the server", Permanent},
		{"no-passive", ftpstest.Faults{Replies: map[string]string{"EPSV": "500 no EPSV", "PASV": "500 no PASV"}}, nil, StepData, "500 no PASV", Permanent},
		{"stor-553", ftpstest.Faults{Replies: map[string]string{"STOR": "553 Could not create file (stor fault)"}}, nil, StepStor, "553 Could not create file", Permanent},
		{"no-size", ftpstest.Faults{Replies: map[string]string{"SIZE": "500 Unknown command SIZE"}, HideFeatures: []string{"SIZE"}}, nil, StepSize, "no SIZE command", Permanent},
		{"no-rnfr", ftpstest.Faults{Replies: map[string]string{"RNFR": "502 RNFR not implemented"}}, nil, StepRename, "502 RNFR not implemented", Permanent},
		{"dele-refused", ftpstest.Faults{Replies: map[string]string{"DELE": "550 Delete not allowed (dele fault)"}}, nil, StepDelete, "550 Delete not allowed", Permanent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := c.faults
			tg := checkTarget(t, "inproc", 365, &f)
			cfg := tg.config(t, false)
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			m := walk(t, cfg, TestOptions{Remote: "check/CHECK0001.JPG"})
			wantFailAt(t, m, c.step, c.want, c.class)
			left := leftOnServer(t, tg.root())
			if c.step == StepDelete {
				if len(left) != 1 || !strings.Contains(m[StepDelete].Fix, "by hand") {
					t.Fatalf("DELE refused: left %v, fix %q: want the renamed file, named in the fix", left, m[StepDelete].Fix)
				}
				return
			}
			if len(left) > 0 {
				t.Fatalf("left on the server: %v", left)
			}
			if d := m[StepDelete]; d.Verdict == StepFail {
				t.Fatalf("dele: %s %q", d.Verdict, d.Detail)
			}
		})
	}
}

// TestConnTestNetworkFaults: a host name that does not resolve fails the
// resolve step; a port nobody listens on fails the TCP step.
func TestConnTestNetworkFaults(t *testing.T) {
	tg := checkTarget(t, "inproc", 365, nil)
	cfg := tg.config(t, false)
	cfg.Host = "no-such-host.invalid"
	wantFailAt(t, walk(t, cfg, TestOptions{Remote: "CHECK0001.JPG"}), StepResolve, "cannot resolve no-such-host.invalid", Transient)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg = tg.config(t, false)
	cfg.Port = port
	wantFailAt(t, walk(t, cfg, TestOptions{Remote: "CHECK0001.JPG"}), StepTCP, "connection refused", Transient)
}

// TestConnTestBadCertificate: a certificate from another CA, or for
// another name, fails the certificate step (the handshake itself
// passed), and no password is sent.
func TestConnTestBadCertificate(t *testing.T) {
	tg := checkTarget(t, "inproc", 365, nil)
	other, err := ftpstest.NewCA(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, serverName string
		ca               []byte
		want             string
	}{
		{"unknown-CA", "localhost", other.PEM, "unknown authority"},
		{"wrong-name", "camera.example", tg.capem, "camera.example"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := tlspolicy.New(tlspolicy.Options{ServerName: c.serverName, CAPEM: [][]byte{c.ca}})
			if err != nil {
				t.Fatal(err)
			}
			cfg := tg.config(t, false)
			cfg.TLS = p.Config()
			tg.inproc.ResetStats()
			m := walk(t, cfg, TestOptions{Remote: "CHECK0001.JPG"})
			wantFailAt(t, m, StepCertificate, c.want, Certificate)
			for _, cmd := range tg.inproc.Commands() {
				if strings.HasPrefix(cmd, "PASS") || strings.HasPrefix(cmd, "USER") {
					t.Fatalf("sent %q to an unverified server", cmd)
				}
			}
		})
	}
}

// TestConnTestNoSessionReuse: vsftpd (require_ssl_reuse) answers 522 to a
// data connection that does not resume the control connection's TLS
// session: the data step fails with a message naming the resumption; the
// in-process server with RequireReuse too. Nothing is left behind.
func TestConnTestNoSessionReuse(t *testing.T) {
	for _, name := range []string{"vsftpd", "inproc"} {
		t.Run(name, func(t *testing.T) {
			var tg *target
			if name == "inproc" {
				ca, cert := yearCert(t, 365)
				s, err := ftpstest.Start(ftpstest.Options{CA: ca, Cert: cert, RequireReuse: true})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				tg = &target{name: name, inproc: s, host: s.Host, port: s.Port, capem: s.CAPEM, serverName: s.ServerName, user: "camftpd", pass: "secret"}
			} else {
				tg = checkTarget(t, name, 365, nil)
			}
			cfg := tg.config(t, false)
			cfg.TLS = cfg.TLS.Clone()
			cfg.TLS.SessionTicketsDisabled = true // no resumption at all
			cfg.Timeout = 3 * time.Second
			m := walk(t, cfg, TestOptions{Remote: "check/CHECK0001.JPG"})
			wantFailAt(t, m, StepData, "did not resume the control connection's TLS session", ClassOf(m[StepData].Err))
			if name == "vsftpd" && (ClassOf(m[StepData].Err) != TLSPolicy || !strings.Contains(m[StepData].Detail, "522")) {
				t.Fatalf("vsftpd: %v %q: want the 522, class tls-policy", ClassOf(m[StepData].Err), m[StepData].Detail)
			}
			if left := leftOnServer(t, tg.root()); len(left) > 0 {
				t.Fatalf("left on the server: %v", left)
			}
		})
	}
}

// TestConnTestBounded: a server that stalls is reported within ctx's
// time, with ctx's error, and Test's goroutines end.
func TestConnTestBounded(t *testing.T) {
	base := runtime.NumGoroutine()
	tg := checkTarget(t, "inproc", 365, &ftpstest.Faults{Delay: 20 * time.Second})
	cfg := tg.config(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	rs := Test(ctx, cfg, TestOptions{Remote: "CHECK0001.JPG"})
	if el := time.Since(start); el > within(3*time.Second) {
		t.Fatalf("Test took %v with a 500 ms context", el)
	}
	failed := ""
	for _, r := range rs {
		if r.Verdict == StepFail && failed == "" {
			failed = r.Step
		}
	}
	if failed != StepGreeting {
		t.Fatalf("failed at %q, want greeting: %v", failed, rs)
	}
	tg.inproc.Close() // its goroutines too
	goroutines(t, base)
}

// TestConnTestCanceledMidway: ctx ends during the STOR (a slow server):
// Test returns at once with the stor step failed, and the partial test
// file is deleted on a new connection within cleanupGrace.
func TestConnTestCanceledMidway(t *testing.T) {
	tg := checkTarget(t, "inproc", 365, &ftpstest.Faults{DataRate: 200})
	cfg := tg.config(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), within(1500*time.Millisecond))
	defer cancel()
	start := time.Now()
	rs := Test(ctx, cfg, TestOptions{Remote: "check/CHECK0001.JPG"})
	el := time.Since(start)
	m := map[string]StepResult{}
	for _, r := range rs {
		t.Logf("%-12s %-7s %s", r.Step, r.Verdict, r.Detail)
		m[r.Step] = r
	}
	if el > within(1500*time.Millisecond)+cleanupGrace+within(time.Second) {
		t.Errorf("Test took %v with a 1.5 s context", el)
	}
	if m[StepStor].Verdict != StepFail || !strings.Contains(m[StepStor].Detail, "canceled or ran out of time") || m[StepDelete].Verdict != StepOK {
		t.Errorf("stor %s, dele %s: want the stor failed, the file deleted", m[StepStor].Verdict, m[StepDelete].Verdict)
	}
	if tg.inproc.Stats().Stors == 0 {
		t.Fatal("no STOR reached the server: the test did not cancel midway")
	}
	if left := leftOnServer(t, tg.root()); len(left) > 0 {
		t.Fatalf("left on the server: %v", left)
	}
}

// TestConnTestWarnings: what uploads survive but lose something by is a
// warning at its step, and the walk goes on to the end: REST refused or
// not offered (an interrupted upload starts over), no hash command, a
// deprecated suite (vsftpd offering only one, TLS 1.2).
func TestConnTestWarnings(t *testing.T) {
	cases := []struct {
		name   string
		faults *ftpstest.Faults
		step   string
		want   string
	}{
		{"rest-refused", &ftpstest.Faults{Replies: map[string]string{"REST": "502 REST not implemented"}}, StepRest, "the server refused REST"},
		{"rest-not-offered", &ftpstest.Faults{HideFeatures: []string{"REST"}}, StepRest, "does not offer REST STREAM"},
		{"no-hash", &ftpstest.Faults{HideFeatures: []string{"HASH", "XCRC", "XSHA", "XMD5", "MD5"}}, StepHash, "verified by size only"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg := checkTarget(t, "inproc", 365, c.faults)
			m := walk(t, tg.config(t, false), TestOptions{Remote: "check/CHECK0001.JPG"})
			for _, s := range TestSteps() {
				want := StepOK
				if s == c.step || s == StepHandshake && tlspolicy.ChaChaFirst() { // see TestConnTestServers
					want = StepWarn
				}
				if m[s].Verdict != want {
					t.Errorf("%s: %s %q, want %s", s, m[s].Verdict, m[s].Detail, want)
				}
			}
			if r := m[c.step]; !strings.Contains(r.Detail, c.want) || r.Fix == "" {
				t.Errorf("%s: %q (fix %q), want it to say %q and a fix", c.step, r.Detail, r.Fix, c.want)
			}
			if left := leftOnServer(t, tg.root()); len(left) > 0 {
				t.Fatalf("left on the server: %v", left)
			}
		})
	}
	t.Run("vsftpd-deprecated-suite", func(t *testing.T) {
		ca, cert := yearCert(t, 365)
		r, err := ftpstest.StartVsftpd(ftpstest.RealOptions{CA: ca, Cert: cert, MaxTLS12: true, Ciphers: "ECDHE-RSA-AES128-SHA256"})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		tg := &target{name: "vsftpd", real: r, host: r.Host, port: r.Port, capem: r.CAPEM, serverName: r.ServerName, user: r.User, pass: r.Password}
		m := walk(t, tg.config(t, true), TestOptions{Remote: "CHECK0001.JPG"})
		if h := m[StepHandshake]; h.Verdict != StepWarn || !strings.Contains(h.Detail, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256 (deprecated)") {
			t.Errorf("handshake %s %q: want a warning naming the deprecated suite", h.Verdict, h.Detail)
		}
		if d := m[StepDelete]; d.Verdict != StepOK {
			t.Errorf("dele %s %q: the walk did not go on to the end", d.Verdict, d.Detail)
		}
	})
}

// TestConnTestNoLocalTemp: a camera whose temporary folder cannot hold the
// test file fails the stor step with a local error saying so.
func TestConnTestNoLocalTemp(t *testing.T) {
	tg := checkTarget(t, "inproc", 365, nil)
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	m := walk(t, tg.config(t, false), TestOptions{Remote: "check/CHECK0001.JPG"})
	wantFailAt(t, m, StepStor, "cannot create the local test file", Local)
	if !strings.Contains(m[StepStor].Fix, "TMPDIR") {
		t.Errorf("fix %q does not name TMPDIR", m[StepStor].Fix)
	}
}
