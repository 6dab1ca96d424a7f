package tlspolicy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func runCheck(t *testing.T, addr string, opts Options) (Status, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within(60*time.Second))
	defer cancel()
	var out bytes.Buffer
	st, err := Check(ctx, addr, opts, &out)
	t.Logf("Check(%s) = %v, %v\n%s", addr, st, err, out.String())
	return st, out.String(), err
}

// row returns the table line of a suite.
func row(out, suite string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "  "+suite+" ") {
			return l
		}
	}
	return ""
}

func TestCheckAgainstResponder(t *testing.T) {
	ca := newTestCA(t, "tlspolicy test CA")
	cases := []struct {
		name     string
		suites   []uint16
		max      uint16
		mode     Mode
		status   Status
		accepted []string
		has      []string
	}{
		{"all six", allowed(Compatible), tls.VersionTLS13, Compatible, CheckPass,
			[]string{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA256"},
			[]string{"negotiated:   TLS 1.3", "(recommended)", "result: PASS", "also accepts deprecated", "needs one of them: no"}},
		{"recommended only", []uint16{0xc02f, 0xc030}, tls.VersionTLS12, RecommendedOnly, CheckPass,
			[]string{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
			[]string{"negotiated:   TLS 1.2", "result: PASS: the server uses recommended suites\n"}},
		{"deprecated only", []uint16{0xc027, 0x003c}, tls.VersionTLS12, Compatible, CheckWarn,
			[]string{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA256"},
			[]string{"(deprecated)", "warning:", "result: WARN", "ECDHE-RSA-AES128-GCM-SHA256"}},
		{"deprecated only, recommended mode", []uint16{0xc027}, tls.VersionTLS12, RecommendedOnly, CheckFail,
			[]string{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"},
			[]string{"connect:      FAILED", "mode recommended", "result: FAIL"}},
		{"chacha only", []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}, tls.VersionTLS12, Compatible, CheckFail,
			nil, []string{"needs one of them: probably", "result: FAIL"}},
		{"Go defaults (no CBC, no RSA key exchange)", nil, tls.VersionTLS12, RecommendedOnly, CheckPass,
			[]string{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"},
			[]string{"result: PASS", "certificate (verified)"}},
		{"TLS 1.3 only", nil, tls.VersionTLS13, Compatible, CheckPass,
			nil, []string{"seems to accept only TLS 1.3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := serverConfig(t, ca, tc.suites, tc.max)
			if tc.name == "TLS 1.3 only" {
				cfg.MinVersion = tls.VersionTLS13
			}
			r := startResponder(t, cfg, nil)
			st, out, err := runCheck(t, r.addr, Options{ServerName: "localhost", CAPEM: [][]byte{ca.pem}, Mode: tc.mode})
			if tc.max == tls.VersionTLS13 && ChaChaFirst() {
				// A Go server follows the client's order: ChaCha20, class
				// non-NIST, a warning (this device has no AES instructions).
				tc.status = CheckWarn
				tc.has = []string{"negotiated:   TLS 1.3, TLS_CHACHA20_POLY1305_SHA256 (non-NIST)", "result: WARN"}
			}
			if st != tc.status {
				t.Errorf("status %v, want %v", st, tc.status)
			}
			if (st == CheckFail) != (err != nil) {
				t.Errorf("status %v with error %v", st, err)
			}
			for _, s := range tc.has {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q", s)
				}
			}
			for _, s := range Table() {
				l := row(out, s.Name)
				if l == "" {
					t.Errorf("no row for %s", s.Name)
					continue
				}
				if !strings.Contains(l, s.Class.String()) {
					t.Errorf("row %q lacks class", l)
				}
				want := "refused"
				if contains(tc.accepted, s.Name) {
					want = "accepted"
				}
				if !strings.HasSuffix(strings.TrimSpace(l), want) {
					t.Errorf("row %q: want %s", l, want)
				}
			}
			if strings.Contains(out, "would accept") {
				t.Error("a Go server cannot accept a suite crypto/tls lacks")
			}
			// Every TLS session Check opened ended with QUIT.
			if h, q := r.handshakes.Load(), r.quits.Load(); h != q || h == 0 && st != CheckFail {
				t.Errorf("%d handshakes, %d QUIT", h, q)
			}
		})
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestCheckProtocolErrors(t *testing.T) {
	ca := newTestCA(t, "tlspolicy test CA")
	cfg := serverConfig(t, ca, nil, tls.VersionTLS13)
	t.Run("no AUTH TLS", func(t *testing.T) {
		r := startResponder(t, cfg, func(r *responder) { r.authReply = "500 AUTH not understood" })
		st, _, err := runCheck(t, r.addr, Options{ServerName: "localhost", CAPEM: [][]byte{ca.pem}})
		if st != CheckFail {
			t.Fatal(st)
		}
		pe := asErr(t, err, KindPolicy)
		if !strings.Contains(pe.Msg, "enable explicit FTPS") {
			t.Error(pe.Msg)
		}
	})
	t.Run("not FTP", func(t *testing.T) {
		r := startResponder(t, cfg, func(r *responder) { r.greeting = "SSH-2.0-OpenSSH_9.2" })
		st, _, err := runCheck(t, r.addr, Options{ServerName: "localhost"})
		if st != CheckFail || err == nil || !strings.Contains(err.Error(), "not an FTP reply") {
			t.Fatal(st, err)
		}
	})
	t.Run("421 on connect", func(t *testing.T) {
		r := startResponder(t, cfg, func(r *responder) { r.greeting = "421 too many connections" })
		st, _, err := runCheck(t, r.addr, Options{ServerName: "localhost"})
		if st != CheckFail || err == nil || !strings.Contains(err.Error(), "instead of 220") {
			t.Fatal(st, err)
		}
	})
	t.Run("silent server times out", func(t *testing.T) {
		r := startResponder(t, cfg, func(r *responder) { r.silent = true })
		start := time.Now()
		st, _, err := runCheck(t, r.addr, Options{ServerName: "localhost", Timeout: 300 * time.Millisecond})
		if st != CheckFail || err == nil || !strings.Contains(err.Error(), "no answer within 300ms") {
			t.Fatal(st, err)
		}
		if d := time.Since(start); d > within(10*time.Second) {
			t.Errorf("took %v", d)
		}
	})
	t.Run("ctx cancel", func(t *testing.T) {
		r := startResponder(t, cfg, func(r *responder) { r.silent = true })
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		st, err := Check(ctx, r.addr, Options{ServerName: "localhost", Timeout: time.Minute}, &bytes.Buffer{})
		if st != CheckFail || !errors.Is(err, context.Canceled) {
			t.Fatal(st, err)
		}
		if d := time.Since(start); d > within(10*time.Second) {
			t.Errorf("took %v", d)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		st, _, err := runCheck(t, addr, Options{})
		if st != CheckFail || err == nil || !strings.Contains(err.Error(), "check the server address") {
			t.Fatal(st, err)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		st, _, err := runCheck(t, "127.0.0.1:1", Options{Mode: "fast"})
		if st != CheckFail {
			t.Fatal(st)
		}
		if pe := asErr(t, err, KindPolicy); !strings.Contains(pe.Msg, `TLS mode "fast" is unknown`) {
			t.Errorf("message does not name the mode: %v", pe)
		}
	})
}

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		in   string
		code int
		text string
		err  string
	}{
		{"220 hello\r\n", 220, "hello", ""},
		{"220-first\r\n second\r\n220 last\r\n", 220, "first | second | last", ""},
		{"220-first\r\n220-not yet\r\n220 done\r\n", 220, "first | 220-not yet | done", ""},
		{"234 AUTH TLS ok\n", 234, "AUTH TLS ok", ""},
		{"220\r\n", 220, "", ""},
		{"SSH-2.0\r\n", 0, "", "not an FTP reply"},
		{"22\r\n", 0, "", "not an FTP reply"},
		{"220x\r\n", 0, "", "not an FTP reply"},
		{"099 x\r\n", 0, "", "not an FTP reply"},
		{"220 \x1b[31mred\r\n", 220, "?[31mred", ""},
		{"220-" + strings.Repeat("x\r\n", 200), 0, "", "more than 100 lines"},
		{strings.Repeat("2", 5000), 0, "", "longer than 4096"},
		{"220 no newline", 0, "", "EOF"},
	} {
		r, err := readReply(bufio.NewReaderSize(strings.NewReader(tc.in), maxLine))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", clip(tc.in), err, tc.err)
			}
			continue
		}
		if err != nil || r.Code != tc.code || r.Text != tc.text {
			t.Errorf("%q: %+v %v", tc.in, r, err)
		}
	}
}

// TestClientHelloProbe checks the hand-written ClientHello against a real
// TLS stack: crypto/tls accepts it and answers with a ServerHello choosing
// the offered suite, and refuses a suite it does not have.
func TestClientHelloProbe(t *testing.T) {
	ca := newTestCA(t, "tlspolicy test CA")
	r := startResponder(t, serverConfig(t, ca, allowed(Compatible), tls.VersionTLS12), nil)
	ctx := context.Background()
	for _, id := range []uint16{0xc02f, 0xc030, 0xc02c, 0xc027, 0xc023, 0x003c} {
		res, err := helloProbe(ctx, r.addr, "localhost", id, within(5*time.Second))
		if res != helloAccepted || err != nil {
			t.Errorf("0x%04x: %v %v", id, res, err)
		}
	}
	for _, s := range unimplemented() {
		res, err := helloProbe(ctx, r.addr, "localhost", s.ID, within(5*time.Second))
		if res != helloRefused || err != nil {
			t.Errorf("%s: %v %v", s.Name, res, err)
		}
	}
	// IP literal: no SNI.
	if res, err := helloProbe(ctx, r.addr, "127.0.0.1", 0xc02f, within(5*time.Second)); res != helloAccepted {
		t.Errorf("IP: %v %v", res, err)
	}
}

// TestCheckDeadlineDuringProbes: a deadline that ends during the probes
// still gives the verdict of the policy handshake.
func TestCheckDeadlineDuringProbes(t *testing.T) {
	ca := newTestCA(t, "tlspolicy test CA")
	cfg := serverConfig(t, ca, nil, tls.VersionTLS13)
	var n atomic.Int32
	r := startResponder(t, cfg, func(r *responder) { r.silentAfter = &n; r.silentFrom = 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	st, err := Check(ctx, r.addr, Options{ServerName: "localhost", CAPEM: [][]byte{ca.pem}, Timeout: time.Minute}, &out)
	t.Log(out.String())
	want := CheckPass
	if ChaChaFirst() { // the Go server follows the client's order: ChaCha20, a warning
		want = CheckWarn
	}
	if st != want || err != nil || !strings.Contains(out.String(), "incomplete: the check's time limit ran out") || strings.Count(out.String(), notProbed) != 13+3+2 {
		t.Fatalf("%v %v", st, err)
	}
}
