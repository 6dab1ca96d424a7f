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
//     handshake and its verification succeeded.
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
//     uploads of a Client. The file is streamed in 128 KiB chunks, never
//     buffered.
//   - Bulk mode (Linux): a data connection that sent its last 8 MiB faster
//     than 50 MB/s (loopback, a fast LAN) sends with blocking writes of at
//     most 5 ms each instead of through Go's poller, which spares the
//     runtime's monitor thread thousands of wake-ups per GiB; slower links
//     keep the poller. See bulk_linux.go.
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
//     ignored, as curl does).
//   - The host name is resolved at each connect (a camera may boot without
//     network); the first IPv4 address is used.
//   - Without a server hash, verification is by size only; under SameName
//     Rename, the same capture uploaded twice (a crash between rename and
//     acknowledgement) is recognised only when the server can hash.
//   - Two uploads with the same TempID at the same time are not supported.
package transfer
