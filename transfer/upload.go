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
	"strconv"
	"strings"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
)

// run is one attempt on session s. progressed reports whether the attempt
// moved file bytes to the server (an interrupted attempt that progressed is
// worth resuming at once).
func (u *upload) run(ctx context.Context, s *session) (progressed bool, err error) {
	c := u.c
	if c.cfg.SameName == Skip {
		ok, err := s.exists(u.remote)
		if err != nil {
			return false, u.opErr("SIZE "+u.remote, err)
		}
		if ok {
			for _, t := range u.temps {
				s.dele(t) // a leftover of an earlier attempt; best effort
			}
			u.res.Remote, u.res.Skipped = u.remote, true
			c.log.Info("upload skipped: remote file exists", "remote", u.remote)
			return false, nil
		}
	}
	cached, err := c.mkdirAll(s, u.dir)
	if err != nil {
		return false, err
	}
	// The hidden temporary name first; a server that refuses file names
	// starting with a dot (Pure-FTPd -x, some hosting setups) gets the
	// visible one, for the rest of this Client's life.
	names := u.temps
	if c.plainTemp.Load() {
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
	if err := u.unchanged(); err != nil {
		s.dele(u.temp) // stale content; the new version has its own temporary name
		return false, err
	}
	if err := u.verifyTemp(s); err != nil {
		return false, err
	}
	return false, u.place(s)
}

// send makes u.temp hold the whole file: resumed from its size when it is
// there, not larger than the local file, and REST is available.
func (u *upload) send(ctx context.Context, s *session, cached bool) (progressed bool, err error) {
	c := u.c
	offset := int64(0)
	var have int64
	var exists bool
	if !u.job.Fresh || u.prevErr != nil {
		// An earlier attempt may have left a temporary file: resume it.
		have, exists, err = s.size(u.temp)
		if err != nil && err != errNoSize {
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
	if u.prevErr != nil && offset <= u.prevStart && !(exists && offset == u.size) {
		// The previous attempt of this call moved nothing to the server.
		return false, u.prevErr
	}
	u.lastStart = offset
	u.pickHash(s)

	if exists && offset == u.size {
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

// unchanged checks, before the temporary file is renamed into place, that
// the local file is still the one that was sent: same file, size and
// modification time. A capture still being written when its upload began
// (a writer that paused longer than the settle window) is never shown
// under its final name half-written.
func (u *upload) unchanged() error {
	st, err := os.Stat(u.job.LocalPath)
	if err == nil && os.SameFile(st, u.opened) && st.Size() == u.size && st.ModTime().Equal(u.opened.ModTime()) {
		return nil
	}
	why := "it was replaced or removed"
	if err == nil && os.SameFile(st, u.opened) {
		why = fmt.Sprintf("now %d bytes, sent %d", st.Size(), u.size)
		if st.Size() == u.size {
			why = "modified"
		}
	}
	return &Error{Class: Local, Op: "upload " + u.remote,
		Msg: "the local file changed during the upload (" + why + "; still being written? raise the settle window): not renamed into place, the temporary file is deleted"}
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
	c := u.c
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
		if _, err := s.expect(fmt.Sprintf("REST %d", offset), 350); err != nil {
			var re *replyError
			if errors.As(err, &re) {
				// The server will not resume: start again from 0.
				c.log.Info("server refused REST: starting again", "temp", u.temp, "reply", serverText(err))
				s.abortData(dc)
				if derr := s.dele(u.temp); derr != nil {
					return 0, classify("DELE "+u.temp, derr)
				}
				return u.stor(ctx, s, 0)
			}
			return 0, classify("REST", err)
		}
	}
	op := "STOR " + u.temp
	// The data connection's TLS handshake runs while STOR waits for its
	// 150: the ClientHello waits in the server's socket until the server
	// takes the connection, and a round trip per file is saved (a server
	// that handshakes before its 150 is served too). No file byte is sent
	// before the handshake passed the policy (VerifyConnection) and the
	// server said 150.
	hsDone := make(chan error, 1)
	go func() { hsDone <- s.handshake(ctx, dc) }()
	code, msg, err := s.cmd("STOR " + u.temp)
	if err == nil && code/100 != 1 {
		err = &replyError{code: code, msg: msg}
	}
	if err != nil {
		s.abortData(dc) // ends the handshake
		<-hsDone
		return 0, classify(op, err)
	}
	u.res.DataConns++
	if offset > u.res.ResumedFrom {
		u.res.ResumedFrom = offset
	}
	if offset > 0 {
		c.log.Info("resuming upload", "remote", u.remote, "offset", offset, "size", u.size)
	}
	if err := <-hsDone; err != nil {
		s.abortData(dc)
		return 0, u.dataErr(ctx, s, dc, op, err, 0)
	}
	resumed := dc.tc.ConnectionState().DidResume

	chunk := c.lim.chunk(len(u.buf))
	c.lim.begin()
	if u.job.Progress != nil {
		u.job.Progress(offset, u.size)
	}
	timeout := c.cfg.Timeout
	bulk := newBulk(dc.raw, c.bulkRate, &c.bulkWindows) // see bulk_linux.go
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
		now := time.Now()
		bulk.beforeWrite(now)
		dc.tc.SetWriteDeadline(now.Add(timeout))
		dc.bc.hold = true
		w, werr := dc.tc.Write(u.buf[:m])
		if ferr := dc.bc.flush(); werr == nil && ferr != nil {
			w, werr = 0, ferr
		}
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
	bulk.set(false)
	if err := s.finish(dc, u.buf); err != nil {
		return sent, u.dataErr(ctx, s, dc, op, err, sent)
	}
	code, msg, err = s.readReply()
	if err != nil {
		if !resumed {
			return sent, reuseErr(op, err, Transient)
		}
		return sent, classify(op, err)
	}
	if code/100 != 2 {
		return sent, transferReplyErr(op, code, msg, resumed)
	}
	u.sums(hs)
	return sent, nil
}

// dataErr explains a failed data connection: the server's reply when it
// sent one (426, 452, 522...), a session-reuse refusal, or the network error.
func (u *upload) dataErr(ctx context.Context, s *session, dc *dataConn, op string, err error, sent int64) error {
	if ctx.Err() != nil {
		return ctx.Err()
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
	if _, verr, _ := s.hs.get(); verr != nil {
		s.broken = true
		return classify(op, tlspolicy.Explain(verr, s.tls))
	}
	resumed := dc.tc != nil && dc.tc.ConnectionState().DidResume
	code, msg, rerr := s.readReply()
	if rerr == nil && code/100 != 2 {
		return transferReplyErr(op, code, msg, dc.tc == nil || resumed)
	}
	if rerr != nil && dc.tc != nil && !resumed {
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
	// exists: ask in the same round trip.
	lines := []string{"SIZE " + u.temp}
	if u.c.cfg.SameName != Overwrite {
		lines = append(lines, "SIZE "+u.remote)
	}
	rs, err := s.pipeline(lines...)
	if err != nil {
		return classify("SIZE "+u.temp, err)
	}
	have, ok, err := sizeReply(u.temp, rs[0].code, rs[0].msg)
	if len(rs) > 1 {
		if _, exists, ferr := sizeReply(u.remote, rs[1].code, rs[1].msg); ferr == nil {
			u.finalExists = &exists
		}
	}
	verified := []string{}
	switch {
	case err == errNoSize:
	case err != nil:
		return classify("SIZE "+u.temp, err)
	case !ok:
		return &Error{Class: Transient, Op: "verify " + u.temp, Msg: "temporary file missing on the server after upload; will retry"}
	case have != u.size:
		s.dele(u.temp)
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
			s.dele(u.temp)
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
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}

// place renames the verified temporary file to its final name under the
// same-name policy.
func (u *upload) place(s *session) error {
	c := u.c
	final := u.remote
	switch c.cfg.SameName {
	case Skip:
		ok, err := u.exists(s, final)
		if err != nil {
			return classify("SIZE "+final, err)
		}
		if ok {
			s.dele(u.temp)
			u.res.Remote, u.res.Skipped = final, true
			return nil
		}
	case Rename:
		for i := 1; ; i++ {
			ok, err := u.exists(s, final)
			if err != nil {
				return classify("SIZE "+final, err)
			}
			if !ok {
				break
			}
			if same, err := u.sameContent(s, final); err != nil {
				return err
			} else if same {
				// This capture is there already (an earlier attempt renamed
				// it and stopped before reporting success).
				s.dele(u.temp)
				u.res.Remote, u.res.Existing = final, true
				return nil
			}
			if i > maxRenameTry {
				return &Error{Class: Permanent, Op: "rename " + u.remote, Msg: fmt.Sprintf("%d files with this name exist: clean up the server", maxRenameTry)}
			}
			final = suffixName(u.remote, i)
		}
	}
	op := "rename " + u.temp + " to " + final
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
				s.dele(u.temp) // it will not be renamed: do not leave it behind
			}
			return e
		}
	}
	// The temporary file was verified before the rename, and the server
	// confirmed the rename (250): no SIZE of the final name (a round trip
	// per file on a slow link, for nothing).
	u.res.Remote = final
	c.log.Info("uploaded", "remote", final, "size", u.size, "verified", u.res.Verified, "resumed_from", u.res.ResumedFrom)
	return nil
}

// exists says whether remote p exists, from verifyTemp's answer for the
// final name when it has one (used once: a later check asks the server).
func (u *upload) exists(s *session, p string) (bool, error) {
	if p == u.remote && u.finalExists != nil {
		ok := *u.finalExists
		u.finalExists = nil
		return ok, nil
	}
	return s.exists(p)
}

// sameContent says whether remote p is this capture: same size and, only
// when the server can hash, same hash. Without a hash it is never "same".
func (u *upload) sameContent(s *session, p string) (bool, error) {
	if u.hashAlg == "" {
		return false, nil
	}
	have, ok, err := s.size(p)
	if err != nil || !ok || have != u.size {
		return false, nil
	}
	got, err := u.remoteHash(s, p)
	if err != nil {
		if codeOf(err) != 0 {
			return false, nil
		}
		return false, classify(u.hashVia+" "+p, err)
	}
	return got != "" && hashEqual(u.hashAlg, got, u.local[u.hashAlg]), nil
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
