package tlspolicy

import (
	"crypto/tls"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// TestTLS13ChaChaByMode: a TLS 1.3 handshake on ChaCha20 is refused in
// mode recommended (ErrTLS13NotNIST, and the Policy's Configs are capped
// at TLS 1.2 from then on) and passes the suite check in mode compatible
// (the certificate check comes next: none is given here).
func TestTLS13ChaChaByMode(t *testing.T) {
	chacha := tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_CHACHA20_POLY1305_SHA256}
	log, logs := testLogger()
	p, err := New(Options{Mode: RecommendedOnly, ServerName: "ftp.example", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if p.Config().MaxVersion != tls.VersionTLS13 || p.TLS13Refused() {
		t.Fatal("capped before any handshake")
	}
	err = p.VerifyConnection(chacha)
	pe := asErr(t, err, KindPolicy)
	if !errors.Is(err, ErrTLS13NotNIST) || !p.TLS13Refused() || p.Config().MaxVersion != tls.VersionTLS12 {
		t.Fatalf("refusal %v: Is %v, refused %v, MaxVersion %x", err, errors.Is(err, ErrTLS13NotNIST), p.TLS13Refused(), p.Config().MaxVersion)
	}
	for _, s := range []string{"TLS_CHACHA20_POLY1305_SHA256", "NIST SP 800-52r2", "TLS 1.2", "TLS_AES_256_GCM_SHA384", "Ciphersuites", "compatible"} {
		if !strings.Contains(pe.Msg, s) {
			t.Errorf("message lacks %q: %s", s, pe.Msg)
		}
	}
	_ = p.VerifyConnection(chacha)
	if n := strings.Count(logs.String(), "outside NIST"); n != 1 {
		t.Errorf("the cap was logged %d times, want once: %s", n, logs)
	}
	if w := p.warning13(tls.VersionTLS12, Suite{Class: Recommended}); !strings.Contains(w, "using TLS 1.2") {
		t.Errorf("capped TLS 1.2 warning %q", w)
	}
	// AES-GCM in TLS 1.3 still passes the suite check of the capped policy.
	if err := p.VerifyConnection(tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256}); errors.Is(err, ErrTLS13NotNIST) || err == nil {
		t.Errorf("AES-GCM in TLS 1.3: %v, want a certificate error (no certificate given)", err)
	}

	c, err := New(Options{Mode: Compatible, ServerName: "ftp.example", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	err = c.VerifyConnection(chacha)
	_ = asErr(t, err, KindCertificate)
	if c.TLS13Refused() || c.Config().MaxVersion != tls.VersionTLS13 {
		t.Errorf("compatible: %v, refused %v", err, c.TLS13Refused())
	}
	if w := c.warning13(tls.VersionTLS13, Suite{Class: NonNIST, Name: "TLS_CHACHA20_POLY1305_SHA256"}); !strings.Contains(w, "NIST SP 800-52r2 does not list") {
		t.Errorf("compatible warning %q", w)
	}
}

// TestTLS13Order: the order is read from crypto/tls's own ClientHello: all
// three suites, AES-GCM first on amd64 and arm64 with AES instructions,
// ChaCha20 first on GOARCH=arm (crypto/tls has no AES-GCM assembly there).
func TestTLS13Order(t *testing.T) {
	o := TLS13Order()
	t.Logf("GOARCH %s: TLS 1.3 order %s", runtime.GOARCH, suiteNames(o))
	if len(o) != 3 {
		t.Fatalf("order %v, want the three TLS 1.3 suites", o)
	}
	if runtime.GOARCH == "arm" && !ChaChaFirst() {
		t.Errorf("armv7 offers %s first, want ChaCha20", suiteNames(o[:1]))
	}
}
