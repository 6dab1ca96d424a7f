//go:build openssl

package ossl

// #include <stdlib.h>
// #include "shim.h"
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// DefaultCloseWait bounds Close's wait for the peer's close_notify.
const DefaultCloseWait = 5 * time.Second

// Conn is a client TLS connection made by OpenSSL over a TCP connection.
// OpenSSL reads and writes the socket itself; when it wants to wait, the
// wait is Go's poller's (syscall.RawConn), so SetDeadline and Close work as
// on any net.Conn.
type Conn struct {
	tcp        *net.TCPConn
	rc         syscall.RawConn
	serverName string
	// CloseWait bounds Close's wait for the peer's close_notify; 0 means
	// DefaultCloseWait.
	CloseWait time.Duration

	mu         sync.Mutex // serialises OpenSSL calls on ssl; guards the fields below
	ssl        *C.SSL
	st         *C.cam_state
	closing    bool
	handshaken bool
	inflight   sync.WaitGroup // Read and Write calls, awaited by Close
	closeOnce  sync.Once
	closeErr   error
	peerClosed bool // the peer's close_notify was read
}

// Client makes a TLS client over tcp, which it then owns (Close closes it).
// serverName is sent as SNI unless it is an IP address. sess, if not nil, is
// offered for resumption. The handshake runs at Handshake.
func (c *Ctx) Client(tcp *net.TCPConn, serverName string, sess *Session) (*Conn, error) {
	rc, err := tcp.SyscallConn()
	if err != nil {
		return nil, &Error{Kind: KindIO, Msg: "openssl: " + err.Error(), Err: err}
	}
	st := (*C.cam_state)(C.calloc(1, C.size_t(unsafe.Sizeof(C.cam_state{}))))
	st.min_dh_bits = C.int(c.minDHBits)
	var sni *C.char
	if serverName != "" && net.ParseIP(serverName) == nil {
		sni = C.CString(serverName)
		defer C.free(unsafe.Pointer(sni))
	}
	var sp *C.SSL_SESSION
	if sess != nil {
		sess.mu.Lock()
		defer sess.mu.Unlock()
		sp = sess.p
	}
	var ssl *C.SSL
	var e C.cam_err
	if cerr := rc.Control(func(fd uintptr) {
		ssl = C.cam_ssl_new(c.ctx, C.int(fd), sni, sp, st, &e)
	}); cerr != nil {
		C.free(unsafe.Pointer(st))
		return nil, &Error{Kind: KindIO, Msg: "openssl: " + cerr.Error(), Err: cerr}
	}
	if ssl == nil {
		C.free(unsafe.Pointer(st))
		return nil, &Error{Kind: KindConfig, Msg: "openssl: SSL_new: " + goMsg(&e)}
	}
	return &Conn{tcp: tcp, rc: rc, serverName: serverName, ssl: ssl, st: st}, nil
}

const (
	wantNone = iota
	wantRead
	wantWrite
)

type result struct {
	n    int
	e    C.cam_err
	want int
}

// do runs op until it neither wants to read nor to write, waiting for the
// socket between tries with Go's poller. op runs inside the RawConn
// callback so that no readiness event is lost between OpenSSL's EAGAIN and
// the wait.
func (c *Conn) do(op func(*C.SSL, *C.cam_err) C.int) (result, error) {
	dir := wantRead
	for {
		var r result
		var gone bool
		fn := func(uintptr) bool {
			c.mu.Lock()
			if c.ssl == nil {
				c.mu.Unlock()
				gone = true
				return true
			}
			r.n = int(op(c.ssl, &r.e))
			c.mu.Unlock()
			switch r.e.ssl_err {
			case C.SSL_ERROR_WANT_READ:
				r.want = wantRead
			case C.SSL_ERROR_WANT_WRITE:
				r.want = wantWrite
			default:
				r.want = wantNone
			}
			return r.want != dir
		}
		var err error
		if dir == wantRead {
			err = c.rc.Read(fn)
		} else {
			err = c.rc.Write(fn)
		}
		switch {
		case gone:
			return r, net.ErrClosed
		case err != nil:
			return r, err
		case r.want == wantNone:
			return r, nil
		}
		dir = r.want
	}
}

// enter registers a Read, Write or Handshake call; false once Close began.
func (c *Conn) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.inflight.Add(1)
	return true
}

// Handshake runs the TLS handshake; ctx cancels it. A DHE group under
// MinDHBits is a KindWeakDH error naming the size.
func (c *Conn) Handshake(ctx context.Context) error {
	if !c.enter() {
		return &Error{Kind: KindIO, Msg: "openssl: handshake on a closed connection", Err: net.ErrClosed}
	}
	defer c.inflight.Done()
	stop := context.AfterFunc(ctx, func() { _ = c.tcp.SetDeadline(time.Unix(1, 0)) })
	r, err := c.do(func(s *C.SSL, e *C.cam_err) C.int { return C.cam_handshake(s, e) })
	if !stop() {
		return &Error{Kind: KindHandshake, Msg: fmt.Sprintf("openssl: TLS handshake with %s: %v", c.serverName, ctx.Err()), Err: ctx.Err()}
	}
	if err != nil {
		return &Error{Kind: KindHandshake, Msg: fmt.Sprintf("openssl: TLS handshake with %s: %v", c.serverName, err), Err: err}
	}
	c.mu.Lock()
	bits := int(c.st.dh_bits)
	c.mu.Unlock()
	if r.n != 1 {
		if bits > 0 && bits < int(c.st.min_dh_bits) {
			return &Error{Kind: KindWeakDH, DHBits: bits, Msg: fmt.Sprintf(
				"server %s offered a %d-bit DHE group: refused, at least %d bits are needed (Logjam): give the server a %d-bit DH parameter file (ProFTPD TLSDHParamFile, Pure-FTPd's dhparams.pem) or enable an ECDHE suite",
				c.serverName, bits, int(c.st.min_dh_bits), int(c.st.min_dh_bits))}
		}
		return &Error{Kind: KindHandshake, Msg: fmt.Sprintf("openssl: TLS handshake with %s failed: %s", c.serverName, ioMsg(&r.e)),
			NoCommonSuite: C.cam_no_common_suite(r.e.reason) == 1}
	}
	c.mu.Lock()
	c.handshaken = true
	c.mu.Unlock()
	return nil
}

func ioMsg(e *C.cam_err) string {
	switch {
	case e.msg[0] != 0:
		return goMsg(e)
	case e.ssl_err == C.SSL_ERROR_SYSCALL && e.sys_errno != 0:
		return syscall.Errno(e.sys_errno).Error()
	case e.ssl_err == C.SSL_ERROR_SYSCALL:
		return "connection closed by the server"
	}
	return fmt.Sprintf("SSL error %d", int(e.ssl_err))
}

// Read reads application data; io.EOF after the peer's close_notify.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !c.enter() {
		return 0, net.ErrClosed
	}
	defer c.inflight.Done()
	n := min(len(p), 1<<30)
	r, err := c.do(func(s *C.SSL, e *C.cam_err) C.int { return C.cam_read(s, unsafe.Pointer(&p[0]), C.int(n), e) })
	if err != nil {
		return 0, c.ioErr("read", err)
	}
	if r.n > 0 {
		return r.n, nil
	}
	if r.e.ssl_err == C.SSL_ERROR_ZERO_RETURN {
		c.mu.Lock()
		c.peerClosed = true
		c.mu.Unlock()
		return 0, io.EOF
	}
	return 0, &Error{Kind: KindIO, Msg: "openssl: read from " + c.serverName + ": " + ioMsg(&r.e), Err: io.ErrUnexpectedEOF}
}

// Write writes application data.
func (c *Conn) Write(p []byte) (int, error) {
	if !c.enter() {
		return 0, net.ErrClosed
	}
	defer c.inflight.Done()
	done := 0
	for done < len(p) {
		chunk := p[done:]
		n := min(len(chunk), 1<<30)
		r, err := c.do(func(s *C.SSL, e *C.cam_err) C.int { return C.cam_write(s, unsafe.Pointer(&chunk[0]), C.int(n), e) })
		if err != nil {
			return done, c.ioErr("write", err)
		}
		if r.n <= 0 {
			return done, &Error{Kind: KindIO, Msg: "openssl: write to " + c.serverName + ": " + ioMsg(&r.e)}
		}
		done += r.n
	}
	return done, nil
}

func (c *Conn) ioErr(op string, err error) error {
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		return net.ErrClosed
	}
	return &Error{Kind: KindIO, Msg: fmt.Sprintf("openssl: %s %s: %v", op, c.serverName, err), Err: err}
}

// Close ends the TLS connection: it stops any Read or Write in progress,
// sends close_notify, reads (and drops) what the peer still sends until
// its close_notify or EOF, up to CloseWait, then closes the socket. The
// error is the close_notify's or the socket's, not the peer's way of
// ending (PeerClosed tells whether its close_notify came).
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *Conn) close() error {
	c.mu.Lock()
	c.closing = true
	hs := c.handshaken
	c.mu.Unlock()
	_ = c.tcp.SetDeadline(time.Unix(1, 0)) // wake Read and Write
	c.inflight.Wait()
	var err error
	if hs {
		err = c.shutdown()
	}
	c.mu.Lock()
	C.SSL_free(c.ssl)
	C.free(unsafe.Pointer(c.st))
	c.ssl, c.st = nil, nil
	c.mu.Unlock()
	if cerr := c.tcp.Close(); err == nil && cerr != nil {
		err = c.ioErr("close", cerr)
	}
	return err
}

// shutdown sends close_notify and waits for the peer's (or its EOF).
func (c *Conn) shutdown() error {
	wait := c.CloseWait
	if wait <= 0 {
		wait = DefaultCloseWait
	}
	if err := c.tcp.SetDeadline(time.Now().Add(wait)); err != nil {
		return c.ioErr("close", err)
	}
	r, err := c.do(func(s *C.SSL, e *C.cam_err) C.int { return C.cam_shutdown(s, e) })
	if err != nil {
		return c.ioErr("close_notify to", err)
	}
	if r.n == 1 {
		c.mu.Lock()
		c.peerClosed = true
		c.mu.Unlock()
		return nil
	}
	if r.n < 0 {
		return &Error{Kind: KindIO, Msg: "openssl: close_notify to " + c.serverName + ": " + ioMsg(&r.e)}
	}
	buf := make([]byte, 16<<10)
	for {
		r, err := c.do(func(s *C.SSL, e *C.cam_err) C.int { return C.cam_read(s, unsafe.Pointer(&buf[0]), C.int(len(buf)), e) })
		if errors.Is(err, net.ErrClosed) || err != nil {
			return nil // the peer's close_notify did not come in time: ours was sent
		}
		if r.n > 0 {
			continue
		}
		c.mu.Lock()
		c.peerClosed = r.e.ssl_err == C.SSL_ERROR_ZERO_RETURN
		c.mu.Unlock()
		return nil
	}
}

// PeerClosed reports whether the peer's close_notify was read.
func (c *Conn) PeerClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peerClosed
}

// LocalAddr, RemoteAddr and the deadlines are the TCP connection's.
func (c *Conn) LocalAddr() net.Addr                { return c.tcp.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr               { return c.tcp.RemoteAddr() }
func (c *Conn) SetDeadline(t time.Time) error      { return c.tcp.SetDeadline(t) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.tcp.SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.tcp.SetWriteDeadline(t) }

var _ net.Conn = (*Conn)(nil)
