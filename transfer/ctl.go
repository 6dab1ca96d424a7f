package transfer

import (
	"context"
	"crypto/tls"
	"net"
)

// ctlConn is a logged-in control connection as session uses it: the three
// methods of goftp.RawConn, which satisfies it; the openssl build's
// control transport over OpenSSL (engine_openssl.go) is the other. Only
// the transport differs: every command an upload sends goes through
// session.cmd, expect, pipeline and readReply on top of it.
type ctlConn interface {
	// SendCommand sends one line (format and args as fmt.Sprintf, CRLF
	// appended) and reads its reply.
	SendCommand(format string, args ...any) (int, string, error)
	// ReadResponse reads one more reply (multi-line replies joined with
	// "\n", as net/textproto does).
	ReadResponse() (int, string, error)
	Close() error
}

// engineSession is what a session made by the openssl build's engine
// keeps for its data connections: the engine and the control
// connection's TLS session, which they resume. The default build has
// none (session.eng is nil).
type engineSession interface {
	// client makes the TLS client of a data connection over raw (a
	// *net.TCPConn), offering the control connection's session.
	client(raw net.Conn) (engineConn, error)
	// name is the engine as status and logs show it ("openssl").
	name() string
	// free drops the session and the engine's context (session.close).
	free()
}

// engineConn is a data connection's TLS made by the engine: Close sends
// close_notify and waits for the server's (or its EOF), bounded.
type engineConn interface {
	net.Conn
	Handshake(ctx context.Context) error
	// ConnectionState is what the handshake negotiated, for the policy.
	ConnectionState() (tls.ConnectionState, error)
	DidResume() bool
}
