package tlspolicy_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// TestRealChaCha20TLS13: each real server, restricted to ChaCha20 in TLS
// 1.3 (OpenSSL Ciphersuites, server preference): mode compatible accepts
// it with the warning (logged); mode recommended refuses it with
// ErrTLS13NotNIST, and the Policy's next handshake is TLS 1.2 with a
// recommended suite and the warning that says why.
func TestRealChaCha20TLS13(t *testing.T) {
	for _, name := range ftpstest.RealServers() {
		t.Run(name, func(t *testing.T) {
			r, err := ftpstest.StartReal(name, ftpstest.RealOptions{TLS13Suites: "TLS_CHACHA20_POLY1305_SHA256"})
			if err != nil {
				t.Fatalf("starting %s (install it with `scripts/ftpservers install`): %v", name, err)
			}
			t.Cleanup(func() { r.Close() })
			n, _, logs, err := connect(t, r, tlspolicy.Compatible)
			if err != nil || n.Version != tls.VersionTLS13 || n.Suite != tls.TLS_CHACHA20_POLY1305_SHA256 || n.Class != tlspolicy.NonNIST ||
				!strings.Contains(n.Warning, "NIST SP 800-52r2 does not list") || !strings.Contains(logs, "level=WARN") {
				t.Fatalf("compatible: %+v, %v, logs %q", n, err, logs)
			}

			logs2 := &logBuf{}
			p, err := tlspolicy.New(tlspolicy.Options{Mode: tlspolicy.RecommendedOnly, ServerName: r.ServerName, CAPEM: [][]byte{r.CAPEM},
				Logger: slog.New(slog.NewTextHandler(logs2, nil)), Timeout: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			_, err = p.Probe(ctx, r.Addr)
			if pe := policyErr(t, err); !errors.Is(err, tlspolicy.ErrTLS13NotNIST) || !strings.Contains(pe.Msg, "TLS_CHACHA20_POLY1305_SHA256") {
				t.Fatalf("recommended: %v, want the ChaCha20 refusal", err)
			}
			n, err = p.Probe(ctx, r.Addr)
			if err != nil || n.Version != tls.VersionTLS12 || n.Class != tlspolicy.Recommended || !strings.Contains(n.Warning, "using TLS 1.2") {
				t.Fatalf("recommended, second handshake: %+v, %v", n, err)
			}
			t.Logf("recommended: %v; logs %s", n, logs2)
		})
	}
}

// TestVsftpdCheckTLS13: Check shows the TLS 1.3 suites with their class
// and the server's choice in either order; in mode recommended against a
// server that chooses ChaCha20 it reports the refusal, the TLS 1.2
// connection the camera uses instead, and WARN with what to do.
func TestVsftpdCheckTLS13(t *testing.T) {
	r, err := ftpstest.StartVsftpd(ftpstest.RealOptions{})
	if err != nil {
		t.Fatalf("starting vsftpd: %v", err)
	}
	st, out, err := check(t, r, tlspolicy.RecommendedOnly)
	r.Close()
	// vsftpd follows the client's order: the field case of an armv7 camera.
	for _, s := range []string{"TLS_AES_128_GCM_SHA256 recommended accepted", "TLS_AES_256_GCM_SHA384 recommended accepted", "TLS_CHACHA20_POLY1305_SHA256 non-NIST accepted"} {
		if got := suiteRow(out, strings.Fields(s)[0]); got != s {
			t.Errorf("row %q, want %q", got, s)
		}
	}
	if !strings.Contains(out, "ChaCha20 first (no AES instructions: armv7): TLS_CHACHA20_POLY1305_SHA256 (non-NIST)") ||
		!strings.Contains(out, "AES-GCM first (CPUs with AES instructions): TLS_AES_128_GCM_SHA256 (recommended)") {
		t.Error("no or wrong TLS 1.3 choice line")
	}
	// The field case: a device that offers ChaCha20 first (armv7) is
	// refused in TLS 1.3 and uses TLS 1.2; one with AES instructions passes.
	switch {
	case tlspolicy.ChaChaFirst() && (st != tlspolicy.CheckWarn || err != nil || !strings.Contains(out, "TLS 1.3:      REFUSED") || !strings.Contains(out, "negotiated:   TLS 1.2")):
		t.Errorf("ChaCha20 first: Check = %v, %v; want warn, refused in TLS 1.3, TLS 1.2", st, err)
	case !tlspolicy.ChaChaFirst() && (st != tlspolicy.CheckPass || err != nil || !strings.Contains(out, "negotiated:   TLS 1.3, TLS_AES_128_GCM_SHA256 (recommended)")):
		t.Errorf("AES-GCM first: Check = %v, %v; want pass on TLS 1.3 AES-128-GCM", st, err)
	}

	r, err = ftpstest.StartVsftpd(ftpstest.RealOptions{TLS13Suites: "TLS_CHACHA20_POLY1305_SHA256"})
	if err != nil {
		t.Fatalf("starting vsftpd: %v", err)
	}
	defer r.Close()
	st, out, err = check(t, r, tlspolicy.RecommendedOnly)
	if st != tlspolicy.CheckWarn || err != nil {
		t.Errorf("Check = %v, %v; want warn", st, err)
	}
	for _, s := range []string{"TLS 1.3:      REFUSED: tls-policy: server localhost chose TLS_CHACHA20_POLY1305_SHA256", "negotiated:   TLS 1.2, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 (recommended)",
		"result: WARN: in TLS 1.3 the server chose TLS_CHACHA20_POLY1305_SHA256", "Ciphersuites = TLS_AES_256_GCM_SHA384"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q", s)
		}
	}
	if got := suiteRow(out, "TLS_AES_128_GCM_SHA256"); got != "TLS_AES_128_GCM_SHA256 recommended refused" {
		t.Errorf("row %q", got)
	}
	st, out, _ = check(t, r, tlspolicy.Compatible)
	if st != tlspolicy.CheckWarn || !strings.Contains(out, "negotiated:   TLS 1.3, TLS_CHACHA20_POLY1305_SHA256 (non-NIST)") || !strings.Contains(out, "warning:      server localhost negotiated TLS_CHACHA20_POLY1305_SHA256 in TLS 1.3") {
		t.Errorf("compatible: %v", st)
	}
}
