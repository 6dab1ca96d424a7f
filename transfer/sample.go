package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// sampleSize is how many bytes at each end of a file are read back to
// recognise a capture on a server that cannot hash.
const sampleSize = 64 << 10

// sameContent says whether remote p, which has n bytes (-1: unknown), is
// this capture, and how that was decided: the same size and, when the
// server can hash, the same hash ("size+sha256"...), else the same first
// and last sampleSize bytes, or the whole file when it is smaller than
// 2*sampleSize, read back with RETR ("size+sample"). A server that refuses
// to hash p is compared by sample; a file that cannot be read back (no
// SIZE, no REST for the end of a large file, RETR refused) is not the same.
func (u *upload) sameContent(ctx context.Context, s *session, p string, n int64) (same bool, how string, err error) {
	if n < 0 {
		m, ok, err := s.size(p)
		if errors.Is(err, errNoSize) || err == nil && !ok {
			return false, "", nil
		}
		if err != nil {
			return false, "", classify("SIZE "+p, err)
		}
		n = m
	}
	if n != u.size {
		return false, "", nil
	}
	if u.size == 0 {
		return true, "size", nil
	}
	if u.hashAlg == "" {
		u.pickHash(s)
	}
	if u.hashAlg != "" {
		same, ok, err := u.sameHash(s, p)
		if err != nil || ok {
			return same, "size+" + u.hashAlg, err
		}
	}
	same, err = u.sample(ctx, s, p)
	return same, "size+sample", err
}

// sameHash compares the server's hash of p with the local file's (hashing
// the local file first when this upload has not). answered: the server
// gave a hash.
func (u *upload) sameHash(s *session, p string) (same, answered bool, err error) {
	if u.local[u.hashAlg] == "" {
		if err := u.hashLocal(0, u.size, nil); err != nil {
			return false, false, err
		}
	}
	got, err := u.remoteHash(s, p)
	switch {
	case err != nil && codeOf(err) == 0:
		return false, false, classify(u.hashVia+" "+p, err)
	case err != nil || got == "":
		u.c.log.Info("server did not hash the file: comparing samples instead", "remote", p, "err", err)
		return false, false, nil
	}
	return hashEqual(u.hashAlg, got, u.local[u.hashAlg]), true, nil
}

// sample compares the first and last sampleSize bytes of remote p (the
// whole of a smaller file) with the local file's: one RETR, or two.
func (u *upload) sample(ctx context.Context, s *session, p string) (bool, error) {
	if u.size <= 2*sampleSize {
		return u.compareRange(ctx, s, p, 0, u.size)
	}
	if !s.has("REST") && !s.canRang() {
		u.c.log.Info("server has neither REST STREAM nor RANG: cannot read the end of the file back to compare it", "remote", p)
		return false, nil
	}
	same, err := u.compareRange(ctx, s, p, 0, sampleSize)
	if err != nil || !same {
		return false, err
	}
	return u.compareRange(ctx, s, p, u.size-sampleSize, sampleSize)
}

// compareRange reads the remote bytes [off, off+n) of p back on a TLS
// data connection of ours (see retrRange) and compares them with the
// local file's.
func (u *upload) compareRange(ctx context.Context, s *session, p string, off, n int64) (bool, error) {
	want, err := u.localRange(off, n)
	if err != nil {
		return false, err
	}
	for {
		equal, again, err := u.retrRange(ctx, s, p, off, want, off+int64(len(want)) == u.size)
		if !again {
			return equal, err
		}
	}
}

// retrRange reads the remote bytes of p from off back with RETR and says
// whether they equal want. The server is told where to start and, when it
// can (FEAT RANG, ProFTPD), where to stop: "RANG off end" or "REST off",
// in one round trip with RETR. When the transfer ends there (RANG, or
// atEOF: the range ends the file), it is read to its end, a difference
// notwithstanding (a longer remote file is cut). Else it is cut after
// len(want) bytes or at the first difference: the data connection is
// closed (no ABOR: its urgent-data signal cannot be sent through TLS, and
// servers answer it with one reply or two), and endRetr puts the control
// connection back in step. A refused RETR or REST (5xx: an upload-only
// account, say) cannot tell: not equal. again: RANG was refused; read the
// range again without it.
func (u *upload) retrRange(ctx context.Context, s *session, p string, off int64, want []byte, atEOF bool) (equal, again bool, err error) {
	op := "RETR " + p
	rang := s.canRang()
	lines := []string{op}
	switch {
	case rang:
		lines = []string{fmt.Sprintf("RANG %d %d", off, off+int64(len(want))-1), op}
	case off > 0:
		lines = []string{fmt.Sprintf("REST %d", off), op}
	}
	dc, err := s.openData(ctx)
	if err != nil {
		return false, false, classify("data connection", err)
	}
	defer s.abortData(dc) // on early returns
	u.c.retrs.Add(1)
	hsDone := make(chan error, 1)
	go func() { hsDone <- s.handshake(ctx, dc) }() // alongside RETR, as for STOR
	rs, err := s.pipeline(lines...)
	if err != nil || rs[len(rs)-1].code/100 != 1 {
		s.abortData(dc)                    // ends the handshake
		if herr := <-hsDone; herr != nil { // the cut's; RETR's error is the one
			s.c.log.Debug("ftp data connection: handshake ended", "err", herr)
		}
		return false, false, u.retrRefused(s, p, rs, err)
	}
	if err := <-hsDone; err != nil {
		s.abortData(dc)
		return false, false, u.dataErr(ctx, s, dc, op, err, 0)
	}
	ended := false
	if len(lines) == 1 || rs[0].code == 350 { // else the data starts at 0: cut it
		equal, ended, err = readCompare(ctx, dc, want, rang || atEOF, u.c.cfg.Timeout)
	}
	if ended {
		s.abortData(dc)
	} else {
		s.cutData(dc)
	}
	if err != nil {
		return false, false, u.dataErr(ctx, s, dc, op, err, 0)
	}
	if err := s.endRetr(ended); err != nil {
		return false, false, classify(op, err)
	}
	if again = rang && rs[0].code != 350; again {
		s.noRang = true
		u.c.log.Info("server refused RANG: reading ranges with REST", "reply", oneLine(fmt.Sprint(rs[0].code, " ", rs[0].msg)))
	}
	u.c.log.Debug("compared remote bytes", "remote", p, "offset", off, "bytes", len(want), "equal", equal, "cut", !ended)
	return equal, again, nil
}

// retrRefused explains a RETR that did not start: a 5xx reply means the
// file cannot be read back (nil: not equal), else an error.
func (u *upload) retrRefused(s *session, p string, rs []reply, err error) error {
	if err != nil {
		return classify("RETR "+p, err)
	}
	r := rs[len(rs)-1]
	if r.code/100 == 5 {
		u.c.log.Info("server refused to send the file back: cannot compare it", "remote", p, "reply", oneLine(fmt.Sprint(r.code, " ", r.msg)))
		return nil
	}
	return classify("RETR "+p, &replyError{code: r.code, msg: r.msg})
}

// localRange reads the local bytes [off, off+n) into u.buf (which holds a
// whole small file, or 2*sampleSize bytes).
func (u *upload) localRange(off, n int64) ([]byte, error) {
	if int64(len(u.buf)) < n {
		u.buf = make([]byte, n)
	}
	b := u.buf[:n]
	if m, err := u.f.ReadAt(b, off); int64(m) < n {
		return nil, u.readErr(err)
	}
	return b, nil
}

// readCompare reads the data connection and compares it with want. ends:
// the server ends the transfer after len(want) bytes; it is read to its
// end (at most 16 KiB more: a longer remote file is cut), so that the
// server ends it cleanly. Else reading stops after len(want) bytes or at
// the first difference. equal: the data began with want, and when ended,
// was exactly want. ended: the server ended the data connection. Each
// read is bounded by timeout.
func readCompare(ctx context.Context, dc *dataConn, want []byte, ends bool, timeout time.Duration) (equal, ended bool, err error) {
	buf := make([]byte, 16<<10) // a TLS record
	limit := len(want)
	if ends {
		limit += len(buf)
	}
	equal = true
	for pos := 0; ; {
		switch {
		case !ends && (pos == len(want) || !equal):
			return equal, false, nil
		case pos >= limit:
			return false, false, nil
		}
		if err := ctx.Err(); err != nil {
			return false, false, err
		}
		if err := dc.c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return false, false, err // the read could block for ever
		}
		m, rerr := dc.c.Read(buf[:min(len(buf), limit-pos)])
		equal = equal && pos+m <= len(want) && bytes.Equal(buf[:m], want[pos:pos+m])
		pos += m
		switch {
		case rerr != nil && isClosedErr(rerr):
			return equal && pos == len(want), true, nil
		case rerr != nil:
			return false, false, rerr
		}
	}
}
