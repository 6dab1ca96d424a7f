//go:build openssl

package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// engineConfig is tg's Config with a Policy that has the OpenSSL engine.
func engineConfig(t *testing.T, tg *target, o tlspolicy.Options) (Config, *tlspolicy.Policy) {
	t.Helper()
	o.ServerName, o.CAPEM, o.Engine = tg.serverName, [][]byte{tg.capem}, Engine()
	p, err := tlspolicy.New(o)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tg.config(t, o.MaxTLS12)
	cfg.TLS, cfg.Policy = p.Config(), p
	cfg.Timeout, cfg.ConnectTimeout = 30*time.Second, 30*time.Second // 2 shared cores, -race
	return cfg, p
}

// dropIdle closes c's idle sessions: the next upload dials.
func dropIdle(c *Client) {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, s := range idle {
		s.close()
	}
}

// TestEngineEverySuite: each of the 13 suites alone on a real server (TLS
// 1.2): transfer.Client uploads; the file is whole on the server, the
// suite is the one, the data connections resumed, and the 6 crypto/tls
// implements went through crypto/tls, the 7 others through OpenSSL.
func TestEngineEverySuite(t *testing.T) {
	dh := dh2048(t)
	for _, su := range tlspolicy.Table() {
		t.Run(su.OpenSSL, func(t *testing.T) {
			server, o := ftpstest.SuiteServer(su.OpenSSL, dh)
			tg := startTargetWith(t, server, ftpstest.Options{}, o)
			var got []tlspolicy.Negotiated
			cfg, _ := engineConfig(t, tg, tlspolicy.Options{MaxTLS12: true, OnNegotiated: func(n tlspolicy.Negotiated) { got = append(got, n) }})
			c := New(cfg)
			defer c.Close()
			local, data := localFile(t, 300<<10)
			res, err := c.Upload(context.Background(), Job{LocalPath: local, Remote: "s/" + su.OpenSSL + ".jpg", TempID: "s1"})
			if err != nil {
				t.Fatalf("upload: %v", err)
			}
			wantFile(t, tg, "s/"+su.OpenSSL+".jpg", data)
			want := "crypto/tls"
			if !su.Implemented {
				want = "openssl"
			}
			if res.TLSEngine != want {
				t.Errorf("engine %q, want %q", res.TLSEngine, want)
			}
			if len(got) < 2 {
				t.Fatalf("%d handshakes verified, want the control and a data connection's", len(got))
			}
			for i, n := range got {
				if n.Suite != su.ID || n.Version != tls.VersionTLS12 {
					t.Errorf("handshake %d: %s %s, want %s", i, tlspolicy.VersionName(n.Version), n.SuiteName, su.Name)
				}
				if i > 0 && !n.Resumed {
					t.Errorf("handshake %d (data): not resumed", i)
				}
			}
			if g, e := c.goDials.Load(), c.engineDials.Load(); su.Implemented && (g != 1 || e != 0) || !su.Implemented && (g != 1 || e != 1) {
				t.Errorf("dials: crypto/tls %d, openssl %d", g, e)
			}
		})
	}
}

// TestEngineFallbackRemembered: the first connect to an AES256-SHA256-only
// server tries crypto/tls and falls back; after that the Client dials
// OpenSSL straight away (counted, not timed).
func TestEngineFallbackRemembered(t *testing.T) {
	tg := startTargetWith(t, "vsftpd", ftpstest.Options{}, ftpstest.RealOptions{MaxTLS12: true, Ciphers: "AES256-SHA256"})
	cfg, _ := engineConfig(t, tg, tlspolicy.Options{MaxTLS12: true})
	c := New(cfg)
	defer c.Close()
	for i := range 2 {
		local, data := localFile(t, 64<<10)
		remote := "f/" + string(rune('a'+i)) + ".jpg"
		res, err := c.Upload(context.Background(), Job{LocalPath: local, Remote: remote, TempID: remote[2:3]})
		if err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
		wantFile(t, tg, remote, data)
		if res.TLSEngine != "openssl" {
			t.Errorf("upload %d: engine %q", i, res.TLSEngine)
		}
		dropIdle(c)
	}
	if g, e, f := c.goDials.Load(), c.engineDials.Load(), c.fallbacks.Load(); g != 1 || e != 2 || f != 1 {
		t.Errorf("crypto/tls dials %d, openssl dials %d, fallbacks %d; want 1, 2, 1", g, e, f)
	}
}

// TestEngineNoFallback: a certificate the policy refuses, and a server
// that is not listening, are not reasons to try OpenSSL.
func TestEngineNoFallback(t *testing.T) {
	t.Run("certificate", func(t *testing.T) {
		tg := startTargetWith(t, "vsftpd", ftpstest.Options{}, ftpstest.RealOptions{MaxTLS12: true})
		cfg, _ := engineConfig(t, tg, tlspolicy.Options{MaxTLS12: true})
		other, err := ftpstest.NewCA(false)
		if err != nil {
			t.Fatal(err)
		}
		p, err := tlspolicy.New(tlspolicy.Options{ServerName: tg.serverName, CAPEM: [][]byte{other.PEM}, MaxTLS12: true, Engine: Engine()})
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS, cfg.Policy = p.Config(), p
		c := New(cfg)
		defer c.Close()
		local, _ := localFile(t, 1000)
		_, err = c.Upload(context.Background(), Job{LocalPath: local, Remote: "x.jpg"})
		if ClassOf(err) != Certificate {
			t.Fatalf("got %v (%v), want a certificate error", err, ClassOf(err))
		}
		if n := c.engineDials.Load(); n != 0 || c.fallbacks.Load() != 0 {
			t.Errorf("%d OpenSSL dials after a certificate error", n)
		}
	})
	t.Run("network", func(t *testing.T) {
		tg := startTargetWith(t, "vsftpd", ftpstest.Options{}, ftpstest.RealOptions{MaxTLS12: true})
		cfg, _ := engineConfig(t, tg, tlspolicy.Options{MaxTLS12: true})
		tg.real.Close() // nothing listens any more
		c := New(cfg)
		defer c.Close()
		local, _ := localFile(t, 1000)
		_, err := c.Upload(context.Background(), Job{LocalPath: local, Remote: "x.jpg"})
		if ClassOf(err) != Transient {
			t.Fatalf("got %v (%v), want a transient network error", err, ClassOf(err))
		}
		if n := c.engineDials.Load(); n != 0 || c.fallbacks.Load() != 0 {
			t.Errorf("%d OpenSSL dials after a network error", n)
		}
	})
}

// TestEngineRecommendedRefuses: mode recommended and a server with only a
// deprecated suite crypto/tls lacks: refused with one line, nothing sent.
func TestEngineRecommendedRefuses(t *testing.T) {
	tg := startTargetWith(t, "vsftpd", ftpstest.Options{}, ftpstest.RealOptions{MaxTLS12: true, Ciphers: "AES256-SHA256"})
	cfg, _ := engineConfig(t, tg, tlspolicy.Options{MaxTLS12: true, Mode: tlspolicy.RecommendedOnly})
	c := New(cfg)
	defer c.Close()
	local, _ := localFile(t, 1000)
	_, err := c.Upload(context.Background(), Job{LocalPath: local, Remote: "r.jpg"})
	if ClassOf(err) != TLSPolicy || strings.Contains(err.Error(), "\n") {
		t.Fatalf("got %v (%v), want one tls-policy line", err, ClassOf(err))
	}
	if strings.Contains(tg.real.LogText(), "USER") {
		t.Error("the server saw USER")
	}
	if c.engineDials.Load() != 0 {
		t.Error("OpenSSL tried: in mode recommended it offers nothing crypto/tls did not")
	}
	if !strings.Contains(err.Error(), "mode recommended") {
		t.Errorf("the error does not name the mode: %v", err)
	}
	t.Logf("error: %v", err)
}

// TestEngineTLS13: a TLS 1.3 server on the engine path (the control
// connection is forced through OpenSSL: no realistic server makes
// crypto/tls fail in TLS 1.3, whose AES-GCM suites both engines have), and
// vsftpd's require_ssl_reuse: whole files, no 426.
func TestEngineTLS13(t *testing.T) {
	for _, server := range []string{"vsftpd", "proftpd"} {
		t.Run(server, func(t *testing.T) {
			tg := startTargetWith(t, server, ftpstest.Options{}, ftpstest.RealOptions{})
			var got []tlspolicy.Negotiated
			cfg, _ := engineConfig(t, tg, tlspolicy.Options{OnNegotiated: func(n tlspolicy.Negotiated) { got = append(got, n) }})
			c := New(cfg)
			defer c.Close()
			c.viaEngine.Store(true)
			for i, n := range []int{2<<20 + 7, 10 << 10} {
				local, data := localFile(t, n)
				remote := "t/" + string(rune('a'+i)) + ".jpg"
				res, err := c.Upload(context.Background(), Job{LocalPath: local, Remote: remote, TempID: remote[2:3]})
				if err != nil {
					t.Fatalf("upload %d: %v", i, err)
				}
				wantFile(t, tg, remote, data)
				if res.TLSEngine != "openssl" {
					t.Errorf("engine %q", res.TLSEngine)
				}
			}
			for i, n := range got {
				if n.Version != tls.VersionTLS13 || i > 0 && !n.Resumed {
					t.Errorf("handshake %d: %s %s resumed %v", i, tlspolicy.VersionName(n.Version), n.SuiteName, n.Resumed)
				}
			}
			if log := tg.real.LogText(); strings.Contains(log, `"426 `) || strings.Contains(log, "426 Transfer aborted") {
				t.Errorf("the server answered 426")
			}
		})
	}
}

// TestEngineWrongCertificate: through the engine, the policy refuses a
// certificate before USER is sent; a pin of the right key passes.
func TestEngineWrongCertificate(t *testing.T) {
	tg := startTargetWith(t, "vsftpd", ftpstest.Options{}, ftpstest.RealOptions{MaxTLS12: true, Ciphers: "AES256-SHA256"})
	other, err := ftpstest.NewCA(false)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tlspolicy.New(tlspolicy.Options{ServerName: tg.serverName, CAPEM: [][]byte{other.PEM}, MaxTLS12: true, Engine: Engine()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := tg.config(t, true)
	cfg.TLS, cfg.Policy = p.Config(), p
	c := New(cfg)
	defer c.Close()
	local, _ := localFile(t, 1000)
	_, err = c.Upload(context.Background(), Job{LocalPath: local, Remote: "w.jpg"})
	if ClassOf(err) != Certificate || c.engineDials.Load() != 1 {
		t.Fatalf("got %v (%v), %d OpenSSL dials; want a certificate error from the engine path", err, ClassOf(err), c.engineDials.Load())
	}
	if strings.Contains(tg.real.LogText(), "USER") {
		t.Error("the server saw USER")
	}
}

// TestEngineWeakDH: a 1024-bit DHE group is refused naming its size.
func TestEngineWeakDH(t *testing.T) {
	dh, err := filepath.Abs("ossl/testdata/dh1024.pem")
	if err != nil {
		t.Fatal(err)
	}
	tg := startTargetWith(t, "proftpd", ftpstest.Options{}, ftpstest.RealOptions{MaxTLS12: true, Ciphers: "DHE-RSA-AES256-GCM-SHA384:@SECLEVEL=0",
		Extra: []string{"TLSDHParamFile " + dh}})
	cfg, _ := engineConfig(t, tg, tlspolicy.Options{MaxTLS12: true})
	c := New(cfg)
	defer c.Close()
	local, _ := localFile(t, 1000)
	_, err = c.Upload(context.Background(), Job{LocalPath: local, Remote: "d.jpg"})
	var te *Error
	if !errors.As(err, &te) || te.Class != TLSPolicy || !strings.Contains(te.Msg, "1024-bit") {
		t.Fatalf("got %v, want a tls-policy error naming the 1024-bit group", err)
	}
}

// TestEnginePin: through the engine, a certificate no CA vouches for is
// accepted on its key pin, and refused without it (before USER).
func TestEnginePin(t *testing.T) {
	cert, err := ftpstest.SelfSigned(ftpstest.CertOptions{}, false)
	if err != nil {
		t.Fatal(err)
	}
	tg := startTargetWith(t, "vsftpd", ftpstest.Options{}, ftpstest.RealOptions{MaxTLS12: true, Ciphers: "AES256-SHA256", Cert: cert})
	_, spki := tlspolicy.CertPins(cert.Leaf)
	for _, pinned := range []bool{true, false} {
		o := tlspolicy.Options{ServerName: tg.serverName, MaxTLS12: true, Engine: Engine()}
		if pinned {
			o.Pins = []string{spki}
		}
		p, err := tlspolicy.New(o)
		if err != nil {
			t.Fatal(err)
		}
		c := New(Config{Host: tg.host, Port: tg.port, User: tg.user, Password: tg.pass, TLS: p.Config(), Policy: p,
			Timeout: 30 * time.Second, Logger: testLogger(t)})
		local, data := localFile(t, 5000)
		res, err := c.Upload(context.Background(), Job{LocalPath: local, Remote: "p.jpg"})
		c.Close()
		switch {
		case pinned && err != nil:
			t.Fatalf("pinned: %v", err)
		case pinned:
			wantFile(t, tg, "p.jpg", data)
			if res.TLSEngine != "openssl" {
				t.Errorf("engine %q", res.TLSEngine)
			}
		case ClassOf(err) != Certificate:
			t.Fatalf("not pinned: got %v (%v), want a certificate error", err, ClassOf(err))
		}
	}
}

// TestEngineConnTest: `camftpd check`'s walk against a server that needs
// OpenSSL: every step passes on the engine path (the deprecated suite
// warns), the handshake step names the engine, the data connection
// resumed, and nothing is left on the server.
func TestEngineConnTest(t *testing.T) {
	tg := startTargetWith(t, "vsftpd", ftpstest.Options{}, ftpstest.RealOptions{MaxTLS12: true, Ciphers: "AES256-SHA256"})
	cfg, _ := engineConfig(t, tg, tlspolicy.Options{MaxTLS12: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rs := Test(ctx, cfg, TestOptions{Remote: "CHECK0001.JPG"})
	for _, r := range rs {
		t.Logf("%-12s %-5v %s", r.Step, r.Verdict, r.Detail)
		switch {
		case r.Step == StepHandshake:
			if r.Verdict != StepWarn || !strings.Contains(r.Detail, "TLS_RSA_WITH_AES_256_CBC_SHA256") || !strings.Contains(r.Detail, "through OpenSSL") {
				t.Errorf("handshake step: %v %s", r.Verdict, r.Detail)
			}
		case r.Step == StepData:
			if r.Verdict != StepOK || !strings.Contains(r.Detail, "resumed the control") {
				t.Errorf("data step: %v %s", r.Verdict, r.Detail)
			}
		case r.Step == StepHash, r.Step == StepMkdir: // vsftpd has no hash command; no folder to make
		case r.Verdict != StepOK:
			t.Errorf("step %s: %v %s (fix: %s)", r.Step, r.Verdict, r.Detail, r.Fix)
		}
	}
}

// TestEngineNoCommonEither: a server whose only suite is in neither
// engine's offer (AES128-SHA, outside the spec's table): one line naming
// both engines and what to enable; the failed engine handshake ends the
// Client's choice of the engine.
func TestEngineNoCommonEither(t *testing.T) {
	tg := startTargetWith(t, "vsftpd", ftpstest.Options{}, ftpstest.RealOptions{MaxTLS12: true, Ciphers: "AES128-SHA"})
	cfg, _ := engineConfig(t, tg, tlspolicy.Options{MaxTLS12: true})
	c := New(cfg)
	defer c.Close()
	c.viaEngine.Store(true)
	local, _ := localFile(t, 1000)
	_, err := c.Upload(context.Background(), Job{LocalPath: local, Remote: "e.jpg"})
	if ClassOf(err) != TLSPolicy {
		t.Fatalf("got %v (%v), want a tls-policy error", err, ClassOf(err))
	}
	msg := err.Error()
	for _, want := range []string{"crypto/tls", "OpenSSL", "enable TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("not one line: %q", msg)
	}
	if c.viaEngine.Load() {
		t.Error("the Client still goes straight to OpenSSL after its handshake failed")
	}
	t.Logf("error: %s", msg)
}

// TestEngineActiveAndReadBack: on the engine path, active mode (the server
// connects to us; we are still the TLS client, resuming) and reading a
// file back with RETR (SameName Skip: the same shot already there is
// recognised by its sampled bytes, vsftpd having no hash command).
func TestEngineActiveAndReadBack(t *testing.T) {
	for _, active := range []bool{false, true} {
		t.Run(map[bool]string{false: "passive", true: "active"}[active], func(t *testing.T) {
			tg := startTargetWith(t, "vsftpd", ftpstest.Options{}, ftpstest.RealOptions{MaxTLS12: true, Ciphers: "AES256-SHA256", Active: true})
			cfg, _ := engineConfig(t, tg, tlspolicy.Options{MaxTLS12: true})
			cfg.Active, cfg.SameName = active, Skip
			c := New(cfg)
			defer c.Close()
			local, data := localFile(t, 300<<10)
			if _, err := c.Upload(context.Background(), Job{LocalPath: local, Remote: "a/x.jpg", TempID: "a1"}); err != nil {
				t.Fatalf("upload: %v", err)
			}
			wantFile(t, tg, "a/x.jpg", data)
			dropIdle(c)
			res, err := c.Upload(context.Background(), Job{LocalPath: local, Remote: "a/x.jpg", TempID: "a2"})
			if err != nil {
				t.Fatalf("second upload: %v", err)
			}
			if !res.Existing || res.Verified != "size+sample" || res.TLSEngine != "openssl" || c.retrs.Load() == 0 {
				t.Errorf("second upload: %+v, RETRs %d", res, c.retrs.Load())
			}
		})
	}
}

// TestEngineCancel: canceling an upload on the engine path mid-file ends
// it promptly with ctx's error, leaves no goroutine behind, and the next
// upload resumes the temporary file through OpenSSL.
func TestEngineCancel(t *testing.T) {
	tg := startTargetWith(t, "vsftpd", ftpstest.Options{}, ftpstest.RealOptions{MaxTLS12: true, Ciphers: "AES256-SHA256"})
	base := runtime.NumGoroutine()
	cfg, _ := engineConfig(t, tg, tlspolicy.Options{MaxTLS12: true})
	cfg.BandwidthLimit = 1 << 20 // 1 MiB/s: 4 s for the file
	c := New(cfg)
	local, data := localFile(t, 4<<20)
	ctx, cancel := context.WithCancel(context.Background())
	job := Job{LocalPath: local, Remote: "c/x.jpg", TempID: "c1", Progress: func(sent, _ int64) {
		if sent >= 1<<20 {
			cancel()
		}
	}}
	start := time.Now()
	_, err := c.Upload(ctx, job)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > within(10*time.Second) {
		t.Errorf("canceled upload returned after %v", d)
	}
	job.Progress = nil
	res, err := c.Upload(context.Background(), job)
	if err != nil {
		t.Fatalf("second upload: %v", err)
	}
	wantFile(t, tg, "c/x.jpg", data)
	if res.ResumedFrom == 0 || res.TLSEngine != "openssl" {
		t.Errorf("second upload: resumed from %d, engine %q", res.ResumedFrom, res.TLSEngine)
	}
	c.Close()
	goroutines(t, base)
}

// TestEngineCheckEverySuite: `camftpd check` of the openssl build prints
// 13 usable rows against each suite's server (see checkEverySuite).
func TestEngineCheckEverySuite(t *testing.T) { checkEverySuite(t) }
