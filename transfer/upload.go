package transfer

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
)

// upload is the state of one Upload call.
//
// Its methods are split by concern over three files of one layer, which
// call each other: upload.go (the call, sending, verifying, placing),
// intent.go (settling a Job.Intent: settle) and sample.go (recognising the
// same shot at a taken name by the server's hash or sampled bytes:
// sameContent, which uses this file's hash and data-connection helpers).
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
	bufp    *[]byte // the pooled buffer behind buf (bufpool.go), for release
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
	defer u.release() // last: after the abort below has finished
	defer u.abortOn(ctx)()
	return c.attempts(ctx, op, u)
}

// abortOn aborts u when ctx ends; the function it returns undoes that,
// and waits for an abort already under way to finish.
func (u *upload) abortOn(ctx context.Context) func() {
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { u.abort(); close(done) })
	return func() {
		if !stop() {
			<-done
		}
	}
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
	bp := getChunk()
	u := &upload{
		c: c, job: job, f: f, size: st.Size(), opened: st, remote: job.Remote, dir: dir, name: name,
		temp: temps[0], temps: temps,
		buf: (*bp)[:min(chunkSize, max(st.Size(), 4<<10))], bufp: bp,
	}
	u.res.Size = u.size
	return u
}

// release gives the upload's chunk buffer back to the pool; u is not used
// after it (every goroutine that read or wrote u.buf has been joined).
func (u *upload) release() {
	putChunk(u.bufp)
	u.bufp, u.buf = nil, nil
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
		u.res.TLSEngine = s.engineName()
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

// run is one attempt on session s. progressed reports whether the attempt
// moved file bytes to the server (an interrupted attempt that progressed is
// worth resuming at once).
func (u *upload) run(ctx context.Context, s *session) (progressed bool, err error) {
	c := u.c
	u.known = nil // an earlier attempt's
	if u.job.Intent != nil && !u.settled {
		if done, err := u.settle(s); err != nil || done {
			return false, err
		}
	}
	if c.cfg.SameName == Skip && !u.intentTemp {
		if done, err := u.skipExisting(ctx, s); err != nil || done {
			return false, err
		}
	}
	cached := false
	if !u.intentTemp { // else the temporary file shows the directory exists
		if cached, err = c.mkdirAll(s, u.dir); err != nil {
			return false, err
		}
	}
	// The hidden temporary name first; a server that refuses file names
	// starting with a dot (Pure-FTPd -x, some hosting setups) gets the
	// visible one, for the rest of this Client's life.
	names := u.temps
	switch {
	case u.intentTemp:
		names = []string{u.temp}
	case c.plainTemp.Load():
		names = names[1:]
	}
	for i, name := range names {
		u.temp = name
		progressed, err = u.send(ctx, s, cached)
		if err == nil {
			if i > 0 {
				c.plainTemp.Store(true)
				c.log.Warn("server refused a temporary name starting with a dot: using visible temporary names", "temp", name)
			}
			break
		}
		code := codeOf(err)
		if progressed || i == len(names)-1 || (code != 550 && code != 553) {
			return progressed, err
		}
		c.log.Info("server refused the temporary name: trying a visible one", "temp", name, "err", err)
	}
	u.res.Hash = u.recordHash()
	if changed, err := u.unchanged(); err != nil {
		if changed {
			u.dropTemp(s, "local file changed") // the new version has its own temporary name
		}
		return false, err
	}
	if err := u.verifyTemp(s); err != nil {
		return false, err
	}
	return false, u.place(ctx, s)
}

// send makes u.temp hold the whole file: resumed from its size when it is
// there, not larger than the local file, and REST is available.
func (u *upload) send(ctx context.Context, s *session, cached bool) (progressed bool, err error) {
	c := u.c
	offset := int64(0)
	var have int64
	var exists bool
	if u.intentTemp {
		// settle saw the whole file there (the Intent's temporary file).
		have, exists = u.size, true
	} else if !u.job.Fresh || u.prevErr != nil {
		// An earlier attempt may have left a temporary file: resume it.
		have, exists, err = s.size(u.temp)
		if err != nil && !errors.Is(err, errNoSize) {
			return false, u.opErr("SIZE "+u.temp, err)
		}
	}
	if exists {
		switch {
		case have > u.size:
			c.log.Info("remote temporary file larger than the local file: starting again", "temp", u.temp, "remote", have, "local", u.size)
			if err := s.dele(u.temp); err != nil {
				return false, u.opErr("DELE "+u.temp, err)
			}
		case have > 0 && !s.has("REST"):
			c.log.Info("server does not offer REST STREAM: starting again", "temp", u.temp)
		default:
			offset = have
		}
	}
	sentAll := exists && offset == u.size
	if u.prevErr != nil && offset <= u.prevStart && !sentAll {
		// The previous attempt of this call moved nothing to the server.
		return false, u.prevErr
	}
	u.lastStart = offset
	u.pickHash(s)

	if sentAll {
		// An earlier attempt sent everything; it ended before the rename.
		return false, u.hashLocal(0, u.size, nil)
	}
	n, err := u.stor(ctx, s, offset)
	if err != nil {
		var re *replyError
		if cached && errors.As(err, &re) && (re.code == 550 || re.code == 553) {
			// The directory may have been removed since we saw it.
			c.forgetDir(u.dir)
			if _, err2 := c.mkdirAll(s, u.dir); err2 != nil {
				return n > 0, err2
			}
			n, err = u.stor(ctx, s, 0)
		}
	}
	return n > 0, err
}

// opErr classifies err from op on the remote file.
func (u *upload) opErr(op string, err error) error {
	e := classify(op, err)
	return e
}

// mkdirAll creates the remote directory dir and its parents (mkdir -p).
// cached reports whether dir was known to exist already.
func (c *Client) mkdirAll(s *session, dir string) (cached bool, err error) {
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" || dir == "." {
		return false, nil
	}
	c.mu.Lock()
	known := c.dirs[dir]
	c.mu.Unlock()
	if known {
		return true, nil
	}
	parts := strings.Split(dir, "/")
	for i, part := range parts {
		if part == "" || part == "." {
			continue
		}
		p := strings.Join(parts[:i+1], "/") // "/a", "/a/b" or "a", "a/b"
		code, msg, err := s.cmd("MKD " + p)
		if err != nil {
			return false, classify("MKD "+p, err)
		}
		switch {
		case code == 257 || code/100 == 2:
			c.log.Debug("created remote directory", "dir", p)
		case code == 550 || code == 521 || code == 553:
			// Exists already, or not allowed: STOR will tell.
		default:
			return false, classify("MKD "+p, &replyError{code: code, msg: msg})
		}
	}
	c.mu.Lock()
	if len(c.dirs) > 256 {
		c.dirs = map[string]bool{}
	}
	c.dirs[dir] = true
	c.mu.Unlock()
	return false, nil
}

func (c *Client) forgetDir(dir string) {
	c.mu.Lock()
	delete(c.dirs, strings.TrimSuffix(dir, "/"))
	c.mu.Unlock()
}

// pickHash chooses the hash the server can compute: SHA-256 first.
func (u *upload) pickHash(s *session) {
	u.hashAlg, u.hashVia = "", ""
	hashAlgs := strings.ToUpper(s.feat["HASH"])
	offers := func(a string) bool {
		for _, x := range strings.Split(hashAlgs, ";") {
			if strings.TrimSuffix(strings.TrimSpace(x), "*") == a {
				return true
			}
		}
		return false
	}
	switch {
	case s.has("HASH") && offers("SHA-256"):
		u.hashAlg, u.hashVia = "sha256", "HASH"
	case s.has("XSHA256"):
		u.hashAlg, u.hashVia = "sha256", "XSHA256"
	case s.has("HASH") && offers("MD5"):
		u.hashAlg, u.hashVia = "md5", "HASH"
	case s.has("XMD5"):
		u.hashAlg, u.hashVia = "md5", "XMD5"
	case s.has("HASH") && offers("CRC32"):
		u.hashAlg, u.hashVia = "crc32", "HASH"
	case s.has("XCRC"):
		u.hashAlg, u.hashVia = "crc32", "XCRC"
	}
}

// hashers returns fresh hashers: the server's algorithm, SHA-256 when the
// configuration wants it recorded, CRC-32C when there is neither.
func (u *upload) hashers() map[string]hash.Hash {
	h := map[string]hash.Hash{}
	switch u.hashAlg {
	case "sha256":
		h["sha256"] = sha256.New()
	case "md5":
		h["md5"] = md5.New()
	case "crc32":
		h["crc32"] = crc32.NewIEEE()
	}
	if u.c.cfg.RecordSHA256 && h["sha256"] == nil {
		h["sha256"] = sha256.New()
	}
	if len(h) == 0 {
		h["crc32c"] = crc32.New(castagnoli)
	}
	return h
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordHash is Result.Hash: the strongest local sum computed.
func (u *upload) recordHash() string {
	for _, alg := range []string{"sha256", "md5", "crc32", "crc32c"} {
		if v, ok := u.local[alg]; ok {
			return alg + ":" + v
		}
	}
	return ""
}

// hashLocal feeds the local bytes [from, to) to hs (fresh hashers when hs is
// nil, their sums then stored in u.local).
func (u *upload) hashLocal(from, to int64, hs map[string]hash.Hash) error {
	final := hs == nil
	if final {
		hs = u.hashers()
	}
	for off := from; off < to; {
		n := int64(len(u.buf))
		if to-off < n {
			n = to - off
		}
		m, err := u.f.ReadAt(u.buf[:n], off)
		if int64(m) < n {
			return u.readErr(err)
		}
		for _, h := range hs {
			h.Write(u.buf[:m])
		}
		off += int64(m)
	}
	if final {
		u.sums(hs)
	}
	return nil
}

func (u *upload) sums(hs map[string]hash.Hash) {
	u.local = map[string]string{}
	for k, h := range hs {
		u.local[k] = hex.EncodeToString(h.Sum(nil))
	}
}

func (u *upload) readErr(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return &Error{Class: Local, Op: "read " + u.job.LocalPath, Msg: "local file shrank during the upload: it is still being written or was replaced", Err: io.ErrUnexpectedEOF}
	}
	return localErr("read "+u.job.LocalPath, err, "cannot read the local file")
}

// stor sends the local file from offset to the temporary name (REST + STOR
// when offset > 0) on a TLS data connection we own, and ends it so that the
// server gets every byte. It returns the bytes sent on the data connection.
func (u *upload) stor(ctx context.Context, s *session, offset int64) (sent int64, err error) {
	hs := u.hashers()
	if err := u.hashLocal(0, offset, hs); err != nil {
		return 0, err
	}
	dc, err := s.openData(ctx)
	if err != nil {
		return 0, classify("data connection", err)
	}
	defer s.abortData(dc) // on early returns
	if offset > 0 {
		restart, err := u.rest(s, dc, offset)
		if err != nil {
			return 0, err
		}
		if restart {
			return u.stor(ctx, s, 0)
		}
	}
	op := "STOR " + u.temp
	resumed, err := u.startStor(ctx, s, dc, op, offset)
	if err != nil {
		return 0, err
	}
	sent, err = u.sendData(ctx, s, dc, op, offset, hs)
	if err != nil {
		return sent, err
	}
	if err := u.endStor(ctx, s, dc, op, sent, resumed); err != nil {
		return sent, err
	}
	u.sums(hs)
	return sent, nil
}

// rest asks the server to resume the temporary file at offset. A server
// that refuses with a reply will not resume: the data connection is
// aborted, the temporary file deleted and restart is true (start again
// from 0).
func (u *upload) rest(s *session, dc *dataConn, offset int64) (restart bool, err error) {
	_, err = s.expect(fmt.Sprintf("REST %d", offset), 350)
	if err == nil {
		return false, nil
	}
	var re *replyError
	if !errors.As(err, &re) {
		return false, classify("REST", err)
	}
	u.c.log.Info("server refused REST: starting again", "temp", u.temp, "reply", serverText(err))
	s.abortData(dc)
	if derr := s.dele(u.temp); derr != nil {
		return false, classify("DELE "+u.temp, derr)
	}
	return true, nil
}

// startStor sends op (STOR) and runs the data connection's TLS handshake
// meanwhile; it returns once the server said 1xx and the handshake passed,
// with whether the data connection resumed the control's TLS session.
func (u *upload) startStor(ctx context.Context, s *session, dc *dataConn, op string, offset int64) (resumed bool, err error) {
	// The data connection's TLS handshake runs while STOR waits for its
	// 150: the ClientHello waits in the server's socket until the server
	// takes the connection, and a round trip per file is saved (a server
	// that handshakes before its 150 is served too). No file byte is sent
	// before the handshake passed the policy (VerifyConnection) and the
	// server said 150.
	hsDone := make(chan error, 1)
	go func() { hsDone <- s.handshake(ctx, dc) }()
	code, msg, err := s.cmd(op)
	if err == nil && code/100 != 1 {
		err = &replyError{code: code, msg: msg}
	}
	if err != nil {
		s.abortData(dc)                    // ends the handshake
		if herr := <-hsDone; herr != nil { // the cut's; op's error is the one
			s.c.log.Debug("ftp data connection: handshake ended", "err", herr)
		}
		return false, classify(op, err)
	}
	u.res.DataConns++
	if offset > u.res.ResumedFrom {
		u.res.ResumedFrom = offset
	}
	if offset > 0 {
		u.c.log.Info("resuming upload", "remote", u.remote, "offset", offset, "size", u.size)
	}
	if err := <-hsDone; err != nil {
		s.abortData(dc)
		return false, u.dataErr(ctx, s, dc, op, err, 0)
	}
	return !dc.isTLS() || dc.didResume(), nil // plain FTP: nothing to resume
}

// sendData writes the local bytes [offset, size) on dc in chunks the rate
// limit allows, feeding them to hs and reporting progress; bulk mode
// (bulk.go) is off again when it returns. It returns the bytes written.
func (u *upload) sendData(ctx context.Context, s *session, dc *dataConn, op string, offset int64, hs map[string]hash.Hash) (sent int64, err error) {
	c := u.c
	chunk := c.lim.chunk(len(u.buf))
	if u.job.Progress != nil {
		u.job.Progress(offset, u.size)
	}
	bulk := newBulk(dc.bulkConn(), c.bulkRate, &c.bulkWindows) // see bulk_linux.go
	defer bulk.set(false)
	for off := offset; off < u.size; {
		n := int64(chunk)
		if u.size-off < n {
			n = u.size - off
		}
		m, rerr := u.f.ReadAt(u.buf[:n], off)
		if int64(m) < n {
			return sent, u.readErr(rerr)
		}
		for _, h := range hs {
			h.Write(u.buf[:m])
		}
		if err := c.lim.wait(ctx, m); err != nil {
			return sent, err
		}
		if err := ctx.Err(); err != nil {
			// Canceled: stop now (the abort closing the socket runs on
			// another goroutine; do not race it with more writes).
			return sent, err
		}
		w, werr := u.writeChunk(dc, bulk, u.buf[:m])
		sent += int64(w)
		off += int64(w)
		if werr != nil {
			s.abortData(dc)
			return sent, u.dataErr(ctx, s, dc, op, werr, sent)
		}
		bulk.wrote(w)
		if u.job.Progress != nil {
			u.job.Progress(off, u.size)
		}
	}
	return sent, nil
}

// writeChunk writes b on dc within the write timeout and flushes it to
// the socket at once.
func (u *upload) writeChunk(dc *dataConn, bulk *bulkMode, b []byte) (int, error) {
	now := time.Now()
	bulk.beforeWrite(now)
	if err := dc.c.SetWriteDeadline(now.Add(u.c.cfg.Timeout)); err != nil {
		return 0, err // the write could block for ever: fails as the write would
	}
	if dc.bc == nil { // the engine's TLS: its record writes are OpenSSL's
		return dc.c.Write(b)
	}
	dc.bc.hold = true
	w, werr := dc.c.Write(b)
	if ferr := dc.bc.flush(); werr == nil && ferr != nil {
		w, werr = 0, ferr
	}
	return w, werr
}

// endStor ends the data connection so that the server gets every byte and
// reads STOR's final reply. resumed says whether the data connection
// resumed the control's TLS session: a server requiring reuse drops one
// that did not.
func (u *upload) endStor(ctx context.Context, s *session, dc *dataConn, op string, sent int64, resumed bool) error {
	if err := s.finish(dc, u.buf); err != nil {
		return u.dataErr(ctx, s, dc, op, err, sent)
	}
	code, msg, err := s.readReply()
	if err != nil {
		if !resumed {
			return reuseErr(op, err, Transient)
		}
		return classify(op, err)
	}
	if code/100 != 2 {
		return transferReplyErr(op, code, msg, resumed)
	}
	return nil
}

// dataErr explains a failed data connection: the server's reply when it
// sent one (426, 452, 522...), a session-reuse refusal, or the network error.
func (u *upload) dataErr(ctx context.Context, s *session, dc *dataConn, op string, err error, sent int64) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, errNoConnectBack) {
		return s.noConnectBackErr(op)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		// The server stalled: its reply may come at any time, so the control
		// connection is out of step.
		s.broken = true
		u.stalled = true
		return &Error{Class: Transient, Op: op, Err: err,
			Msg: fmt.Sprintf("no progress for %s on the data connection (server stalled); will resume", u.c.cfg.Timeout)}
	}
	if _, _, verr := s.hs.get(); verr != nil {
		s.broken = true
		return classify(op, tlspolicy.Explain(verr, s.tls))
	}
	resumed := dc.didResume()
	code, msg, rerr := s.readReply()
	if rerr == nil && code/100 != 2 {
		return transferReplyErr(op, code, msg, !dc.isTLS() || resumed)
	}
	if rerr != nil && dc.isTLS() && !resumed {
		return reuseErr(op, rerr, Transient)
	}
	return classify(op, tlspolicy.Explain(err, s.tls))
}

// transferReplyErr explains the negative reply ending a transfer; resumed
// says whether the data connection's TLS session resumed the control's.
func transferReplyErr(op string, code int, msg string, resumed bool) error {
	re := &replyError{code: code, msg: msg}
	switch {
	case code == 522: // vsftpd: "522 SSL connection failed: session reuse required"
		return reuseErr(op, re, TLSPolicy)
	case code == 425 && !resumed: // ProFTPD: "425 Unable to build data connection: Operation not permitted"
		return reuseErr(op, re, Transient)
	}
	return classify(op, re)
}

// reuseErr names TLS session reuse: the server dropped a data connection
// that did not resume the control session. Class is TLSPolicy when the
// server said so (522), else Transient (it may have been the network).
func reuseErr(op string, err error, class Class) error {
	return &Error{Class: class, Op: op, Code: codeOf(err), Err: err,
		Msg: "the server dropped the TLS data connection, which did not resume the control connection's TLS session; " +
			"servers that require TLS session reuse (vsftpd require_ssl_reuse, ProFTPD mod_tls) do that: keep a ClientSessionCache and ServerName in the TLS config, " +
			"or turn the requirement off on the server (" + serverText(err) + ")"}
}

// verifyTemp checks the temporary file's size and, when the server can
// compute one, its hash; a mismatch deletes it (the next attempt starts over).
func (u *upload) verifyTemp(s *session) error {
	// Under skip and rename, place needs to know whether the final name
	// exists (and its size): ask in the same round trip.
	lines := []string{"SIZE " + u.temp}
	first := u.firstName()
	if u.c.cfg.SameName != Overwrite {
		lines = append(lines, "SIZE "+first)
	}
	rs, err := s.pipeline(lines...)
	if err != nil {
		return classify("SIZE "+u.temp, err)
	}
	have, ok, err := sizeReply(u.temp, rs[0].code, rs[0].msg)
	if len(rs) > 1 {
		if n, exists, ferr := sizeReply(first, rs[1].code, rs[1].msg); ferr == nil {
			u.known = &remoteStat{p: first, n: n, ok: exists}
		}
	}
	verified := []string{}
	switch {
	case errors.Is(err, errNoSize):
	case err != nil:
		return classify("SIZE "+u.temp, err)
	case !ok:
		return &Error{Class: Transient, Op: "verify " + u.temp, Msg: "temporary file missing on the server after upload; will retry"}
	case have != u.size:
		u.dropTemp(s, "size differs")
		return &Error{Class: Transient, Op: "verify " + u.temp,
			Msg: fmt.Sprintf("server has %d bytes, local file has %d: deleted the temporary file; will upload again", have, u.size)}
	default:
		verified = append(verified, "size")
	}
	if u.hashAlg != "" {
		got, err := u.remoteHash(s, u.temp)
		switch {
		case err != nil && codeOf(err) != 0:
			u.c.log.Warn("server refused to hash the file: checked size only", "remote", u.temp, "reply", serverText(err))
		case err != nil:
			return classify(u.hashVia+" "+u.temp, err)
		case got == "":
			u.c.log.Warn("server's hash reply not understood: checked size only", "remote", u.temp)
		case !hashEqual(u.hashAlg, got, u.local[u.hashAlg]):
			u.dropTemp(s, u.hashAlg+" differs")
			return &Error{Class: Transient, Op: "verify " + u.temp,
				Msg: fmt.Sprintf("%s on the server is %s, local %s: deleted the temporary file; will upload again", u.hashAlg, got, u.local[u.hashAlg])}
		default:
			verified = append(verified, u.hashAlg)
		}
	}
	u.res.Verified = strings.Join(verified, "+")
	return nil
}

func hashEqual(alg, a, b string) bool {
	if alg == "crc32" {
		x, err1 := strconv.ParseUint(a, 16, 32)
		y, err2 := strconv.ParseUint(b, 16, 32)
		return err1 == nil && err2 == nil && x == y
	}
	return strings.EqualFold(a, b)
}

// remoteHash asks the server for the hash of p with u.hashAlg.
func (u *upload) remoteHash(s *session, p string) (string, error) {
	var line string
	name := map[string]string{"sha256": "SHA-256", "md5": "MD5", "crc32": "CRC32"}[u.hashAlg]
	if u.hashVia == "HASH" {
		if s.hashSel != name {
			if _, err := s.expect("OPTS HASH "+name, 2); err != nil {
				return "", err
			}
			s.hashSel = name
		}
		line = "HASH " + p
	} else {
		line = u.hashVia + " " + p
	}
	msg, err := s.expect(line, 2)
	if err != nil {
		return "", err
	}
	return parseHashReply(msg, u.hashAlg, name), nil
}

// parseHashReply finds the hex digest in a HASH ("SHA-256 0-49 <hex> name")
// or X* ("<hex>") reply; "" when there is none.
func parseHashReply(msg, alg, name string) string {
	want := map[string]int{"sha256": 64, "md5": 32, "crc32": 8}[alg]
	for _, l := range strings.Split(msg, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && strings.EqualFold(f[0], name) && isHex(f[2]) {
			return strings.ToLower(f[2])
		}
	}
	found := ""
	for _, l := range strings.Split(msg, "\n") {
		for _, t := range strings.Fields(l) {
			if isHex(t) && (len(t) == want || alg == "crc32" && len(t) > 0 && len(t) <= 8) {
				found = strings.ToLower(t)
			}
		}
	}
	return found
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !isHexDigit(r) {
			return false
		}
	}
	return true
}

func isHexDigit(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F'
}

// unchanged checks, right before the temporary file is renamed into place,
// through the descriptor the upload read, that the capture is complete:
// no process holds it open for writing (a read lease), and fstat shows the
// size and modification time it had when it was opened. A writer that
// paused longer than the settle window and goes on, or holds the file
// open, is never published half-written. While the file is merely open
// for writing and unchanged, the temporary file is kept (a later attempt
// finds it whole and sends nothing); when it changed, it is deleted
// (stale content) by the caller.
func (u *upload) unchanged() (changed bool, err error) {
	st, serr := u.f.Stat()
	switch {
	case serr != nil:
		return true, localErr("upload "+u.remote, serr, "cannot stat the local file before the rename")
	case st.Size() != u.size || !st.ModTime().Equal(u.opened.ModTime()):
		why := fmt.Sprintf("now %d bytes, sent %d", st.Size(), u.size)
		if st.Size() == u.size {
			why = "modified"
		}
		return true, &Error{Class: Local, Op: "upload " + u.remote, Err: ErrStillWriting,
			Msg: "the local file changed during the upload (" + why + "; still being written?): not renamed into place, the temporary file is deleted"}
	case u.c.writerActive(u.f):
		return false, &Error{Class: Local, Op: "upload " + u.remote, Err: ErrStillWriting,
			Msg: "the local file is still open for writing by another process: not renamed into place, the temporary file is kept; will retry once it is closed"}
	}
	return false, nil
}

// place renames the verified temporary file to its final name under the
// same-name policy, after announcing the rename through Job.BeforeRename.
func (u *upload) place(ctx context.Context, s *session) error {
	c := u.c
	final, done, err := u.chooseFinal(ctx, s)
	if err != nil || done {
		return err
	}
	op := "rename " + u.temp + " to " + final
	if f := u.job.BeforeRename; f != nil {
		if err := f(u.temp, final); err != nil {
			return &Error{Class: Local, Op: op, Err: err,
				Msg: "could not record the rename before doing it (" + oneLine(err.Error()) + "): not renamed, the temporary file is kept; will retry"}
		}
	}
	if err := s.rename(u.temp, final); err != nil {
		code := codeOf(err)
		if c.cfg.SameName == Overwrite && (code == 550 || code == 553 || code == 450) {
			// Some servers do not rename over an existing file.
			if ok, _ := s.exists(final); ok {
				if derr := s.dele(final); derr != nil {
					return classify("DELE "+final, derr)
				}
				err = s.rename(u.temp, final)
			}
		}
		if err != nil {
			e := classify(op, err)
			if e.Class == Permanent {
				u.dropTemp(s, "rename refused") // it will not be renamed: do not leave it behind
			}
			return e
		}
	}
	// The temporary file was verified before the rename, and the server
	// confirmed the rename (250): no SIZE of the final name (a round trip
	// per file on a slow link, for nothing).
	u.res.Remote = final
	c.log.Info("uploaded", "remote", final, "size", u.size, "verified", u.res.Verified, "resumed_from", u.res.ResumedFrom, "engine", u.res.TLSEngine)
	return nil
}

// chooseFinal picks the final name under the same-name policy. done: the
// upload ended without a rename (this capture is there already, or Skip
// found another file under the name); the temporary file is deleted.
func (u *upload) chooseFinal(ctx context.Context, s *session) (final string, done bool, err error) {
	switch u.c.cfg.SameName {
	case Skip:
		n, ok, err := u.statRemote(s, u.remote)
		if err != nil {
			return "", false, classify("SIZE "+u.remote, err)
		}
		if !ok {
			return u.remote, false, nil
		}
		return "", true, u.foundName(ctx, s, u.remote, n, []string{u.temp})
	case Rename:
		// The Intent's Final first (the name an earlier attempt chose),
		// then name, name-1, name-2...
		first := u.firstName()
		for i := -1; i <= maxRenameTry; i++ {
			p := first
			if i >= 0 {
				p = u.remote
				if i > 0 {
					p = suffixName(u.remote, i)
				}
				if p == first {
					continue // tried first
				}
			}
			n, ok, err := u.statRemote(s, p)
			if err != nil {
				return "", false, classify("SIZE "+p, err)
			}
			if !ok {
				return p, false, nil
			}
			same, how, err := u.sameContent(ctx, s, p, n)
			if err != nil {
				return "", false, err
			}
			if same {
				// An earlier attempt renamed it and stopped before its
				// success was recorded.
				u.existing(s, p, how, []string{u.temp})
				return "", true, nil
			}
		}
		return "", false, &Error{Class: Permanent, Op: "rename " + u.remote, Msg: fmt.Sprintf("%d files with this name exist: clean up the server", maxRenameTry)}
	}
	return u.remote, false, nil
}

// firstName is the first final name to try: the Intent's Final under
// SameName Rename when its temporary file was found complete, else
// Job.Remote.
func (u *upload) firstName() string {
	if u.c.cfg.SameName == Rename && u.intentTemp && u.intentFinal != "" {
		return u.intentFinal
	}
	return u.remote
}

// skipExisting runs before an upload under SameName Skip: when the final
// name exists, the upload ends, Existing when it holds this capture, else
// Skipped; leftover temporary files of this capture are deleted.
func (u *upload) skipExisting(ctx context.Context, s *session) (done bool, err error) {
	n, ok, err := u.statRemote(s, u.remote)
	if err != nil {
		return false, u.opErr("SIZE "+u.remote, err)
	}
	if !ok {
		return false, nil
	}
	return true, u.foundName(ctx, s, u.remote, n, u.temps)
}

// foundName ends an upload under SameName Skip whose final name p exists
// with n bytes (-1: unknown): Existing when it holds this capture, else
// Skipped. temps are deleted (best effort).
func (u *upload) foundName(ctx context.Context, s *session, p string, n int64, temps []string) error {
	same, how, err := u.sameContent(ctx, s, p, n)
	if err != nil {
		return err
	}
	if same {
		u.existing(s, p, how, temps)
		return nil
	}
	deleteAll(s, temps)
	u.res.Remote, u.res.Skipped, u.res.Verified, u.res.Hash = p, true, "", ""
	u.c.log.Info("upload skipped: another file holds the name", "remote", p, "remote_size", n, "size", u.size)
	return nil
}

// existing ends an upload whose capture is at p already, recognised by how.
func (u *upload) existing(s *session, p, how string, temps []string) {
	deleteAll(s, temps)
	u.res.Remote, u.res.Existing, u.res.Verified = p, true, how
	if u.res.Hash == "" {
		u.res.Hash = u.recordHash() // "" unless the whole file was hashed
	}
	u.c.log.Info("capture already on the server: not sent again", "remote", p, "size", u.size, "recognised_by", how)
}

// deleteAll deletes remote files in one round trip, best effort (a missing
// file is answered 550; the replies are read, so the control connection
// stays in step).
func deleteAll(s *session, ps []string) {
	lines := make([]string, 0, len(ps))
	for _, p := range ps {
		if p != "" {
			lines = append(lines, "DELE "+p)
		}
	}
	if len(lines) == 0 {
		return
	}
	if _, err := s.pipeline(lines...); err != nil {
		// The upload's outcome stands; the files are left behind.
		s.c.log.Info("could not delete leftover temporary files", "files", lines, "err", err)
	}
}

// remoteStat is a SIZE answer: n bytes (-1: unknown, the server has no
// SIZE) when ok (p exists).
type remoteStat struct {
	p  string
	n  int64
	ok bool
}

// statRemote returns the size of remote p (-1 when the server has no SIZE
// and MLST says p exists) and whether it exists, from verifyTemp's answer
// when it asked about p (used once: a later check asks the server).
func (u *upload) statRemote(s *session, p string) (n int64, ok bool, err error) {
	if k := u.known; k != nil && k.p == p {
		u.known = nil
		return k.n, k.ok, nil
	}
	n, ok, err = s.size(p)
	if errors.Is(err, errNoSize) {
		ok, err = s.listed(p)
		return -1, ok, err
	}
	return n, ok, err
}

// dropTemp deletes the temporary file after a failure that makes its
// content useless, best effort: that failure is what the attempt reports,
// and a temporary file left behind is never renamed unchecked (the next
// attempt checks it again, or uses another name).
func (u *upload) dropTemp(s *session, why string) {
	if err := s.dele(u.temp); err != nil {
		u.c.log.Warn("could not delete the temporary file", "temp", u.temp, "why", why, "err", err)
	}
}

// suffixName turns "dir/name.jpg" into "dir/name-i.jpg".
func suffixName(p string, i int) string {
	dir, name := "", p
	if k := strings.LastIndexByte(p, '/'); k >= 0 {
		dir, name = p[:k+1], p[k+1:]
	}
	ext := ""
	if k := strings.LastIndexByte(name, '.'); k > 0 {
		name, ext = name[:k], name[k:]
	}
	return dir + name + "-" + strconv.Itoa(i) + ext
}
