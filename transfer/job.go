package transfer

import (
	"crypto/tls"
	"log/slog"
	"os"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
)

// SameName says what to do when the final remote name already exists.
type SameName string

const (
	Overwrite SameName = "overwrite" // replace it (default)
	Skip      SameName = "skip"      // keep the remote file, do not upload
	Rename    SameName = "rename"    // upload as name-1.jpg, name-2.jpg, ...
)

// Config configures a Client. Only Host and TLS (or Plain) are required.
type Config struct {
	Host           string
	Port           int // default 21
	User, Password string
	// TLS is used for the control and every data connection (explicit TLS,
	// AUTH TLS; there is never a plain FTP fallback). Build it with
	// tlspolicy. ServerName defaults to Host. Its ClientSessionCache is not
	// used: each control connection gets a cache of its own (sessionCache in
	// session.go), which its data connections resume, as vsftpd and ProFTPD
	// require.
	TLS *tls.Config
	// Policy is the tlspolicy.Policy TLS came from. When its Options.Engine
	// is set (the openssl build: Engine()), a server that accepts none of
	// crypto/tls's suites is reached through that engine, offering
	// Policy.EngineCiphers (engine.go). nil: crypto/tls only.
	Policy *tlspolicy.Policy
	// Timeout bounds every operation: each control command's reply, each
	// data write (no progress for Timeout cuts the connection), the TLS
	// handshake of a data connection. Default 30 s.
	Timeout time.Duration
	// ConnectTimeout bounds name resolution, connect, TLS and login.
	// Default Timeout.
	ConnectTimeout time.Duration
	// BandwidthLimit caps the upload rate of all uploads of the Client
	// together, in bytes per second; 0 means no limit.
	BandwidthLimit int64
	// Limiter, when set, replaces BandwidthLimit with a limit shared with
	// other Clients (NewLimiter): a daemon gives all its workers' Clients
	// one, so the limit holds for them together and one uploading alone
	// gets all of it.
	Limiter  *Limiter
	SameName SameName // default Overwrite
	// RecordSHA256 computes the SHA-256 of every file as it is sent, for
	// Result.Hash, even when the server cannot check it. Off, the file is
	// hashed with what the server can check (SHA-256, MD5 or CRC-32), or
	// else with CRC-32C: the SHA-256 costs about 1 CPU-second per GiB on
	// an x86 server core and is the dearest part of an upload on camera
	// cores without SHA instructions (armv7).
	RecordSHA256 bool
	Logger       *slog.Logger
	// Plain sends over plain FTP: no AUTH TLS, so the user name, the
	// password and every file cross the network unencrypted. Only for a
	// user who asked for it (secure = false); TLS must then be nil. Every
	// control connection logs PlainWarning. Without Plain, a server that
	// refuses AUTH TLS is an error, never a reason to go plain.
	Plain bool
	// Active opens data connections in active mode: the Client listens
	// and announces its address with EPRT (PORT when the server has no
	// EPRT), and the server connects to it. The listening address is the
	// control connection's local address; only a connection from the
	// server's address is taken. Over FTPES the Client is still the TLS
	// client of the data connection, resuming the control connection's
	// session, as in passive mode.
	Active bool
	// ActivePorts bounds the ports listened on in active mode (a camera
	// firewall that opens only a range): [first, last]; zero = any port.
	ActivePorts [2]int
}

// PlainWarning is logged on every plain FTP connection (Config.Plain).
const PlainWarning = "plain FTP: password and files sent unencrypted (secure = false)"

// Job is one file to upload.
type Job struct {
	// LocalPath names the file (in messages, and for the temporary name
	// when TempID is empty). Upload opens it itself only when File is
	// nil, with O_NOFOLLOW|O_NONBLOCK: a symbolic link or a FIFO is
	// refused (ErrRefused), never read.
	LocalPath string
	// File, when set, is the capture already opened by the caller for
	// this attempt (see OpenCapture): Upload reads it only through this
	// descriptor (upload, resume, samples, the check before the rename)
	// and does not close it.
	File *os.File
	// Remote is the final remote path (already rendered, see RenderRemote),
	// relative to the login directory or absolute.
	Remote string
	// TempID names the temporary remote file ".camftpd-<TempID>.part" in the
	// target directory. It must be unique per capture (the queue item ID):
	// an upload resumes only onto its own temporary file. When empty it is
	// derived from the local path, size and modification time.
	TempID string
	// Fresh says that no earlier attempt of this capture can have left a
	// temporary file on the server (the queue item's first lease): the
	// upload then skips the SIZE probe of the temporary name and starts
	// with STOR at 0 (STOR replaces a file it might still find). Leave it
	// false when in doubt; that costs one round trip.
	Fresh    bool
	Progress func(sent, total int64) // optional; called from Upload's goroutine
	// BeforeRename, when set, is called right before RNFR/RNTO with the
	// temporary path and the final path chosen (after the same-name policy
	// picked it). The caller records it durably (it is the Intent of the
	// next attempt, should this process die before it records the
	// outcome). When it returns an error nothing is renamed, the temporary
	// file stays, and Upload returns that error wrapped in an *Error of
	// class Local (to be retried later). It is not called when nothing is
	// renamed (Skipped, Existing). Called from Upload's goroutine.
	BeforeRename func(temp, final string) error
	// Intent is a rename an earlier attempt of this capture announced
	// through BeforeRename and whose outcome the caller did not record (a
	// power cut between the server's RNTO reply and the caller's "done").
	// Upload settles it first, with the SIZE of Temp and of Final in one
	// round trip (see Intent). nil: no such rename.
	Intent *Intent
}

// Intent is a rename announced by BeforeRename: the temporary file Temp,
// verified with Size bytes, was about to be renamed to Final. Upload
// settles it by what the server shows:
//
//   - Temp is absent and Final exists with exactly Size bytes: the rename
//     happened. Upload sends nothing and succeeds with Result.Remote = Final
//     and Result.Existing set (Result.Hash is empty: the local file is not
//     read).
//   - Temp exists with Size bytes: the rename did not happen. The
//     temporary file is verified again and renamed, to Final when it is
//     free (under SameName Rename; the other policies' final name is
//     Job.Remote), announced again through BeforeRename. No data is sent.
//   - Anything else (a partial or missing temporary file and no Final of
//     that size, a server without SIZE, an Intent whose Size is not the
//     local file's or whose Temp is not this job's temporary name): the
//     Intent is ignored and the upload runs as without it.
type Intent struct {
	Temp, Final string
	Size        int64
}

// Result describes a finished upload. Exactly one of three outcomes holds:
// the file was renamed into place at Remote (Skipped and Existing false),
// it was there already (Existing), or a different file holds the name
// under SameName Skip (Skipped).
type Result struct {
	// Remote is the final remote path: where the capture now is (differs
	// from Job.Remote under SameName Rename, or when an Intent's Final
	// was found), or, when Skipped, the name held by another file.
	Remote string
	Size   int64
	// Hash is "<algorithm>:<hex>" of the local file as sent: "sha256:..."
	// when the server checked SHA-256 or Config.RecordSHA256 is set, else
	// the algorithm the server checked ("md5:", "crc32:"), else "crc32c:".
	// Empty when Skipped, and when Existing was decided without reading
	// the whole local file (by an Intent, or by sampled bytes before any
	// upload under SameName Skip).
	Hash        string
	ResumedFrom int64 // largest offset an upload of this call resumed from (REST), 0 if none
	// Verified is what was checked on the server: "size", "size+sha256",
	// "size+md5", "size+crc32" for the renamed temporary file. When
	// Existing, how the file at Remote was recognised: "size" (an Intent's
	// Final of the announced size), "size+<hash>" (the server's hash), or
	// "size+sample" (its first and last 64 KiB, or the whole of a smaller
	// file, read back with RETR). Empty when Skipped.
	Verified string
	// Skipped: SameName Skip, the final name exists and holds a different
	// file (other size or content), or one that cannot be compared (the
	// server lets neither HASH nor RETR read it): nothing was renamed, the
	// capture is not on the server; Remote is the name in the way.
	Skipped   bool
	DataConns int // STOR data connections opened by this call
	// TLSEngine is the TLS engine of the last control connection used:
	// "crypto/tls", or "openssl" (the openssl build's fallback, engine.go);
	// "" in plain FTP or when no connection was made.
	TLSEngine string
	// Existing: this capture was already on the server, delivered by an
	// earlier attempt that ended before its success was recorded. Nothing
	// was renamed and no temporary file is left. Set when Job.Intent shows
	// its rename happened (any policy; nothing sent), and under SameName
	// Skip or Rename when the final name (under Rename, also each
	// "name-N" tried in turn) holds a file of the same size and the same
	// server hash or, without a server hash, the same sampled bytes (see
	// Verified; bytes in the middle of a file are not compared). Skip
	// compares before sending; Rename after the upload to the temporary
	// name (DataConns > 0).
	Existing bool
}
