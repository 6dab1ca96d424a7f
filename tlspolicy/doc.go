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
// No mode ever offers or accepts a suite outside the spec's table, or TLS
// below 1.2.
//
// # TLS 1.3
//
// NIST SP 800-52r2, the spec's basis, lists TLS 1.3's AES-GCM (and
// AES-CCM) suites, not ChaCha20-Poly1305: TLS_AES_128_GCM_SHA256 and
// TLS_AES_256_GCM_SHA384 are Recommended, TLS_CHACHA20_POLY1305_SHA256 is
// NonNIST: accepted with a warning in compatible mode (as a deprecated TLS
// 1.2 suite), refused in recommended mode. crypto/tls offers all three TLS
// 1.3 suites and has no switch for them (Go 1.26: only GODEBUG=fips140=on
// drops ChaCha20, for the whole process and with every other FIPS
// restriction, so it is no per-server choice); without AES instructions
// (GOARCH=arm, always) it offers ChaCha20 first, and a server that follows
// the client's order (vsftpd, with OpenSSL's defaults) then picks it:
// measured, a GOARCH=arm client under qemu-arm got ChaCha20 from the
// ftpstest vsftpd, amd64 and arm64 clients AES-128-GCM; ProFTPD and
// Pure-FTPd pick AES-256-GCM (server order) for all three.
//
// So that such a camera in recommended mode still uploads, the refusal
// (an *Error wrapping ErrTLS13NotNIST, from VerifyConnection, before any
// FTP byte) also caps the Policy at TLS 1.2: every later Config offers TLS
// 1.2 with the recommended ECDHE AES-GCM suites only, and transfer dials
// again at once. The cap lasts for the Policy's lifetime (a restart or
// reload tries TLS 1.3 again: one refused handshake); Negotiated.Warning
// says why TLS 1.2 is used and how to get TLS 1.3 back (make the server
// choose AES-GCM). Rewriting Go's ClientHello is not an option (the
// transcript would not match), and neither is waiting for the server to be
// fixed: the camera would stop uploading. A server that has only ChaCha20
// in TLS 1.3 and no recommended suite in TLS 1.2 is refused with one
// message naming both. An engine that chooses what it offers (OpenSSL)
// offers only the Recommended TLS 1.3 suites and never needs the cap.
//
// Check prints the TLS 1.3 suites with their class, each offered alone in
// a hand-written TLS 1.3 ClientHello (check13.go), and which one the server
// picks with AES-GCM or ChaCha20 first: whether it follows the client's
// order, the field case of armv7.
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
//     negotiated in TLS 1.3 (see "TLS 1.3" above for what then happens).
//   - A data connection whose handshake lands on ChaCha20 while its control
//     connection did not (a server changing its choice mid-session) is
//     refused like the control connection's; transfer classes that
//     refusal transient, so the upload is retried, on a connection capped
//     at TLS 1.2 (not measured: no server here changes its choice).
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
