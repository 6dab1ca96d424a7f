package transfer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"
)

// cleanupGrace bounds the cleanup of a test whose ctx ended (a daemon
// stopping during POST /check): what it cannot delete by then is named in
// the dele step.
const cleanupGrace = 2 * time.Second

// testFileSize is the size of the connection test's file: sent in two
// halves, the second resumed with REST.
const testFileSize = 8 << 10

// files runs the steps that write on the server, on the logged-in session
// t.s: the folder, the data connection, STOR, SIZE, REST, the hash, the
// rename and the delete of the test file.
func (t *connTest) files(ctx context.Context) {
	dir, _ := path.Split(t.o.Remote)
	if err := CheckPath(t.o.Remote); err != nil || t.o.Remote == "" || strings.HasSuffix(t.o.Remote, "/") {
		t.fail(StepMkdir, &Error{Class: Permanent, Msg: fmt.Sprintf("no usable remote path %q to test", t.o.Remote)}, "fix remote_template")
		t.skipFrom(StepData)
		return
	}
	created, refused, err := t.mkdirs(dir)
	if err != nil {
		t.fail(StepMkdir, err, "check the remote_template and the user's right to create folders on the server")
		t.skipFrom(StepData)
		return
	}
	u, err := t.newTestUpload(dir)
	if err != nil {
		t.storNotRun(dir, created, refused, err, "the camera's temporary folder must be writable (TMPDIR)")
		return
	}
	t.u = u
	defer u.release() // last: after the abort below has finished
	defer u.abortOn(ctx)()
	if !u.setCur(t.s) { // ctx ended
		t.storNotRun(dir, created, refused, ctx.Err(), "")
		return
	}
	defer u.setCur(nil)
	if !t.storHalf(ctx, dir, created, refused) {
		t.skipFrom(StepSize)
		return
	}
	for _, step := range []func(context.Context) bool{t.sizeStep, t.restStep, t.hashStep, t.renameStep, t.deleStep} {
		if !step(ctx) {
			return
		}
	}
}

// storNotRun reports a STOR that could not start (err: why) and skips
// the steps after it.
func (t *connTest) storNotRun(dir string, created []string, refused, err error, fix string) {
	t.mkdirOK(dir, created, refused)
	t.skip(StepData, "not run: no STOR")
	t.fail(StepStor, err, fix)
	t.skipFrom(StepSize)
}

// mkdirs creates dir and its parents as Client.mkdirAll does, and reports
// which MKDs created a folder and the last refusal (550, 521, 553: the
// folder exists, or may not be created; STOR tells).
func (t *connTest) mkdirs(dir string) (created []string, refused error, err error) {
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" || dir == "." {
		return nil, nil, nil
	}
	parts := strings.Split(dir, "/")
	for i, part := range parts {
		if part == "" || part == "." {
			continue
		}
		p := strings.Join(parts[:i+1], "/")
		code, msg, err := t.s.cmd("MKD " + p)
		switch {
		case err != nil:
			return nil, nil, classify("MKD "+p, err)
		case code/100 == 2:
			created = append(created, p)
		case code == 550 || code == 521 || code == 553:
			refused = classify("MKD "+p, &replyError{code: code, msg: msg})
		default:
			return nil, nil, classify("MKD "+p, &replyError{code: code, msg: msg})
		}
	}
	return created, refused, nil
}

// newTestUpload prepares the upload of the test file: an unlinked local
// temporary file of testFileSize bytes, the temporary names of TempID
// "check-<random>" in dir.
func (t *connTest) newTestUpload(dir string) (*upload, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, localErr("test file", err, "no random name")
	}
	id := "check-" + hex.EncodeToString(rnd[:])
	f, err := os.CreateTemp("", "camftpd-check-*")
	if err != nil {
		return nil, localErr("test file", err, "cannot create the local test file")
	}
	_ = os.Remove(f.Name()) // unlinked: nothing stays behind locally; f still reads it
	line := "camftpd connection test " + time.Now().UTC().Format(time.RFC3339) + ": safe to delete\n"
	data := []byte(strings.Repeat(line, testFileSize/len(line)+1)[:testFileSize])
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, localErr("test file", err, "cannot write the local test file")
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, localErr("test file", err, "cannot stat the local test file")
	}
	// The final name: "camftpd-check-<random>" with Remote's extension.
	name := plainPrefix + id + path.Ext(t.o.Remote)
	u := t.c.newUpload(Job{LocalPath: "connection test file", Remote: dir + name, TempID: id, Fresh: true}, f, st, dir, name)
	u.pickHash(t.s)
	return u, nil
}

// storHalf sends the first half of the test file to its temporary name
// (the visible one when the server refuses a name starting with a dot, as
// uploads do) and reports the folder, the data connection and STOR.
func (t *connTest) storHalf(ctx context.Context, dir string, created []string, refused error) bool {
	full := t.u.size
	t.u.size = full / 2
	defer func() { t.u.size = full }()
	var err error
	names := t.u.temps
	for i, name := range names {
		t.u.temp = name
		t.left = append(t.left, name)
		if _, err = t.u.stor(ctx, t.s, 0); err == nil || i == len(names)-1 || (codeOf(err) != 550 && codeOf(err) != 553) {
			break
		}
	}
	if err == nil {
		t.mkdirOK(dir, created, refused)
		t.dataOK()
		detail := fmt.Sprintf("%d bytes to %s", full/2, t.u.temp)
		if t.u.temp != names[0] {
			detail += " (the server refused a name starting with a dot: uploads use visible temporary names)"
		}
		t.ok(StepStor, detail)
		return true
	}
	t.storFailed(dir, created, refused, err)
	return false
}

func (t *connTest) mkdirOK(dir string, created []string, refused error) {
	switch {
	case dir == "":
		t.skip(StepMkdir, "the remote template puts files in the login folder: nothing to create")
	case len(created) > 0:
		t.ok(StepMkdir, "created "+strings.Join(created, ", ")+" (kept: uploads use it)")
	case refused != nil:
		t.ok(StepMkdir, strings.TrimSuffix(dir, "/")+" exists ("+oneLine(refused.Error())+")")
	default:
		t.ok(StepMkdir, strings.TrimSuffix(dir, "/"))
	}
}

// dataOK reports the data connection of the first STOR: passive mode and
// its TLS session.
func (t *connTest) dataOK() {
	mode := "passive (EPSV)"
	switch {
	case t.c.cfg.Active && t.s.eprtOff:
		mode = "active (PORT; EPRT refused)"
	case t.c.cfg.Active:
		mode = "active (EPRT)"
	case t.s.epsvOff:
		mode = "passive (PASV)"
	}
	if t.c.tls == nil {
		t.warn(StepData, mode+", plain FTP: the file crossed the network unencrypted", "set secure = true")
		return
	}
	cs, _, ok := t.hl.get(1)
	switch {
	case !ok:
		t.ok(StepData, mode)
	case cs.DidResume:
		t.ok(StepData, mode+", TLS resumed the control connection's session")
	default:
		t.ok(StepData, mode+", TLS not resumed (this server does not require it)")
	}
}

// storFailed reports a failed first STOR at its step: the data connection
// (its TLS, a session the server wanted resumed), the folder (MKD was
// refused and STOR found no folder), or STOR itself.
func (t *connTest) storFailed(dir string, created []string, refused, err error) {
	code := codeOf(err)
	var te *Error
	dataOp := errors.As(err, &te) && te.Op == "data connection"
	cs, herr, hs := t.hl.get(t.hl.count() - 1)
	dataTLS := t.hl.count() > 1
	notResumed := dataTLS && hs && herr == nil && !cs.DidResume
	if notResumed && code != 522 {
		err = &Error{Class: ClassOf(err), Code: code, Err: err,
			Msg: "the data connection did not resume the control connection's TLS session and the server ended the transfer (" + oneLine(err.Error()) + ")"}
	}
	switch {
	case dataOp || code == 522 || code == 425 || dataTLS && herr != nil || notResumed:
		t.mkdirOK(dir, created, refused)
		t.fail(StepData, err, "let the data connection through (the server's passive ports) and let it resume the control connection's TLS session (vsftpd require_ssl_reuse, ProFTPD TLSOptions NoSessionReuseRequired)")
		t.skip(StepStor, "not run: the data step failed")
	case refused != nil && len(created) == 0 && (code == 550 || code == 553):
		t.fail(StepMkdir, refused, "create the folder on the server or let the user create it; or change remote_template")
		t.skip(StepData, "not run: the mkd step failed")
		t.skip(StepStor, "not run: the mkd step failed ("+oneLine(err.Error())+")")
	default:
		t.mkdirOK(dir, created, refused)
		if dataTLS {
			t.dataOK()
		} else {
			t.skip(StepData, "not run: the server refused STOR before the data connection")
		}
		t.fail(StepStor, err, "give the user write permission in the folder and allow file names like "+path.Base(t.u.temp))
	}
}

// sizeStep checks that SIZE reports the first half.
func (t *connTest) sizeStep(context.Context) bool {
	n, ok, err := t.s.size(t.u.temp)
	switch {
	case errors.Is(err, errNoSize):
		t.fail(StepSize, &Error{Class: Permanent, Op: "SIZE " + t.u.temp, Msg: "the server has no SIZE command"},
			"enable SIZE on the server (RFC 3659): without it uploads are not verified and cannot resume")
	case err != nil:
		t.fail(StepSize, err, "SIZE must answer for a file the user wrote: check the server")
	case !ok:
		t.fail(StepSize, &Error{Class: Permanent, Op: "SIZE " + t.u.temp, Msg: "the server says the test file does not exist"}, "check the server's folder settings")
	case n != t.u.size/2:
		t.fail(StepSize, &Error{Class: Permanent, Op: "SIZE " + t.u.temp, Msg: fmt.Sprintf("the server has %d bytes, %d were sent", n, t.u.size/2)},
			"the server stores files altered (ASCII mode?): check its settings")
	default:
		t.ok(StepSize, fmt.Sprintf("%d bytes", n))
		return true
	}
	t.skipFrom(StepRest)
	return false
}

// restStep sends the second half as uploads resume (REST + STOR), or the
// whole file again when the server does not resume, and checks the size.
func (t *connTest) restStep(ctx context.Context) bool {
	half := t.u.size / 2
	offset := half
	if !t.s.has("REST") {
		offset = 0
	}
	_, err := t.u.stor(ctx, t.s, offset)
	if err != nil {
		t.fail(StepRest, err, "the upload resumed with REST failed: check the server's log")
		t.skipFrom(StepHash)
		return false
	}
	n, ok, err := t.s.size(t.u.temp)
	if err != nil || !ok || n != t.u.size {
		t.fail(StepRest, &Error{Class: Permanent, Op: "REST " + t.u.temp, Err: err,
			Msg: fmt.Sprintf("after the resumed STOR the server has %d bytes, want %d", n, t.u.size)}, "the server's REST is broken: turn REST off on the server")
		t.skipFrom(StepHash)
		return false
	}
	switch {
	case offset == 0:
		t.warn(StepRest, "the server does not offer REST STREAM (FEAT): an interrupted upload starts over", "enable REST STREAM on the server")
	case t.u.res.ResumedFrom != half:
		t.warn(StepRest, "the server refused REST: an interrupted upload starts over", "enable REST STREAM on the server")
	default:
		t.ok(StepRest, fmt.Sprintf("resumed at %d, %d bytes in all", half, n))
	}
	return true
}

// hashStep checks the server's hash of the test file, as uploads verify.
func (t *connTest) hashStep(context.Context) bool {
	u := t.u
	if u.hashAlg == "" {
		t.warn(StepHash, "the server offers none of HASH, XSHA256, XMD5, XCRC: uploads are verified by size only",
			"enable HASH (SHA-256) on the server, if it has it")
		return true
	}
	got, err := u.remoteHash(t.s, u.temp)
	switch {
	case err != nil && codeOf(err) != 0:
		t.warn(StepHash, "the server refused "+u.hashVia+" ("+serverText(err)+"): uploads are verified by size only", "check the server's HASH settings")
	case err != nil:
		t.fail(StepHash, err, "check the network and the server's log")
		t.skipFrom(StepRename)
		return false
	case got == "":
		t.warn(StepHash, u.hashVia+"'s reply not understood: uploads are verified by size only", "")
	case !hashEqual(u.hashAlg, got, u.local[u.hashAlg]):
		t.fail(StepHash, &Error{Class: Transient, Op: u.hashVia + " " + u.temp,
			Msg: fmt.Sprintf("%s on the server is %s, sent %s", u.hashAlg, got, u.local[u.hashAlg])}, "the server stores files altered: check its settings (ASCII mode, filters)")
		t.skipFrom(StepRename)
		return false
	default:
		t.ok(StepHash, u.hashAlg+" via "+u.hashVia+" matches")
	}
	return true
}

// renameStep renames the temporary file to a final name, as uploads place
// a capture (RNFR/RNTO), to a name no capture has (newTestUpload).
func (t *connTest) renameStep(context.Context) bool {
	final := t.u.remote
	t.left = append(t.left, final)
	if err := t.s.rename(t.u.temp, final); err != nil {
		t.fail(StepRename, classify("rename "+t.u.temp+" to "+final, err),
			"give the user the right to rename files (RNFR/RNTO): uploads write a temporary name and rename it")
		return false
	}
	t.ok(StepRename, "renamed to "+final)
	t.u.temp = final
	return true
}

// deleStep deletes the renamed test file and checks it is gone.
func (t *connTest) deleStep(context.Context) bool {
	p := t.u.temp
	code, msg, err := t.s.cmd("DELE " + p)
	if err == nil && code/100 != 2 {
		err = &replyError{code: code, msg: msg}
	}
	if err == nil {
		if there, xerr := t.s.exists(p); xerr == nil && there {
			err = &Error{Class: Permanent, Op: "DELE " + p, Msg: "the server answered DELE but the file is still there"}
		}
	}
	if err != nil {
		t.fail(StepDelete, classify("DELE "+p, err), "give the user the right to delete files (uploads delete stale temporary files); delete "+p+" by hand")
		return false
	}
	t.left = nil
	t.ok(StepDelete, "deleted "+p+": nothing left on the server")
	return true
}

// cleanup deletes what the test left on the server after a failed step
// (on a new connection when the test's one broke or ctx ended, bounded by
// the timeouts) and reports StepDelete when the walk did not get to it.
func (t *connTest) cleanup(ctx context.Context) {
	reported := t.reported(StepDelete)
	if len(t.left) == 0 {
		if !reported {
			t.skip(StepDelete, "not run: nothing was written")
		}
		return
	}
	left, err := t.removeLeft(ctx)
	switch {
	case reported: // DELE failed: its step says so
	case len(left) > 0:
		if err == nil {
			err = &Error{Class: Permanent, Op: "DELE", Msg: "the server kept " + strings.Join(left, ", ")}
		}
		t.fail(StepDelete, err, "delete "+strings.Join(left, ", ")+" on the server by hand")
	default:
		t.ok(StepDelete, "deleted the test file after the "+t.failed+" step failed: nothing left on the server")
	}
}

// removeLeft deletes t.left and returns what is still there. The test's
// connection is used while it works (a server may close it after a failed
// transfer: vsftpd after its 522), else a new one.
func (t *connTest) removeLeft(ctx context.Context) ([]string, error) {
	if !t.s.broken && ctx.Err() == nil {
		left, err := t.deleteOn(t.s)
		if err == nil || codeOf(err) != 0 {
			return left, err
		}
	}
	t.s.close()
	limit := t.c.cfg.ConnectTimeout + 2*t.c.cfg.Timeout
	if ctx.Err() != nil {
		limit = min(limit, cleanupGrace) // the caller is stopping: do not hold it up
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit)
	defer cancel()
	s, err := t.c.dial(cctx)
	if err != nil {
		return t.left, err
	}
	t.s = s
	return t.deleteOn(s)
}

// deleteOn deletes t.left on s and returns what is still there.
func (t *connTest) deleteOn(s *session) ([]string, error) {
	var left []string
	for _, p := range t.left {
		if err := s.dele(p); err != nil {
			return append(left, p), err
		}
		there, err := s.exists(p)
		if err != nil {
			return append(left, p), err
		}
		if there {
			left = append(left, p)
		}
	}
	return left, nil
}
