// Package transfer performs one FTPES upload, done right: connect with the
// TLS config of tlspolicy, write to a temporary name, resume, rename, verify,
// and classify every error as transient, permanent, auth, tls-policy,
// certificate or local.
//
// It is the only package that imports goftp.
//
// # Basics
//
// New(Config) makes a Client for one server; Upload(ctx, Job) sends one
// local file:
//
//   - Explicit TLS (AUTH TLS) only, on the control and every data connection;
//     there is no plain FTP fallback. The password is sent only after the
//     handshake and its verification succeeded. Plain FTP only when asked
//     for with Config.Plain (the user's secure = false), with a warning
//     logged on every control connection.
//   - The file goes to ".camftpd-<TempID>.part" in the target directory
//     (created like mkdir -p), is verified (SIZE, and HASH / XSHA256 / XMD5 /
//     XCRC when the server offers one, against hashes computed while
//     streaming), then renamed (RNFR/RNTO) under the same-name policy:
//     overwrite, skip, or rename to "name-1.jpg", "name-2.jpg"...
//     A partial file is never visible under its final name.
//   - Resume: an existing temporary file not larger than the local file is
//     continued with REST + STOR from its SIZE, within a call (after a 426 or
//     a reset that made progress) and across restarts (the temporary name is
//     the queue item's). A larger one is deleted and the upload restarts.
//   - Data connections are ours (goftp's raw connection API drives the
//     control connection): after the last byte we send TLS close_notify and
//     a TCP FIN, then read until the server closes, so the server never sees
//     a RST and never loses the tail (vsftpd 3.0.3 with TLS 1.3 answered 426
//     to goftp's Store on every data connection). Each control connection
//     has its own TLS session cache, so its data connections resume exactly
//     its session, as vsftpd and ProFTPD require.
//   - Deadlines: every control reply, every data write (no progress for
//     Config.Timeout), each data handshake and the close are bounded;
//     canceling ctx closes the sockets at once. A stalled server is a
//     transient error within about Timeout.
//   - Progress callbacks and a token-bucket bandwidth limit shared by all
//     uploads of a Client, or by several Clients through one Limiter
//     (Config.Limiter). The file is streamed in 128 KiB chunks, never
//     buffered.
//   - Bulk mode (Linux): a data connection that sent its last 8 MiB faster
//     than 50 MB/s (loopback, a fast LAN) sends with blocking writes of at
//     most 5 ms each instead of through Go's poller, which spares the
//     runtime's monitor thread thousands of wake-ups per GiB; slower links
//     keep the poller. See bulk_linux.go.
//
// # Exactly once
//
// A rename the server made is not known to the caller until it records
// Upload's result; a power cut in between used to make the next attempt
// send the capture again (and, under SameName Rename without a server
// hash, place it as "name-1"). Three things prevent that:
//
//   - Job.BeforeRename is called with the temporary and final paths right
//     before RNFR/RNTO; the caller records them durably and passes them
//     back as Job.Intent while the outcome is unrecorded. Upload settles an
//     Intent first, with the SIZE of both names in one round trip: the
//     temporary file gone and the final name of the announced size means
//     the rename happened (Result.Existing, nothing sent); the temporary
//     file complete means it did not (it is renamed, nothing sent).
//   - Under Skip and Rename, a final name that exists with the local
//     file's size is compared: by the server's hash when it has one, else
//     by reading back its first and last 64 KiB (the whole file under 128
//     KiB) with RETR on our own TLS data connection and comparing them
//     with the local bytes. The same shot is Result.Existing, never
//     "name-N" nor Skipped. Bytes in the middle are not compared: two
//     different files of the same size, head and tail are taken for one.
//   - Skipped means a different file holds the name under Skip; the same
//     shot already there is Existing.
//
// Reading a range back: with RANG (ProFTPD) the server sends exactly the
// range; a range that ends the file is read to its end; otherwise (the
// head of a large file on vsftpd, Pure-FTPd, ftpserverlib) the download is
// cut after 64 KiB with a TCP RST and an EPSV probe puts the control
// connection back in step (see session.endRetr for what each server sends
// then). On loopback it costs 2 RETRs, about 1-3 ms each.
//
// # Connection test
//
// Test (`camftpd check`, POST /check) walks every step an upload takes,
// with the Client's own code on a connection of its own, and reports each
// as ok, warn, fail or skipped with one fix line: resolve, TCP, greeting,
// AUTH TLS, handshake, certificate (a warning within CertWarnDays of its
// expiry), USER/PASS, PBSZ/PROT P, the folder (MKD), the data connection
// (passive mode, its TLS resuming the control session), STOR of the first
// half of a test file, SIZE, REST + STOR of the second half, the hash,
// RNFR/RNTO and DELE. The test file's names hold "camftpd-check-<random>",
// which no capture has; whatever the walk wrote is deleted after a
// failure too. goftp sends USER, PASS, PBSZ and PROT in one call: which
// one refused is told by the reply code (530 login; 536, 534, 533, 431,
// 503 PBSZ/PROT P; another code is reported at login).
//
// # The openssl build's second engine
//
// Built with -tags openssl, the package has a second TLS engine, OpenSSL
// (transfer/ossl; Engine returns it, and the daemon sets it as
// tlspolicy.Options.Engine), for the 7 suites of the spec crypto/tls lacks.
// OpenSSL is used only when the server accepts none of Go's suites: each
// control connection tries crypto/tls first; when its handshake ends with
// the server's "no common suite" outcome (tlspolicy.IsNoCommonSuite: a
// handshake_failure or insufficient_security alert; never a network
// error, a certificate error or a timeout) the same upload dials again
// with OpenSSL, offering Policy.EngineCiphers (mode recommended allows
// nothing crypto/tls lacks: no second try). The Client remembers the
// choice until the engine's handshake fails (a config reload makes a new
// Client), so later connections go straight to OpenSSL. Data connections
// always use the control connection's engine and resume its session,
// taken after the login's replies (TLS 1.3 tickets are read by then).
//
// The seam (ctl.go): session.rc is a ctlConn (SendCommand, ReadResponse,
// Close), which goftp.RawConn is and which the OpenSSL control transport
// is (greeting, AUTH TLS, the handshake, the policy's VerifyConnection
// before USER, PASS, PBSZ 0, PROT P, then reply parsing: a transport, not
// a second client; every command of an upload goes through session as
// on the Go path). A data connection's TLS is a *tls.Conn or an
// engineConn (the engine's Close is close_notify, then the server's
// close_notify or EOF, bounded by Timeout); bulk mode and record batching
// are crypto/tls's only. Result.TLSEngine says which engine the upload
// used. The default build is pure Go: Engine is nil and a server that
// needs one of the 7 fails with one line naming them and the openssl
// build.
//
// RenderRemote renders the remote path template; CheckPath refuses control
// characters (no FTP command injection from a file name) and "..".
//
// # Caveats
//
//   - goftp's connect and login take no context: when ctx ends during a
//     connect, Upload returns at once; the connect goes on in a goroutine
//     until its next step fails (its TLS handshake is made to fail; each
//     step is bounded by Timeout). Client.Close waits for it, at most
//     ConnectTimeout.
//   - Data connections use passive mode and always go to the control
//     connection's server address (the address in the PASV reply is
//     ignored, as curl does); or, with Config.Active, active mode (EPRT,
//     PORT without EPRT), accepting only the server's address, on the
//     control connection's local address (active.go). In active mode the
//     probe that ends a cut RETR is still EPSV (PASV): see endRetr.
//   - The host name is resolved at each connect (a camera may boot without
//     network); the first IPv4 address is used.
//   - Without a server hash, the uploaded file is verified by size only,
//     and an existing file is recognised as the same shot by its size and
//     its first and last 64 KiB. A server that refuses downloads (RETR
//     550, an upload-only account) cannot tell: Rename then gives a
//     re-sent shot a new name, Skip skips it; Job.Intent still prevents
//     both after a crash between rename and record.
//   - An Intent is settled by sizes: when its temporary file is gone and
//     its final name has the announced size, the rename is taken as done
//     (under Overwrite, an older file of exactly that size whose rename
//     over it failed permanently would be taken for it).
//   - Two uploads with the same TempID at the same time are not supported.
package transfer

// Files, bottom up: a file uses only files of its own layer or below.
//
//  1. errors.go, path.go, limit.go, guard.go, bulk*.go, localfile_*.go,
//     datatls.go, trace.go, ctl.go: error classes, remote paths, the
//     bandwidth limit, the control connection's guard, bulk mode, opening a
//     capture, the data connections' TLS config, how far a connect got
//     (for Test), the control transport and engine interfaces.
//  2. job.go: Config, Job, Intent, Result (plain data).
//  3. client.go, session.go, active.go, bufpool.go, protrefused.go,
//     engine.go, engine_default.go / engine_openssl.go: Client, its connect
//     and login (protrefused.go: which login step a refusal answered, PROT
//     P refused), and its control connections (session, data connections,
//     active mode); the pooled chunk buffers; the choice of TLS engine and
//     the openssl build's OpenSSL connect and data TLS.
//  4. localfile.go: the Client's checks of the local file.
//  5. upload.go, intent.go, sample.go: Upload and the upload type.
//  6. remove.go, conntest.go, conntest_files.go: RemoveTemps; Test, the
//     connection test (its file steps in conntest_files.go).
//
// Within a layer, files depend on each other only where one type points to
// another or one type's method set is split by concern: a session points
// back to the Client that owns it (3, see session.c), and the upload type's
// steps are in upload.go, intent.go and sample.go (5, see upload).
