//go:build openssl

package ossl

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// certListener is a loopback listener and a test CA's RSA certificate
// for the TLS server behind it.
func certListener(tb testing.TB) (tls.Certificate, net.Listener) {
	tb.Helper()
	ca, err := ftpstest.NewCA(false)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := ca.IssueCert(ftpstest.CertOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return cert.TLS, ln
}

// silent accepts connections and, with hs, runs the TLS handshake; then it
// sends nothing until the test ends.
func silent(t *testing.T, hs bool) string {
	t.Helper()
	cert, ln := certListener(t)
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(done); ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if hs {
					tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
					_ = tc.SetDeadline(time.Now().Add(time.Minute))
					_ = tc.Handshake()
				}
				<-done
			})
		}
	})
	return ln.Addr().String()
}

func dialTCP(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(*net.TCPConn)
}

// TestHandshakeCanceled: a server that never answers the ClientHello; the
// ctx ends the handshake (OpenSSL waits in Go's poller).
func TestHandshakeCanceled(t *testing.T) {
	c, err := NewCtx(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Free()
	conn, err := c.Client(dialTCP(t, silent(t, false)), "localhost", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = conn.Handshake(ctx)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindHandshake || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a handshake error wrapping the ctx's deadline", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("handshake returned after %v", d)
	}
}

// TestReadDeadlineAndClose: a Read on a silent server ends at its deadline
// (os.ErrDeadlineExceeded), and Close ends a blocked Read (net.ErrClosed)
// and returns within CloseWait though the server sends no close_notify.
func TestReadDeadlineAndClose(t *testing.T) {
	c, err := NewCtx(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Free()
	conn, err := c.Client(dialTCP(t, silent(t, true)), "localhost", nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.CloseWait = 300 * time.Millisecond
	ctx, cancel := testCtx()
	defer cancel()
	if err := conn.Handshake(ctx); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline: %v", err)
	}
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() {
		_, err := conn.Read(make([]byte, 10))
		res <- err
	}()
	time.Sleep(100 * time.Millisecond) // let Read block in the poller
	start := time.Now()
	if err := conn.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-res; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("blocked Read after Close: %v, want net.ErrClosed", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Close took %v", d)
	}
	if conn.PeerClosed() {
		t.Error("PeerClosed true: the server sent no close_notify")
	}
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v, want net.ErrClosed", err)
	}
}
