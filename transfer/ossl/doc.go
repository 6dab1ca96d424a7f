//go:build openssl

// Package ossl is the OpenSSL TLS engine of the `openssl` build: a client
// TLS connection over a net.TCPConn, made by the system's libssl (OpenSSL 3,
// linked dynamically through cgo), for the 7 suites of the spec that
// crypto/tls lacks (the four TLS_DHE_RSA_* suites and the three AES-256-CBC
// SHA256/SHA384 suites). Package transfer uses it (engine_openssl.go) when
// a server accepts none of crypto/tls's suites (see docs/openssl-engine.md).
//
// Layers, bottom up: shim.c/shim.h (one OpenSSL call per C function, with its
// error read in the same call: OpenSSL's error queue is per thread), ctx.go
// (Ctx: an SSL_CTX offering the spec's suites, TLS 1.2 to 1.3, TLS 1.3 AES-GCM
// only, and refusing a DHE group under MinDHBits), conn.go (Conn: a net.Conn;
// OpenSSL reads and writes the socket itself, and Go's poller waits when it
// wants to, so deadlines and Close unblock it), session.go (Session, the
// control connection's SSL_SESSION that data connections resume) and
// state.go (what a handshake negotiated, as a tls.ConnectionState for
// tlspolicy's checks).
//
// Certificates are not verified by OpenSSL (SSL_VERIFY_NONE): the caller
// hands ConnectionState to the Go policy (tlspolicy.Policy.VerifyConnection)
// after Handshake and before any FTP byte.
//
// # Caveats
//
//   - Only a client. One Read and one Write may run at once (OpenSSL calls
//     are serialised by a mutex; the waits are not).
//   - Close sends close_notify and reads until the peer's (or EOF), up to
//     CloseWait: a TLS 1.3 server's session tickets are read, not left
//     unread for the kernel to answer with RST (vsftpd's 426).
//   - A TLS 1.3 session is resumable only once the server's ticket has been
//     read: take Session after the first reply on the control connection.
//   - Client offers a copy of the Session: OpenSSL marks the session of a
//     connection freed without close_notify (a cut download) not
//     resumable, and the control connection's must stay resumable.
package ossl
