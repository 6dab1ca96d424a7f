//go:build openssl

package ossl

// #include "shim.h"
import "C"

import "sync"

// Session is an OpenSSL session (SSL_SESSION) taken from a control
// connection, offered by its data connections (Ctx.Client) so that they
// resume it, as vsftpd's and ProFTPD's require_ssl_reuse demand. Free it
// when the control connection ends.
type Session struct {
	mu sync.Mutex
	p  *C.SSL_SESSION
}

// Session returns the connection's current session (SSL_get1_session). In
// TLS 1.3 it is resumable only after the server's ticket was read: call it
// after the first reply that followed the handshake.
func (c *Conn) Session() (*Session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ssl == nil || !c.handshaken {
		return nil, &Error{Kind: KindHandshake, Msg: "openssl: no session before the handshake"}
	}
	p := C.SSL_get1_session(c.ssl)
	if p == nil {
		return nil, &Error{Kind: KindHandshake, Msg: "openssl: " + c.serverName + " gave no session"}
	}
	return &Session{p: p}, nil
}

// Resumable reports whether the session can be resumed (a TLS 1.3 session
// before its ticket arrived cannot).
func (s *Session) Resumable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p != nil && C.SSL_SESSION_is_resumable(s.p) == 1
}

// Free drops the reference; connections that took it keep theirs.
func (s *Session) Free() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil {
		C.SSL_SESSION_free(s.p)
		s.p = nil
	}
}
