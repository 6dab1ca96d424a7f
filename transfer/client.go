package transfer

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/secsy/goftp"
)

// SameName says what to do when the final remote name already exists.
type SameName string

const (
	Overwrite SameName = "overwrite" // replace it (default)
	Skip      SameName = "skip"      // keep the remote file, do not upload
	Rename    SameName = "rename"    // upload as name-1.jpg, name-2.jpg, ...
)

// Config configures a Client. Only Host and TLS are required.
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
}

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

// Client uploads files to one FTPES server. It keeps up to two idle logged-in
// control connections between uploads. Upload may be called concurrently.
type Client struct {
	cfg    Config
	tls    *tls.Config
	cfgErr *Error
	log    *slog.Logger
	lim    *Limiter

	mu     sync.Mutex
	idle   []*session
	dirs   map[string]bool // remote directories known to exist
	closed bool
	wg     sync.WaitGroup // background goroutines (abandoned connects)

	// guardLimit bounds the control connection's replies (guard.go): 0 is
	// replyLimit; < 0 dials without the guard (tests and its benchmark).
	guardLimit int64

	plainTemp atomic.Bool // the server refused ".camftpd-*" names

	// Bulk mode (bulk_linux.go): a window of bulkWindow bytes sent faster
	// than bulkRate turns it on for the next window. bulkWindows counts
	// the windows sent in bulk mode.
	bulkRate    float64 // bytes/s
	bulkWindows atomic.Int64

	retrs atomic.Int64 // byte ranges read back with RETR (sample.go)
}

const (
	maxIdle = 2
	idleMax = 2 * time.Minute
	// warmFor: an idle session used this recently is taken without a NOOP
	// round trip; a stale one found dead by its first command is replaced
	// once within the call (staleRetry).
	warmFor      = 15 * time.Second
	maxInCall    = 8         // data connections per call, as long as each makes progress
	chunkSize    = 128 << 10 // file read and TLS write unit (8 records, one write(2))
	maxRenameTry = 999
)

// New returns a Client; it does not connect. A configuration error (no TLS
// config) is returned by every Upload.
func New(cfg Config) *Client {
	if cfg.Port == 0 {
		cfg.Port = 21
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = cfg.Timeout
	}
	if cfg.SameName == "" {
		cfg.SameName = Overwrite
	}
	c := &Client{cfg: cfg, log: cfg.Logger, lim: cfg.Limiter, dirs: map[string]bool{}, bulkRate: bulkMinRate}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.lim == nil {
		c.lim = NewLimiter(cfg.BandwidthLimit)
	}
	switch {
	case cfg.TLS == nil:
		c.cfgErr = &Error{Class: TLSPolicy, Op: "config", Msg: "no TLS configuration: camftpd uploads only over FTPES (explicit TLS), never plain FTP"}
	case cfg.Host == "":
		c.cfgErr = &Error{Class: Permanent, Op: "config", Msg: "no server host: set the FTP server's host name"}
	case cfg.SameName != Overwrite && cfg.SameName != Skip && cfg.SameName != Rename:
		c.cfgErr = &Error{Class: Permanent, Op: "config", Msg: fmt.Sprintf("same-name policy %q unknown: use overwrite, skip or rename", cfg.SameName)}
	case cfg.Port < 1 || cfg.Port > 65535:
		c.cfgErr = &Error{Class: Permanent, Op: "config", Msg: fmt.Sprintf("port %d out of range", cfg.Port)}
	default:
		t := cfg.TLS.Clone()
		if t.ServerName == "" {
			t.ServerName = strings.Trim(cfg.Host, "[]")
		}
		c.tls = t
	}
	return c
}

// Close closes idle connections and waits, at most ConnectTimeout, for
// connects that an Upload abandoned (ctx ended during a connect: goftp's
// login takes no context) to end; those that are still running end on their
// own, each step bounded by Timeout. Uploads after Close fail.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, s := range idle {
		s.close()
	}
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	t := time.NewTimer(c.cfg.ConnectTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		c.log.Warn("closing with a connect still running; it ends within the timeouts")
	}
	return nil
}

// upload is the state of one Upload call.
type upload struct {
	c       *Client
	job     Job
	f       *os.File
	size    int64
	remote  string
	dir     string // with trailing "/" or ""
	name    string
	temp    string   // the temporary name in use
	temps   []string // hidden and visible temporary names
	buf     []byte
	res     Result
	hashAlg string // "", "sha256", "md5", "crc32": what the server can check
	hashVia string // "HASH", "XSHA256", "XMD5", "XCRC"
	local   map[string]string
	opened  os.FileInfo // the local file when Upload opened it
	stalled bool        // a data connection made no progress for Timeout
	// known: the SIZE answer for one remote name, asked along with the
	// temporary file's in verifyTemp (used once by statRemote).
	known *remoteStat
	// Job.Intent: settled once the server answered; intentTemp says its
	// temporary file is complete (not renamed), intentFinal its Final.
	settled     bool
	intentTemp  bool
	intentFinal string
	// An in-call retry goes on only when the server's temporary file grew
	// since the previous attempt started at prevStart; else prevErr.
	prevErr   error
	prevStart int64
	lastStart int64

	mu      sync.Mutex
	cur     *session
	aborted bool
}

func (u *upload) setCur(s *session) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.aborted && s != nil {
		return false
	}
	u.cur = s
	return true
}

func (u *upload) abort() {
	u.mu.Lock()
	u.aborted = true
	s := u.cur
	u.mu.Unlock()
	if s != nil {
		s.kill()
	}
}

// Upload sends job.LocalPath to job.Remote: into a temporary name in the
// target directory (resuming it when it is there and not larger than the
// local file), verifies size and, when the server offers one, a hash, then
// renames it to the final name under the same-name policy. Within the call,
// a dropped connection is resumed as long as each attempt makes progress.
//
// When ctx is canceled the connections are closed at once and an error
// wrapping ctx.Err() is returned; the remote temporary file is kept, so the
// next Upload (in this process or after a restart) resumes it. Every error
// is an *Error.
func (c *Client) Upload(ctx context.Context, job Job) (Result, error) {
	op := "upload " + job.Remote
	dir, name, err := c.checkJob(ctx, op, job)
	if err != nil {
		return Result{}, err
	}
	f, st, err := c.openJob(op, job)
	if err != nil {
		return Result{}, err
	}
	if job.File == nil {
		defer f.Close()
	}
	if err := c.writerGone(op, f); err != nil {
		return Result{}, err // nothing sent: no temporary file either
	}
	u := c.newUpload(job, f, st, dir, name)

	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { u.abort(); close(done) })
	defer func() {
		if !stop() {
			<-done
		}
	}()
	return c.attempts(ctx, op, u)
}

// checkJob refuses a job before anything is opened: the client's
// configuration error, a closed client, a remote path that is not valid
// or has no file name, or ctx already done. It returns the remote path's
// directory (with its trailing "/") and file name.
func (c *Client) checkJob(ctx context.Context, op string, job Job) (dir, name string, err error) {
	if c.cfgErr != nil {
		return "", "", c.cfgErr
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return "", "", &Error{Class: Transient, Op: "upload", Msg: "client closed"}
	}
	if err := CheckPath(job.Remote); err != nil {
		return "", "", &Error{Class: Permanent, Op: "upload", Msg: err.Error(), Err: err}
	}
	dir, name = path.Split(job.Remote)
	if name == "" || name == "." {
		return "", "", &Error{Class: Permanent, Op: op, Msg: "remote path has no file name: end the template in {name}"}
	}
	if err := ctx.Err(); err != nil {
		return "", "", classify(op, err)
	}
	return dir, name, nil
}

// newUpload prepares the upload of job from the opened local file f: its
// temporary names, from Job.TempID or else from the local path, size and
// modification time, and its buffer.
func (c *Client) newUpload(job Job, f *os.File, st os.FileInfo, dir, name string) *upload {
	id := sanitizeID(job.TempID)
	if id == "" {
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%d", job.LocalPath, st.Size(), st.ModTime().UnixNano())))
		id = hex.EncodeToString(sum[:8])
	}
	temps := tempNames(dir, id)
	u := &upload{
		c: c, job: job, f: f, size: st.Size(), opened: st, remote: job.Remote, dir: dir, name: name,
		temp: temps[0], temps: temps,
		buf: make([]byte, min(chunkSize, max(st.Size(), 4<<10))),
	}
	u.res.Size = u.size
	return u
}

// attempts runs u on a session until it succeeds or fails for good. An
// idle connection taken without NOOP that turns out dead is replaced once,
// without counting as an attempt; a transient failure is resumed at once
// when the attempt made progress, up to maxInCall attempts.
func (c *Client) attempts(ctx context.Context, op string, u *upload) (Result, error) {
	staleRetried := false
	for attempt := 1; ; attempt++ {
		s, unchecked, err := c.session(ctx, u)
		if err != nil {
			return Result{}, c.finalErr(ctx, op, err)
		}
		before := u.res.DataConns
		progressed, err := u.run(ctx, s)
		u.setCur(nil)
		if err == nil {
			c.put(s)
			return u.res, nil
		}
		if unchecked && !staleRetried && ctx.Err() == nil && !progressed && u.res.DataConns == before && (s.broken && codeOf(err) == 0 || codeOf(err) == 421) {
			// The idle connection taken without NOOP was dead (server
			// timeout, NAT, network change): log in again, once.
			s.broken = true
			s.close()
			staleRetried = true
			attempt--
			c.log.Debug("idle connection was dead: logging in again", "err", err)
			continue
		}
		if ctx.Err() != nil || s.broken {
			s.close()
		} else {
			c.put(s)
		}
		e := c.finalErr(ctx, op, err)
		// Resume at once only after an abort that made progress (426, a
		// reset); a stalled server is reported within Timeout instead.
		if ctx.Err() != nil || e.Class != Transient || !progressed || u.stalled || u.res.DataConns-before == 0 || attempt >= maxInCall {
			return Result{}, e
		}
		c.log.Info("upload interrupted, resuming", "remote", u.remote, "err", e.Error())
		u.prevErr, u.prevStart = e, u.lastStart
		if err := sleepCtx(ctx, time.Duration(attempt)*200*time.Millisecond); err != nil {
			return Result{}, c.finalErr(ctx, op, err)
		}
	}
}

// finalErr makes the error Upload returns: ctx's error when ctx ended.
func (c *Client) finalErr(ctx context.Context, op string, err error) *Error {
	if cerr := ctx.Err(); cerr != nil {
		var te *Error
		if errors.As(err, &te) && (errors.Is(te, context.Canceled) || errors.Is(te, context.DeadlineExceeded)) {
			return te
		}
		return classify(op, cerr)
	}
	return classify(op, err)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// session returns a logged-in session: an idle one used within warmFor, an
// older idle one that answers NOOP, or a new one. unchecked reports a reused
// session taken without NOOP.
func (c *Client) session(ctx context.Context, u *upload) (s *session, unchecked bool, err error) {
	for {
		c.mu.Lock()
		s = nil
		if n := len(c.idle); n > 0 {
			s = c.idle[n-1]
			c.idle = c.idle[:n-1]
		}
		c.mu.Unlock()
		if s == nil {
			break
		}
		if time.Since(s.lastUsed) > idleMax {
			s.close()
			continue
		}
		if !u.setCur(s) {
			s.close()
			return nil, false, ctx.Err()
		}
		if time.Since(s.lastUsed) < warmFor {
			return s, true, nil
		}
		if _, err := s.expect("NOOP", 2); err != nil {
			u.setCur(nil)
			s.broken = true
			s.close()
			if ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			continue
		}
		return s, false, nil
	}
	s, err = c.dial(ctx)
	if err != nil {
		return nil, false, err
	}
	if !u.setCur(s) {
		s.close()
		return nil, false, ctx.Err()
	}
	return s, false, nil
}

// Warm logs in ahead of an upload (the daemon calls it while a new capture
// settles), so that the upload finds a logged-in control connection. It
// does nothing when one is idle already.
func (c *Client) Warm(ctx context.Context) error {
	if c.cfgErr != nil {
		return c.cfgErr
	}
	c.mu.Lock()
	busy := c.closed || len(c.idle) > 0
	c.mu.Unlock()
	if busy {
		return nil
	}
	s, err := c.dial(ctx)
	if err != nil {
		return c.finalErr(ctx, "connect", err)
	}
	c.put(s)
	return nil
}

func (c *Client) put(s *session) {
	s.lastUsed = time.Now()
	c.mu.Lock()
	if c.closed || len(c.idle) >= maxIdle || s.broken {
		c.mu.Unlock()
		s.close()
		return
	}
	c.idle = append(c.idle, s)
	c.mu.Unlock()
}

// resolve looks the host up now (not once at start: a camera may boot
// without network, and DNS may change).
func (c *Client) resolve(ctx context.Context) (string, error) {
	host := strings.Trim(c.cfg.Host, "[]")
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return "", &Error{Class: Transient, Op: "connect", Msg: fmt.Sprintf("cannot resolve %s (%s): check the host name and the network; will retry", host, oneLine(err.Error())), Err: err}
	}
	for _, a := range addrs {
		if a.IP.To4() != nil {
			return a.IP.String(), nil
		}
	}
	if len(addrs) > 0 {
		return addrs[0].IP.String(), nil
	}
	return "", &Error{Class: Transient, Op: "connect", Msg: "no address for " + host}
}

// dial connects, upgrades with AUTH TLS, logs in, reads FEAT and sets TYPE I.
// goftp talks to the server through a guard (guard.go) that bounds what it
// reads.
func (c *Client) dial(ctx context.Context) (*session, error) {
	cctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	ip, err := c.resolve(cctx)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(c.cfg.Port))
	hs := &hsState{}
	tcfg := c.controlTLS(hs)
	target, g, err := c.connect(ctx, cctx, addr)
	if err != nil {
		return nil, err
	}
	gcfg := goftp.Config{
		User: c.cfg.User, Password: c.cfg.Password,
		ConnectionsPerHost: 1,
		Timeout:            c.cfg.Timeout,
		TLSConfig:          tcfg, // its ServerName is the server's, not the guard's
		TLSMode:            goftp.TLSExplicit,
	}
	if c.log.Enabled(ctx, slog.LevelDebug-4) {
		gcfg.Logger = logWriter{c.log}
	}
	gc, err := goftp.DialConfig(gcfg, target)
	if err != nil {
		g.close()
		return nil, &Error{Class: Permanent, Op: "connect", Msg: oneLine(err.Error()), Err: err}
	}
	rc, err := c.login(ctx, cctx, addr, gc, tcfg, hs, g)
	if err != nil {
		return nil, err
	}
	s := &session{c: c, gc: gc, rc: rc, g: g, ip: ip, tls: tcfg, hs: hs}
	_, cs, _ := hs.get()
	c.log.Debug("ftps connected", "addr", addr, "tls", tls.VersionName(cs.Version), "suite", tls.CipherSuiteName(cs.CipherSuite))
	if err := s.readFeatures(); err != nil {
		s.close()
		return nil, err
	}
	if _, err := s.expect("TYPE I", 2); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// controlTLS is the control connection's TLS config: it records the
// handshake in hs and fails it once the connect was abandoned.
func (c *Client) controlTLS(hs *hsState) *tls.Config {
	tcfg := c.tls.Clone()
	// One cache per control connection, not Config.TLS's (see sessionCache).
	tcfg.ClientSessionCache = &sessionCache{}
	// Full 16 KiB records from the first byte: crypto/tls otherwise sends
	// the first 128 KB of every connection in records growing from one TCP
	// segment (for an HTTP page's first paint): a 100 kB file in 13 records
	// instead of 7.
	tcfg.DynamicRecordSizingDisabled = true
	inner := tcfg.VerifyConnection
	tcfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if hs.abandoned.Load() {
			return errAbandoned
		}
		var err error
		if inner != nil {
			err = inner(cs)
		}
		hs.record(cs, err)
		return err
	}
	return tcfg
}

// connect opens the control connection's socket to addr and a guard in
// front of it, and returns the address goftp is to connect to: the guard's
// (c.guardLimit < 0: addr itself, without a guard).
func (c *Client) connect(ctx, cctx context.Context, addr string) (string, *guard, error) {
	if c.guardLimit < 0 {
		return addr, nil, nil
	}
	var d net.Dialer
	conn, err := d.DialContext(cctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return "", nil, ctx.Err()
		}
		return "", nil, goftpNetErr("connect "+addr, err)
	}
	limit := c.guardLimit
	if limit == 0 {
		limit = replyLimit
	}
	g, err := newGuard(conn, limit, c.cfg.ConnectTimeout)
	if err != nil {
		conn.Close()
		return "", nil, err
	}
	return g.addr(), g, nil
}

// login runs goftp's connect, AUTH TLS and login, which take no context, in
// a goroutine of c.wg; when cctx ends first, the connection is cut and left
// to that goroutine to close.
func (c *Client) login(ctx, cctx context.Context, addr string, gc *goftp.Client, tcfg *tls.Config, hs *hsState, g *guard) (goftp.RawConn, error) {
	type result struct {
		rc  goftp.RawConn
		err error
	}
	ch := make(chan result, 1)
	var mu sync.Mutex
	abandoned := false
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		rc, err := gc.OpenRawConn()
		if err != nil {
			rc = nil // goftp returns a typed nil on error
		}
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			if rc != nil {
				rc.Close()
			}
			gc.Close()
			g.close()
			return
		}
		ch <- result{rc, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-cctx.Done():
		hs.abandoned.Store(true)
		mu.Lock()
		abandoned = true
		mu.Unlock()
		g.shut() // goftp's read fails now, not after Timeout
		select {
		case r := <-ch:
			if r.rc != nil {
				r.rc.Close()
			}
			gc.Close()
			g.close()
		default:
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &Error{Class: Transient, Op: "connect " + addr, Msg: fmt.Sprintf("no login within %s (server slow or unreachable); will retry", c.cfg.ConnectTimeout), Err: context.DeadlineExceeded}
	}
	if r.err != nil {
		gc.Close()
		g.close()
		if gerr := g.err(); gerr != nil {
			return nil, classify("connect "+addr, gerr)
		}
		return nil, c.connectErr(cctx, addr, tcfg, hs, r.err)
	}
	return r.rc, nil
}

var errAbandoned = errors.New("connect abandoned")

// connectErr explains a failed connect or login.
func (c *Client) connectErr(ctx context.Context, addr string, tcfg *tls.Config, hs *hsState, err error) *Error {
	op := "connect " + addr
	n, _, verr := hs.get()
	if verr != nil {
		return classify(op, tlspolicy.Explain(verr, tcfg))
	}
	if code := codeOf(err); code != 0 {
		if n == 0 {
			if code/100 == 4 {
				return classify(op, err)
			}
			return &Error{Class: TLSPolicy, Op: op, Code: code, Err: err,
				Msg: "server refused AUTH TLS (server said: " + serverText(err) + "): enable explicit FTPS (FTPES) on the server; camftpd never sends a password or file without TLS"}
		}
		e := classify("login", err)
		if e.Class == Auth {
			e.Msg = "server refused the login (server said: " + serverText(err) + "): check user name and password"
		}
		return e
	}
	msg := err.Error()
	if n == 0 && !strings.HasPrefix(msg, "dial ") {
		// goftp lost the TLS error's type: redo the handshake to learn it.
		if perr := c.probeTLS(ctx, addr, tcfg); perr != nil {
			return classify(op, tlspolicy.Explain(perr, tcfg))
		}
	}
	return goftpNetErr(op, err)
}

// goftpNetErr classifies goftp's network errors, which carry only text.
func goftpNetErr(op string, err error) *Error {
	e := classify(op, err)
	if e.Class != Transient || e.Code != 0 {
		return e
	}
	m := strings.ToLower(err.Error())
	switch {
	case strings.Contains(m, "connection refused"):
		e.Msg = "connection refused (" + oneLine(err.Error()) + "): is the FTP server running on that host and port? will retry"
	case strings.Contains(m, "i/o timeout"), strings.Contains(m, "timeout"):
		e.Msg = "timed out (" + oneLine(err.Error()) + "); will retry"
	case strings.Contains(m, "eof"), strings.Contains(m, "reset"), strings.Contains(m, "broken pipe"):
		e.Msg = "connection closed by the server (" + oneLine(err.Error()) + "); will retry"
	}
	return e
}

// probeTLS redoes the connect, AUTH TLS and handshake with tlspolicy's
// FTPES client (bounded replies, a deadline per step) to learn the
// handshake's error with its type intact; nil when it did not fail or
// failed before the handshake.
func (c *Client) probeTLS(ctx context.Context, addr string, tcfg *tls.Config) error {
	cfg := tcfg.Clone()
	cfg.VerifyConnection = c.tls.VerifyConnection
	return tlspolicy.HandshakeError(ctx, addr, cfg, c.cfg.ConnectTimeout)
}
