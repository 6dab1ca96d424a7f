package transfer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// TestCertificateErrors: an unknown CA or a wrong name is a certificate
// error, with tlspolicy's config and with a plain crypto/tls config (whose
// error type goftp loses: Upload redoes the handshake to learn it). No
// password is sent to an unverified server.
func TestCertificateErrors(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	other, err := ftpstest.NewCA(false)
	if err != nil {
		t.Fatal(err)
	}
	pool := func(pem []byte) *x509.CertPool {
		p := x509.NewCertPool()
		p.AppendCertsFromPEM(pem)
		return p
	}
	policy := func(name string, ca []byte) *tls.Config {
		p, err := tlspolicy.New(tlspolicy.Options{ServerName: name, CAPEM: [][]byte{ca}})
		if err != nil {
			t.Fatal(err)
		}
		return p.Config()
	}
	cases := []struct {
		name string
		tls  *tls.Config
		want string
	}{
		{"policy/unknown-CA", policy("localhost", other.PEM), ""},
		{"policy/wrong-name", policy("camera.example", tg.capem), ""},
		{"plain/unknown-CA", &tls.Config{ServerName: "localhost", RootCAs: pool(other.PEM)}, "unknown authority"},
		{"plain/wrong-name", &tls.Config{ServerName: "camera.example", RootCAs: pool(tg.capem)}, "host name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := tg.config(t, false)
			cfg.TLS = c.tls
			p, _ := localFile(t, 10)
			tg.inproc.ResetStats()
			_, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: "x.jpg"})
			if ClassOf(err) != Certificate || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v (%v), want certificate error mentioning %q", err, ClassOf(err), c.want)
			}
			if strings.HasPrefix(c.name, "policy") {
				var pe *tlspolicy.Error
				if !errors.As(err, &pe) {
					t.Fatalf("no *tlspolicy.Error in %v", err)
				}
			}
			for _, cmd := range tg.inproc.Commands() {
				if strings.HasPrefix(cmd, "PASS") || strings.HasPrefix(cmd, "USER") {
					t.Fatalf("sent %q to an unverified server", cmd)
				}
			}
			t.Log(err)
		})
	}
}

// TestAuthTLSRefused: a server that refuses AUTH TLS gets no login and no
// file: a tls-policy error, never a plain FTP fallback.
func TestAuthTLSRefused(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	tg.inproc.SetFaults(ftpstest.Faults{Replies: map[string]string{"AUTH": "500 AUTH not understood"}})
	p, _ := localFile(t, 10)
	_, err := uploadOnce(t, tg.config(t, false), Job{LocalPath: p, Remote: "x.jpg"})
	if ClassOf(err) != TLSPolicy || !strings.Contains(err.Error(), "AUTH TLS") {
		t.Fatalf("%v (%v)", err, ClassOf(err))
	}
	for _, cmd := range tg.inproc.Commands() {
		if cmd != "AUTH TLS" && cmd != "QUIT" {
			t.Fatalf("sent %q after AUTH TLS was refused", cmd)
		}
	}
	t.Log(err)
}

// TestNoSessionReuse: when data connections do not resume the control
// connection's TLS session, vsftpd (require_ssl_reuse=YES) drops them: the
// error names TLS session reuse (goftp said "error reading response: EOF").
// ProFTPD must not hang a worker (goftp hung past 40 s with TLS 1.2).
func TestNoSessionReuse(t *testing.T) {
	for _, server := range []string{"vsftpd", "proftpd"} {
		for _, max12 := range []bool{false, true} {
			name := server + "/TLS1.3"
			if max12 {
				name = server + "/TLS1.2"
			}
			t.Run(name, func(t *testing.T) {
				tg := startTarget(t, server, false)
				cfg := tg.config(t, max12)
				cfg.TLS = cfg.TLS.Clone()
				cfg.TLS.SessionTicketsDisabled = true // no resumption at all
				cfg.Timeout = 3 * time.Second
				p, _ := localFile(t, 256<<10)
				start := time.Now()
				_, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: "x.jpg"})
				el := time.Since(start)
				if err == nil || !strings.Contains(err.Error(), "session") || el > within(3*cfg.Timeout) {
					t.Fatalf("%v after %v: want an error naming TLS session reuse within %v", err, el, 3*cfg.Timeout)
				}
				t.Logf("%v (%v) after %v", err, ClassOf(err), el.Round(time.Millisecond))
			})
		}
	}
}

// TestHostName: Host given as a name is resolved at each connect and is the
// default ServerName.
func TestHostName(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	cfg := tg.config(t, false)
	cfg.Host = "localhost"
	cfg.TLS = &tls.Config{RootCAs: x509.NewCertPool()}
	cfg.TLS.RootCAs.AppendCertsFromPEM(tg.capem)
	p, data := localFile(t, 1000)
	if _, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: "h/x.jpg"}); err != nil {
		t.Fatal(err)
	}
	wantFile(t, tg, "h/x.jpg", data)
	cfg.Host = "no-such-host.invalid"
	_, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: "h/x.jpg"})
	if ClassOf(err) != Transient || !strings.Contains(err.Error(), "resolve") {
		t.Fatalf("unknown host: %v (%v)", err, ClassOf(err))
	}
	_ = context.Background
}
