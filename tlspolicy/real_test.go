package tlspolicy_test

// Tests against a real FTPS server, vsftpd 3.0.3 with OpenSSL 3, whose
// TLS 1.2 suites are restricted with ssl_ciphers. The server is installed by
// `scripts/ftpservers install`; a missing server fails the test.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

func startVsftpd(t *testing.T, ciphers string, maxTLS12 bool) *ftpstest.Real {
	t.Helper()
	r, err := ftpstest.StartVsftpd(ftpstest.RealOptions{Ciphers: ciphers, MaxTLS12: maxTLS12})
	if err != nil {
		t.Fatalf("starting vsftpd (install it with `scripts/ftpservers install`): %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// connect runs one policy handshake (AUTH TLS, TLS, QUIT) against r.
func connect(t *testing.T, r *ftpstest.Real, mode tlspolicy.Mode) (tlspolicy.Negotiated, *tlspolicy.Policy, string, error) {
	t.Helper()
	logs := &logBuf{}
	p, err := tlspolicy.New(tlspolicy.Options{Mode: mode, ServerName: r.ServerName, CAPEM: [][]byte{r.CAPEM},
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := p.Probe(ctx, r.Addr)
	if err != nil {
		t.Logf("vsftpd %s, mode %s: %v", r.Addr, mode, err)
	} else {
		t.Logf("vsftpd %s, mode %s: %v", r.Addr, mode, n)
	}
	return n, p, logs.String(), err
}

func policyErr(t *testing.T, err error) *tlspolicy.Error {
	t.Helper()
	var pe *tlspolicy.Error
	if !errors.As(err, &pe) || pe.Kind != tlspolicy.KindPolicy {
		t.Fatalf("want a tls-policy error, got %v (%T)", err, err)
	}
	if strings.ContainsAny(pe.Error(), "\r\n") {
		t.Errorf("not one line: %q", pe.Error())
	}
	return pe
}

func TestVsftpdRecommendedSuiteConnectsQuietly(t *testing.T) {
	r := startVsftpd(t, "ECDHE-RSA-AES128-GCM-SHA256", true)
	for _, mode := range []tlspolicy.Mode{tlspolicy.Compatible, tlspolicy.RecommendedOnly} {
		n, p, logs, err := connect(t, r, mode)
		if err != nil {
			t.Fatalf("mode %s: %v", mode, err)
		}
		if n.SuiteName != "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" || n.Class != tlspolicy.Recommended || n.Warning != "" {
			t.Errorf("mode %s: negotiated %+v", mode, n)
		}
		if last, ok := p.Last(); !ok || last.Warning != "" || last.Suite != 0xc02f {
			t.Errorf("Last() = %+v %v", last, ok)
		}
		if logs != "" {
			t.Errorf("mode %s: logged %q, want nothing", mode, logs)
		}
	}
}

func TestVsftpdDeprecatedSuite(t *testing.T) {
	r := startVsftpd(t, "ECDHE-RSA-AES128-SHA256", true)
	n, p, logs, err := connect(t, r, tlspolicy.Compatible)
	if err != nil {
		t.Fatalf("compatible: %v", err)
	}
	if n.SuiteName != "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256" || n.Class != tlspolicy.Deprecated {
		t.Errorf("negotiated %+v", n)
	}
	last, _ := p.Last()
	for _, s := range []string{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", r.ServerName, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"} {
		if !strings.Contains(last.Warning, s) {
			t.Errorf("status warning %q lacks %q", last.Warning, s)
		}
	}
	for _, s := range []string{"level=WARN", "suite=TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "server=" + r.ServerName, "recommendation="} {
		if !strings.Contains(logs, s) {
			t.Errorf("log lacks %q: %s", s, logs)
		}
	}

	_, p, _, err = connect(t, r, tlspolicy.RecommendedOnly)
	pe := policyErr(t, err)
	if !strings.Contains(pe.Msg, "mode recommended") || !strings.Contains(pe.Msg, "compatible") {
		t.Errorf("refusal does not explain the mode: %v", pe)
	}
	if _, ok := p.Last(); ok {
		t.Error("Last() set after a refusal")
	}
}

func TestVsftpdChaCha20Refused(t *testing.T) {
	r := startVsftpd(t, "ECDHE-RSA-CHACHA20-POLY1305", true)
	for _, mode := range []tlspolicy.Mode{tlspolicy.Compatible, tlspolicy.RecommendedOnly} {
		_, _, _, err := connect(t, r, mode)
		pe := policyErr(t, err)
		if !strings.Contains(pe.Msg, "accepted none") {
			t.Errorf("mode %s: %v", mode, pe)
		}
	}
}

func TestVsftpdDHEOnlyRefused(t *testing.T) {
	r := startVsftpd(t, "DHE-RSA-AES256-GCM-SHA384", true)
	_, _, _, err := connect(t, r, tlspolicy.Compatible)
	pe := policyErr(t, err)
	for _, s := range []string{"DHE suites", "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "does not implement", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"} {
		if !strings.Contains(pe.Msg, s) {
			t.Errorf("message lacks %q: %v", s, pe)
		}
	}
	_, _, _, err = connect(t, r, tlspolicy.RecommendedOnly)
	if pe := policyErr(t, err); !strings.Contains(pe.Msg, "set the TLS mode to compatible") {
		t.Errorf("message does not point to mode compatible: %v", pe)
	}
}

func check(t *testing.T, r *ftpstest.Real, mode tlspolicy.Mode) (tlspolicy.Status, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var out bytes.Buffer
	st, err := tlspolicy.Check(ctx, r.Addr, tlspolicy.Options{Mode: mode, ServerName: r.ServerName, CAPEM: [][]byte{r.CAPEM}, Timeout: 20 * time.Second}, &out)
	t.Logf("Check(vsftpd %s, %s) = %v, %v\n%s", r.Addr, mode, st, err, out.String())
	return st, out.String(), err
}

func suiteRow(out, suite string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "  "+suite+" ") {
			return strings.Join(strings.Fields(l), " ")
		}
	}
	return ""
}

func TestVsftpdCheck(t *testing.T) {
	cases := []struct {
		name    string
		ciphers string
		max12   bool
		mode    tlspolicy.Mode
		status  tlspolicy.Status
		rows    []string
		has     []string
	}{
		{"server default, TLS 1.3", "", false, tlspolicy.Compatible, tlspolicy.CheckPass,
			[]string{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 recommended accepted", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 recommended refused"},
			[]string{"negotiated:   TLS 1.3", "result: PASS"}},
		{"recommended and deprecated", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA256:AES128-SHA256", true, tlspolicy.Compatible, tlspolicy.CheckPass,
			[]string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 recommended accepted", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256 deprecated accepted",
				"TLS_RSA_WITH_AES_128_CBC_SHA256 deprecated accepted", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 recommended refused"},
			[]string{"negotiated:   TLS 1.2, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (recommended)", "also accepts deprecated", "result: PASS"}},
		{"deprecated only", "ECDHE-RSA-AES128-SHA256", true, tlspolicy.Compatible, tlspolicy.CheckWarn,
			[]string{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256 deprecated accepted", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 recommended refused"},
			[]string{"(deprecated)", "result: WARN"}},
		{"deprecated only, recommended mode", "ECDHE-RSA-AES128-SHA256", true, tlspolicy.RecommendedOnly, tlspolicy.CheckFail,
			[]string{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256 deprecated accepted"},
			[]string{"mode recommended", "result: FAIL"}},
		{"DHE only", "DHE-RSA-AES256-GCM-SHA384", true, tlspolicy.Compatible, tlspolicy.CheckFail,
			[]string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 recommended refused"},
			[]string{"needs one of them:", "result: FAIL"}},
		{"AES256-CBC-SHA384 only", "ECDHE-RSA-AES256-SHA384", true, tlspolicy.Compatible, tlspolicy.CheckFail,
			[]string{"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384 deprecated would accept (this device cannot use it)"},
			[]string{"needs one of them: YES", "result: FAIL"}},
	}
	for _, tc := range cases {
		if !tc.max12 && tlspolicy.ChaChaFirst() {
			// vsftpd follows this device's order: ChaCha20 (non-NIST), a warning.
			tc.status, tc.has = tlspolicy.CheckWarn, []string{"negotiated:   TLS 1.3, TLS_CHACHA20_POLY1305_SHA256 (non-NIST)", "result: WARN"}
		}
		t.Run(tc.name, func(t *testing.T) {
			r := startVsftpd(t, tc.ciphers, tc.max12)
			st, out, err := check(t, r, tc.mode)
			if st != tc.status {
				t.Errorf("status %v, want %v", st, tc.status)
			}
			if (st == tlspolicy.CheckFail) != (err != nil) {
				t.Errorf("status %v, error %v", st, err)
			}
			for _, want := range tc.rows {
				f := strings.Fields(want)
				if got := suiteRow(out, f[0]); got != want {
					t.Errorf("row %q, want %q", got, want)
				}
			}
			for _, s := range tc.has {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q", s)
				}
			}
			if n := strings.Count(out, "\n  TLS_"); n != 13+3 {
				t.Errorf("%d suite rows, want the spec's 13 and TLS 1.3's 3", n)
			}
		})
	}
}

// TestProFTPDDHEOnly: vsftpd 3.0.3 cannot serve DHE at all (it sets no DH
// parameters: "no shared cipher" even for OpenSSL's client), ProFTPD can.
// A ProFTPD offering only DHE is refused with a message naming the DHE
// suites, and Check finds that the server needs one of them.
func TestProFTPDDHEOnly(t *testing.T) {
	r, err := ftpstest.StartProFTPD(ftpstest.RealOptions{Ciphers: "DHE-RSA-AES256-GCM-SHA384", MaxTLS12: true})
	if err != nil {
		t.Fatalf("starting proftpd (install it with `scripts/ftpservers install`): %v", err)
	}
	t.Cleanup(func() { r.Close() })
	_, _, _, err = connect(t, r, tlspolicy.Compatible)
	pe := policyErr(t, err)
	for _, s := range []string{"DHE suites", "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "does not implement"} {
		if !strings.Contains(pe.Msg, s) {
			t.Errorf("message lacks %q: %v", s, pe)
		}
	}
	st, out, err := check(t, r, tlspolicy.Compatible)
	if st != tlspolicy.CheckFail || err == nil {
		t.Errorf("Check = %v, %v", st, err)
	}
	if got := suiteRow(out, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"); got != "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384 deprecated would accept (this device cannot use it)" {
		t.Errorf("row %q", got)
	}
	if !strings.Contains(out, "needs one of them: YES: in TLS 1.2 the server accepts only TLS_DHE_RSA_WITH_AES_256_GCM_SHA384") {
		t.Error("Check does not say the server needs a DHE suite")
	}
}

// TestRealServersDefaultCiphers: each real server with its default cipher
// list, capped at TLS 1.2, passes Check with a recommended suite.
func TestRealServersDefaultCiphers(t *testing.T) {
	for _, name := range ftpstest.RealServers() {
		t.Run(name, func(t *testing.T) {
			r, err := ftpstest.StartReal(name, ftpstest.RealOptions{MaxTLS12: true})
			if err != nil {
				t.Fatalf("starting %s (install it with `scripts/ftpservers install`): %v", name, err)
			}
			t.Cleanup(func() { r.Close() })
			st, out, err := check(t, r, tlspolicy.Compatible)
			if st != tlspolicy.CheckPass || err != nil {
				t.Errorf("Check = %v, %v", st, err)
			}
			if !strings.Contains(out, "negotiated:   TLS 1.2, ") || !strings.Contains(out, "(recommended)\n") {
				t.Error("no recommended TLS 1.2 suite negotiated")
			}
		})
	}
}

// TestVsftpdECDSA: the ECDSA suites of the table against an ECDSA server.
func TestVsftpdECDSA(t *testing.T) {
	for _, tc := range []struct {
		ciphers string
		suite   string
		class   tlspolicy.Class
	}{
		{"ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", tlspolicy.Recommended},
		{"ECDHE-ECDSA-AES128-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", tlspolicy.Deprecated},
	} {
		r, err := ftpstest.StartVsftpd(ftpstest.RealOptions{Ciphers: tc.ciphers, MaxTLS12: true, ECDSA: true})
		if err != nil {
			t.Fatalf("starting vsftpd (install it with `scripts/ftpservers install`): %v", err)
		}
		n, _, logs, err := connect(t, r, tlspolicy.Compatible)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.ciphers, err)
		}
		if n.SuiteName != tc.suite || n.Class != tc.class || (n.Warning != "") != (tc.class == tlspolicy.Deprecated) ||
			strings.Contains(logs, "level=WARN") != (tc.class == tlspolicy.Deprecated) {
			t.Errorf("%s: %+v, logs %q", tc.ciphers, n, logs)
		}
	}
}
