package tlspolicy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"
)

// HandshakeError, transfer's way to learn a handshake error's type: the
// handshake's error explained, nil after a good handshake, nil when the
// handshake never started.
func TestHandshakeError(t *testing.T) {
	ca := newTestCA(t, "tlspolicy test CA")
	other := newTestCA(t, "some other CA")
	r := startResponder(t, &tls.Config{Certificates: []tls.Certificate{ca.issue(t, leafOpts{})}}, nil)
	ctx := context.Background()
	timeout := within(10 * time.Second)

	good, err := New(Options{ServerName: "localhost", CAPEM: [][]byte{ca.pem}})
	if err != nil {
		t.Fatal(err)
	}
	if err := HandshakeError(ctx, r.addr, good.Config(), timeout); err != nil {
		t.Errorf("good handshake: %v, want nil", err)
	}

	bad, err := New(Options{ServerName: "localhost", CAPEM: [][]byte{other.pem}})
	if err != nil {
		t.Fatal(err)
	}
	err = HandshakeError(ctx, r.addr, bad.Config(), timeout)
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != KindCertificate {
		t.Errorf("unknown CA: %v, want a certificate *Error", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := HandshakeError(ctx, closed, good.Config(), timeout); err != nil {
		t.Errorf("refused connection: %v, want nil (the handshake never started)", err)
	}
}
