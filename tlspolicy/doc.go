// Package tlspolicy owns the FTPS cipher policy of the camera's spec: the
// table of the 13 listed suites with their class, the policy modes, building
// the *tls.Config used for every control and data connection, classifying
// what a handshake negotiated, CA import and certificate pinning, and the
// `camftpd check` probe.
//
// Of the project it imports only internal/wallclock (the clock threshold it
// shares with board), and only the standard library.
//
// # Basics
//
// New(Options) validates the settings; Policy.Config returns a *tls.Config
// for one connection. All Configs of a Policy share one ClientSessionCache,
// so FTP data connections resume the control connection's TLS session
// (vsftpd and ProFTPD refuse data connections that do not) as long as one
// control connection is open at a time, as in Probe and Check. transfer
// replaces it with a cache per control connection: one cache shared by
// several control connections made ProFTPD refuse data connections (425)
// of a control connection that had itself resumed. The Config
// offers TLS 1.2 and 1.3 (Options.MaxTLS12 caps at 1.2), and in TLS 1.2 only
// the listed suites the mode allows:
//
//	compatible (default)  the 6 listed suites crypto/tls implements; a
//	                      deprecated one is accepted with a warning (slog,
//	                      Negotiated.Warning, OnNegotiated, Last)
//	recommended           the 3 recommended suites only
//
// TLS 1.3 suites are classed recommended. No mode ever offers or accepts a
// suite outside the spec's table, or TLS below 1.2.
//
// Policy.VerifyConnection runs on every handshake, resumed ones too, before
// any FTP command (and so any password) is sent: it checks the version, the
// suite, then the certificate: with pins (Options.Pins, and the pins of the
// TrustStore for the host, written by `camftpd trust`), the leaf must
// match one, and the match replaces the chain and name checks; without,
// the chain against the imported CAs (or the system roots, then the trust
// store's CAs of that host) and the host name. The validity dates are
// checked against Options.Now either way: an expired pinned certificate
// is refused. A certificate that expires within Options.CertWarnDays (30
// by default) is a warning (Negotiated.CertWarning; logged once per
// certificate); CertExpiry computes it for other callers (check).
// The last chain that passed is remembered (verified.go): the same
// certificates again (a data connection resuming the control connection's
// session) skip the chain building while the clock stays inside the
// chain's validity; version, suite and pins are checked every time.
// Errors are *Error with a Kind (tls-policy, certificate, clock) and a
// one-line message saying what is wrong and what to do. When the server
// ends the handshake itself (no common suite or version), Explain turns
// crypto/tls's "remote error" into such an *Error.
//
// Check connects like the daemon, prints the negotiated version and suite,
// offers each implemented listed suite alone and asks, with a bare
// ClientHello, whether the server would pick each suite this device lacks.
//
// HandshakeError and WalkLogin are the small FTPES client transfer uses to
// learn what goftp does not say: the type of a handshake error, and which
// login command (USER, PASS, PBSZ 0, PROT P) a refusal answered.
//
// # Caveats
//
//   - crypto/tls implements 6 of the spec's 13 suites. It has no DHE suites
//     and no AES-256-CBC-SHA256/SHA384 suites, so TLS_RSA_WITH_AES_256_CBC_SHA256,
//     TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384, TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384
//     and the four TLS_DHE_RSA_* suites cannot be negotiated. A server that
//     offers only those is refused with a message naming them.
//   - crypto/tls ignores the order of Config.CipherSuites, and the TLS 1.3
//     suites are not configurable: TLS_CHACHA20_POLY1305_SHA256 may be
//     negotiated in TLS 1.3 (classed recommended with the other TLS 1.3 suites).
//   - Certificates are verified by VerifyConnection, not by crypto/tls (the
//     Config sets InsecureSkipVerify), so that resumed handshakes are
//     re-verified and errors can say what to do. Do not remove the hook.
//   - A device clock before wallclock.SaneAfter (2024; cameras boot in 1970) gives a KindClock
//     error, not a certificate error: the rest of the chain is still checked
//     at a time inside its validity, so an unknown CA or a wrong name is
//     reported as such. With a plausible clock, a certificate not valid yet
//     is a KindCertificate error naming its NotBefore, NotAfter and the
//     device time (a clock wait would end at once and retry in a loop).
//   - A pin replaces the chain and name checks: it trusts that exact
//     certificate (or key, for an SPKI pin) for that one host name, and
//     nothing else. Pins of the trust store are per host name as
//     configured (lower case): the same server reached by another name
//     or address is not trusted by them. A CA certificate of the trust
//     store is a root for its host only; a server that presents that very
//     certificate as its own (a self-signed certificate with CA:TRUE, as
//     openssl req -x509 makes) is accepted as if pinned.
//   - The TrustStore file is stat'ed on every handshake and read again
//     when it was replaced (camftpd trust writes it by rename): about a
//     microsecond, against a handshake's milliseconds.
//   - OnNegotiated runs inside the handshake: keep it short.
package tlspolicy
