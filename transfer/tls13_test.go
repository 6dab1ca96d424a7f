package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// startChaCha starts a real server whose OpenSSL offers only
// TLS_CHACHA20_POLY1305_SHA256 in TLS 1.3 (ciphers: its TLS 1.2 list, ""
// for its default, which has recommended suites).
func startChaCha(t *testing.T, name, ciphers string) *target {
	t.Helper()
	return startTargetWith(t, name, ftpstest.Options{}, ftpstest.RealOptions{TLS13Suites: "TLS_CHACHA20_POLY1305_SHA256", Ciphers: ciphers})
}

// chachaUpload uploads a file to tg under mode and returns the policy,
// every accepted handshake and the error.
func chachaUpload(t *testing.T, tg *target, mode tlspolicy.Mode) (*tlspolicy.Policy, []tlspolicy.Negotiated, []byte, error) {
	t.Helper()
	var mu sync.Mutex
	var hs []tlspolicy.Negotiated
	p, err := tlspolicy.New(tlspolicy.Options{Mode: mode, ServerName: tg.serverName, CAPEM: [][]byte{tg.capem}, Logger: testLogger(t),
		OnNegotiated: func(n tlspolicy.Negotiated) { mu.Lock(); hs = append(hs, n); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	cfg := tg.config(t, false)
	cfg.TLS = p.Config()
	c := New(cfg)
	defer c.Close()
	local, data := localFile(t, 300<<10)
	ctx, cancel := context.WithTimeout(context.Background(), within(60*time.Second))
	defer cancel()
	_, err = c.Upload(ctx, Job{LocalPath: local, Remote: "in/a.jpg", TempID: "c13"})
	mu.Lock()
	defer mu.Unlock()
	return p, append([]tlspolicy.Negotiated(nil), hs...), data, err
}

// TestTLS13ChaCha20: real servers that choose ChaCha20 in TLS 1.3. Mode
// compatible uploads over it with the warning; mode recommended refuses
// it before any FTP command, connects again at once with TLS 1.2 and a
// recommended suite, and uploads.
func TestTLS13ChaCha20(t *testing.T) {
	for _, name := range ftpstest.RealServers() {
		t.Run(name, func(t *testing.T) {
			tg := startChaCha(t, name, "")
			_, hs, data, err := chachaUpload(t, tg, tlspolicy.Compatible)
			if err != nil {
				t.Fatalf("compatible: %v", err)
			}
			wantFile(t, tg, "in/a.jpg", data)
			if len(hs) < 2 || hs[0].Version != tls.VersionTLS13 || hs[0].Suite != tls.TLS_CHACHA20_POLY1305_SHA256 ||
				hs[0].Class != tlspolicy.NonNIST || !strings.Contains(hs[0].Warning, "NIST SP 800-52r2 does not list") {
				t.Fatalf("compatible handshakes %+v: want TLS 1.3 ChaCha20 (non-NIST) with a warning", hs)
			}

			p, hs, data, err := chachaUpload(t, tg, tlspolicy.RecommendedOnly)
			if err != nil {
				t.Fatalf("recommended: %v", err)
			}
			wantFile(t, tg, "in/a.jpg", data)
			if !p.TLS13Refused() || len(hs) < 2 {
				t.Fatalf("recommended: refused %v, handshakes %+v", p.TLS13Refused(), hs)
			}
			for _, n := range hs {
				if n.Version != tls.VersionTLS12 || n.Class != tlspolicy.Recommended || !strings.Contains(n.Warning, "using TLS 1.2") {
					t.Fatalf("recommended handshake %+v: want TLS 1.2, a recommended suite and the warning", n)
				}
			}
			t.Logf("recommended: %v, warning %q", hs[0], hs[0].Warning)
		})
	}
}

// TestTLS13ChaCha20NoFallback: the server chooses ChaCha20 in TLS 1.3 and
// has only a deprecated suite in TLS 1.2: mode recommended refuses both
// with one message that names both and what to do; nothing is uploaded.
func TestTLS13ChaCha20NoFallback(t *testing.T) {
	tg := startChaCha(t, "vsftpd", "ECDHE-RSA-AES128-SHA256")
	_, hs, _, err := chachaUpload(t, tg, tlspolicy.RecommendedOnly)
	if err == nil || len(hs) != 0 {
		t.Fatalf("uploaded (%v), handshakes %+v: want a refusal", err, hs)
	}
	e := asError(t, err)
	if e.Class != TLSPolicy || strings.Count(e.Error(), "\n") != 0 {
		t.Fatalf("class %v: %v", e.Class, err)
	}
	for _, s := range []string{"accepted none of the suites allowed in mode recommended", "TLS_CHACHA20_POLY1305_SHA256", "AES-GCM suite in TLS 1.3", "compatible"} {
		if !strings.Contains(e.Msg, s) {
			t.Errorf("message lacks %q: %s", s, e.Msg)
		}
	}
	if strings.Contains(tg.real.LogText(), "USER ") {
		t.Error("a login command reached the server")
	}
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *transfer.Error", err, err)
	}
	return e
}
