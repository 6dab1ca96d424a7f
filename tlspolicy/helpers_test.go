package tlspolicy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// testCA is transfer/ftpstest's throw-away CA: the one certificate
// generator of the tests, the bench and the demo. (So ftpstest must not
// import tlspolicy: this in-package test would close an import cycle.)
type testCA struct {
	ca   *ftpstest.CA
	cert *x509.Certificate
	pem  []byte
}

// newTestCA makes an ECDSA CA whose name starts with name.
func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	ca, err := ftpstest.NewNamedCA(true, name)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{ca: ca, cert: ca.Cert, pem: ca.PEM}
}

type leafOpts struct {
	ecdsa     bool
	dns       []string
	notBefore time.Time
	notAfter  time.Time
}

// issue makes a server certificate for "localhost" and 127.0.0.1 (unless
// o.dns says otherwise), valid from an hour ago for a day by default.
func (ca *testCA) issue(t testing.TB, o leafOpts) tls.Certificate {
	t.Helper()
	c, err := ca.ca.IssueCert(ftpstest.CertOptions{ECDSA: o.ecdsa, DNSNames: o.dns, NotBefore: o.notBefore, NotAfter: o.notAfter})
	if err != nil {
		t.Fatal(err)
	}
	return c.TLS
}

// responder is an in-test FTPES server: 220, AUTH TLS -> 234, TLS, then
// 221 to QUIT and 502 to anything else.
type responder struct {
	addr      string
	ln        net.Listener
	tlsCfg    *tls.Config
	greeting  string // default "220 test responder"
	authReply string // default "234 AUTH TLS ok"
	silent    bool   // accept and say nothing
	// silentAfter counts connections; from the silentFrom-th on, the
	// responder says nothing.
	silentAfter *atomic.Int32
	silentFrom  int32
	handshakes  atomic.Int32
	quits       atomic.Int32
	hsErrs      chan error
	wg          sync.WaitGroup
	mu          sync.Mutex
	conns       map[net.Conn]bool
}

// serverConfig returns a server config with an RSA and an ECDSA
// certificate of ca, restricted to suites (nil: Go's defaults) and max.
func serverConfig(t testing.TB, ca *testCA, suites []uint16, max uint16) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, leafOpts{}), ca.issue(t, leafOpts{ecdsa: true})},
		CipherSuites: suites,
		MinVersion:   tls.VersionTLS10,
		MaxVersion:   max,
	}
}

func startResponder(t testing.TB, cfg *tls.Config, mod func(*responder)) *responder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &responder{addr: ln.Addr().String(), ln: ln, tlsCfg: cfg, greeting: "220 test responder",
		authReply: "234 AUTH TLS ok", conns: map[net.Conn]bool{}, hsErrs: make(chan error, 100)}
	if mod != nil {
		mod(r)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns[c] = true
			r.mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer func() {
					c.Close()
					r.mu.Lock()
					delete(r.conns, c)
					r.mu.Unlock()
				}()
				r.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

// serve plays one FTP server session on c. A write that fails means the
// client went away: the session ends, and the test judges the client side.
func (r *responder) serve(c net.Conn) {
	if err := c.SetDeadline(time.Now().Add(within(60 * time.Second))); err != nil {
		return // closed by the cleanup already
	}
	if r.silent || (r.silentAfter != nil && r.silentAfter.Add(1) >= r.silentFrom) {
		// Say nothing until the client gives up (or the deadline): what
		// it sends, and how the read ends, do not matter.
		_, _ = c.Read(make([]byte, 1))
		return
	}
	br := bufio.NewReader(c)
	if _, err := c.Write([]byte(r.greeting + "\r\n")); err != nil {
		return
	}
	line, err := br.ReadString('\n')
	if err != nil {
		return
	}
	if strings.TrimSpace(line) != "AUTH TLS" {
		_, _ = c.Write([]byte("530 AUTH TLS first\r\n")) // the session ends here either way
		return
	}
	if _, err := c.Write([]byte(r.authReply + "\r\n")); err != nil || !strings.HasPrefix(r.authReply, "234") {
		return
	}
	tc := tls.Server(c, r.tlsCfg)
	if err := tc.Handshake(); err != nil {
		select {
		case r.hsErrs <- err:
		default:
		}
		return
	}
	r.handshakes.Add(1)
	tr := bufio.NewReader(tc)
	for {
		l, err := tr.ReadString('\n')
		if err != nil {
			return
		}
		if strings.TrimSpace(l) == "QUIT" {
			r.quits.Add(1)
			_, _ = tc.Write([]byte("221 bye\r\n")) // the session ends here either way
			tc.Close()
			return
		}
		if _, err := tc.Write([]byte("502 not here\r\n")); err != nil {
			return
		}
	}
}

// lockedBuffer collects log output from any goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testLogger() (*slog.Logger, *lockedBuffer) {
	b := &lockedBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

func bufioReader(data []byte) *bufio.Reader {
	return bufio.NewReaderSize(bytes.NewReader(data), maxLine)
}
