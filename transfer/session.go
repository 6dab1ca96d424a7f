package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// hsState records what the TLS handshakes of one session saw, through a
// VerifyConnection wrapper on the session's clone of the TLS config.
type hsState struct {
	// abandoned: Upload gave up on this connect (ctx ended or
	// ConnectTimeout); the next handshake fails so goftp stops early.
	abandoned atomic.Bool

	mu    sync.Mutex
	n     int                 // handshakes that reached verification
	err   error               // first error returned by the wrapped VerifyConnection
	first tls.ConnectionState // the control connection's
}

func (h *hsState) record(cs tls.ConnectionState, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		h.first = cs
	}
	h.n++
	if err != nil && h.err == nil {
		h.err = err
	}
}

func (h *hsState) get() (int, tls.ConnectionState, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n, h.first, h.err
}

// sessionCache is the TLS session cache of one control connection: its
// data connections resume the control connection's session, which is what
// vsftpd (require_ssl_reuse) and ProFTPD (mod_tls) check. A cache shared
// across control connections made ProFTPD with TLS 1.2 refuse data
// connections (425) of a control connection that had itself resumed.
type sessionCache struct {
	mu sync.Mutex
	m  map[string]*tls.ClientSessionState
}

func (c *sessionCache) Get(key string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[key]
	return s, ok
}

func (c *sessionCache) Put(key string, cs *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs == nil {
		// crypto/tls deletes a session whose resumption attempt failed. A
		// data connection's handshake fails when we abort it (the server
		// refused the STOR it ran alongside); the control connection's
		// session is still the one the server wants resumed, and a
		// session that went bad fails the next data connection, which
		// ends this control connection and its cache.
		return
	}
	if c.m == nil {
		c.m = map[string]*tls.ClientSessionState{}
	}
	c.m[key] = cs
}

// session is one logged-in control connection (a goftp raw connection) and
// the data connections we open ourselves for it.
//
// goftp's calls take no context, but each control read and write has a
// deadline of Config.Timeout; kill closes the sockets from another
// goroutine to stop a session at once (ctx canceled).
type session struct {
	// c is the Client that dialed this session, for its Timeout and logger:
	// a back pointer to the owner, which keeps its idle sessions (Client.idle).
	// client.go and session.go are one layer (see doc.go).
	c        *Client
	gc       io.Closer     // the goftp.Client (nil on the engine path)
	rc       ctlConn       // goftp.RawConn, or the engine's control transport (ctl.go)
	eng      engineSession // the openssl build's engine, when it made the control connection; nil: crypto/tls
	g        *guard        // between goftp and the server; nil without one
	ip       string        // server address: data connections go here (or come from, active mode)
	local    net.IP        // the control connection's local address (active mode listens there)
	tls      *tls.Config   // data connections' (dataTLS); nil: plain FTP
	tlsAll   *tls.Config   // the control connection's; tls again after a refused data handshake
	hs       *hsState
	feat     map[string]string
	epsvOff  bool
	eprtOff  bool   // the server refused EPRT: PORT (active.go)
	hashSel  string // algorithm selected with OPTS HASH
	pasv     string // a passive reply for the next data connection (endRetr's probe)
	noRang   bool   // the server refused RANG
	broken   bool   // control connection state unknown: do not reuse
	lastUsed time.Time

	mu     sync.Mutex
	data   io.Closer // current data connection (raw TCP), or its listener (active mode)
	killed bool
}

// kill closes the data and control connections; safe from any goroutine.
func (s *session) kill() {
	s.mu.Lock()
	s.killed = true
	d := s.data
	s.mu.Unlock()
	if d != nil {
		d.Close()
	}
	s.rc.Close()
	s.g.close()
}

// close ends the session (politely when it is healthy).
func (s *session) close() {
	if !s.broken {
		s.mu.Lock()
		killed := s.killed
		s.mu.Unlock()
		if !killed {
			// QUIT is a courtesy, its reply bounded by the control deadline:
			// the connection is closed below whatever it answers.
			_, _, _ = s.rc.SendCommand("QUIT")
		}
	}
	s.kill()
	if s.gc != nil {
		s.gc.Close()
	}
	if s.eng != nil {
		s.eng.free()
	}
}

func (s *session) setData(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.killed {
		return false
	}
	s.data = c
	return true
}

// canRang says whether ranges can be read with RANG (offered, and not
// refused yet).
func (s *session) canRang() bool {
	return s.has("RANG") && !s.noRang
}

// cmd sends one command line and returns the reply. A command holding a
// control character is refused here too (CheckPath runs first; this is the
// last line of defence against command injection).
func (s *session) cmd(line string) (int, string, error) {
	if strings.ContainsAny(line, "\r\n\x00") {
		return 0, "", &Error{Class: Permanent, Op: "command", Msg: "refused to send a command holding CR, LF or NUL"}
	}
	s.pasv = "" // another command came first: do not rely on that listener
	code, msg, err := s.rc.SendCommand("%s", line)
	if err != nil {
		s.broken = true
		return 0, "", s.ctlErr(err)
	}
	s.c.log.Debug("ftp", "cmd", verb(line), "code", code)
	return code, msg, nil
}

func verb(line string) string {
	if i := strings.IndexByte(line, ' '); i > 0 {
		return line[:i]
	}
	return line
}

// expect sends line and wants a reply whose code is want (or, for want
// 1..5, whose first digit is want).
func (s *session) expect(line string, want int) (string, error) {
	code, msg, err := s.cmd(line)
	if err != nil {
		return "", err
	}
	if code == want || (want < 10 && code/100 == want) {
		return msg, nil
	}
	return msg, &replyError{code: code, msg: msg}
}

func (s *session) readFeatures() error {
	s.feat = map[string]string{}
	code, msg, err := s.cmd("FEAT")
	if err != nil {
		return err
	}
	if code/100 != 2 {
		return nil
	}
	for _, l := range strings.Split(msg, "\n") {
		if len(l) == 0 || l[0] != ' ' {
			continue
		}
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		k := strings.ToUpper(f[0])
		s.feat[k] = strings.TrimSpace(strings.Join(f[1:], " "))
	}
	return nil
}

func (s *session) has(f string) bool { _, ok := s.feat[f]; return ok }

// reply is one FTP reply.
type reply struct {
	code int
	msg  string
}

// pipeline sends lines in one write and reads their replies in order: one
// round trip for commands that do not depend on each other's result (RFC
// 959 servers read and answer commands in sequence; the conformance suite
// runs it against vsftpd, ProFTPD, Pure-FTPd and ftpserverlib). Each line
// is checked like cmd's.
func (s *session) pipeline(lines ...string) ([]reply, error) {
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n\x00") {
			return nil, &Error{Class: Permanent, Op: "command", Msg: "refused to send a command holding CR, LF or NUL"}
		}
	}
	s.pasv = ""
	// goftp writes the string and CRLF in one flush, then reads one reply.
	code, msg, err := s.rc.SendCommand("%s", strings.Join(lines, "\r\n"))
	if err != nil {
		s.broken = true
		return nil, s.ctlErr(err)
	}
	out := make([]reply, 0, len(lines))
	out = append(out, reply{code, msg})
	for range lines[1:] {
		code, msg, err := s.rc.ReadResponse()
		if err != nil {
			s.broken = true
			return nil, s.ctlErr(err)
		}
		out = append(out, reply{code, msg})
	}
	for i, l := range lines {
		s.c.log.Debug("ftp", "cmd", verb(l), "code", out[i].code, "pipelined", len(lines))
	}
	return out, nil
}

// size returns the remote size of p; ok is false when p does not exist (or
// is not a plain file). err is errNoSize when the server has no SIZE.
func (s *session) size(p string) (n int64, ok bool, err error) {
	code, msg, err := s.cmd("SIZE " + p)
	if err != nil {
		return 0, false, err
	}
	return sizeReply(p, code, msg)
}

// sizeReply interprets the reply to "SIZE p".
func sizeReply(p string, code int, msg string) (n int64, ok bool, err error) {
	switch {
	case code == 213:
		n, perr := strconv.ParseInt(strings.TrimSpace(msg), 10, 64)
		if perr != nil || n < 0 {
			return 0, false, &Error{Class: Transient, Op: "SIZE " + p, Msg: "unparsable SIZE reply " + strconv.Quote(oneLine(msg))}
		}
		return n, true, nil
	case code == 550 || code == 450 && strings.Contains(strings.ToLower(msg), "no such"):
		return 0, false, nil
	case code == 500 || code == 502 || code == 504:
		return 0, false, errNoSize
	}
	return 0, false, &replyError{code: code, msg: msg}
}

var errNoSize = errors.New("server has no SIZE command")

// exists says whether p exists as a file.
func (s *session) exists(p string) (bool, error) {
	_, ok, err := s.size(p)
	if errors.Is(err, errNoSize) {
		return s.listed(p)
	}
	return ok, err
}

// listed says whether MLST finds p (for servers without SIZE).
func (s *session) listed(p string) (bool, error) {
	code, _, err := s.cmd("MLST " + p)
	if err != nil {
		return false, err
	}
	return code/100 == 2, nil
}

// dele deletes p; a missing file is not an error.
func (s *session) dele(p string) error {
	code, msg, err := s.cmd("DELE " + p)
	if err != nil {
		return err
	}
	if code/100 == 2 || code == 550 {
		return nil
	}
	return &replyError{code: code, msg: msg}
}

// rename sends RNFR and RNTO together (when RNFR fails the server answers
// the RNTO with 503 and nothing changes).
func (s *session) rename(from, to string) error {
	rs, err := s.pipeline("RNFR "+from, "RNTO "+to)
	if err != nil {
		return err
	}
	if rs[0].code != 350 {
		return &replyError{code: rs[0].code, msg: rs[0].msg}
	}
	if rs[1].code/100 != 2 {
		return &replyError{code: rs[1].code, msg: rs[1].msg}
	}
	return nil
}

// passive asks for a passive data port (EPSV, else PASV) and returns the
// address to dial: always the control connection's server address, as curl
// does, so a server behind NAT that announces a private address still works.
func (s *session) passive() (string, error) {
	if r := s.pasv; r != "" {
		s.pasv = ""
		if port, err := parsePassive(r, s.epsvOff); err == nil {
			return net.JoinHostPort(s.ip, strconv.Itoa(port)), nil
		}
	}
	if !s.epsvOff {
		code, msg, err := s.cmd("EPSV")
		if err != nil {
			return "", err
		}
		if code == 229 {
			port, perr := parseEPSV(msg)
			if perr == nil {
				return net.JoinHostPort(s.ip, strconv.Itoa(port)), nil
			}
		}
		s.epsvOff = true
	}
	code, msg, err := s.cmd("PASV")
	if err != nil {
		return "", err
	}
	if code != 227 {
		return "", &replyError{code: code, msg: msg}
	}
	port, perr := parsePASV(msg)
	if perr != nil {
		return "", &Error{Class: Transient, Op: "PASV", Msg: perr.Error()}
	}
	return net.JoinHostPort(s.ip, strconv.Itoa(port)), nil
}

// parsePassive reads the port of an EPSV reply, or of a PASV one (pasv).
func parsePassive(msg string, pasv bool) (int, error) {
	if pasv {
		return parsePASV(msg)
	}
	return parseEPSV(msg)
}

// parseEPSV reads the port of "Entering Extended Passive Mode (|||6446|)".
func parseEPSV(msg string) (int, error) {
	i := strings.Index(msg, "(")
	j := strings.LastIndex(msg, ")")
	if i < 0 || j < i+5 {
		return 0, fmt.Errorf("unparsable EPSV reply %q", oneLine(msg))
	}
	in := msg[i+1 : j]
	d := in[0]
	parts := strings.Split(in, string(d))
	if len(parts) != 5 {
		return 0, fmt.Errorf("unparsable EPSV reply %q", oneLine(msg))
	}
	p, err := strconv.Atoi(parts[3])
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("bad port in EPSV reply %q", oneLine(msg))
	}
	return p, nil
}

// parsePASV reads the port of "Entering Passive Mode (h1,h2,h3,h4,p1,p2)".
func parsePASV(msg string) (int, error) {
	i := strings.Index(msg, "(")
	j := strings.LastIndex(msg, ")")
	var in string
	if i >= 0 && j > i {
		in = msg[i+1 : j]
	} else {
		// Some servers omit the parentheses: take the last "a,b,c,d,e,f".
		f := strings.Fields(msg)
		if len(f) > 0 {
			in = strings.TrimRight(f[len(f)-1], ".")
		}
	}
	parts := strings.Split(in, ",")
	if len(parts) != 6 {
		return 0, fmt.Errorf("unparsable PASV reply %q", oneLine(msg))
	}
	var v [6]int
	for k, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 || n > 255 {
			return 0, fmt.Errorf("unparsable PASV reply %q", oneLine(msg))
		}
		v[k] = n
	}
	port := v[4]<<8 | v[5]
	if port == 0 {
		return 0, fmt.Errorf("port 0 in PASV reply %q", oneLine(msg))
	}
	return port, nil
}

// dataConn is one data connection for a STOR or RETR: TLS, or plain
// (Config.Plain: tc is nil and c is bc).
type dataConn struct {
	raw net.Conn
	bc  *batchConn // between tc and raw (nil on the engine path)
	tc  *tls.Conn
	ec  engineConn // the engine's TLS instead of tc (set under mu)
	c   net.Conn   // what the transfer reads and writes: tc, ec, or bc when plain

	// Active mode: the listener the server connects to; raw is set by
	// acceptData on handshake's goroutine while abortData may run.
	ln      *net.TCPListener
	mu      sync.Mutex
	aborted bool
}

// isTLS reports whether the data connection runs TLS (either engine).
func (dc *dataConn) isTLS() bool { return dc.tc != nil || dc.ec != nil }

// didResume reports whether its TLS resumed the control connection's
// session (false in plain FTP).
func (dc *dataConn) didResume() bool {
	switch {
	case dc.tc != nil:
		return dc.tc.ConnectionState().DidResume
	case dc.ec != nil:
		return dc.ec.DidResume()
	}
	return false
}

// bulkConn is the socket bulk mode may switch (bulk.go): none on the
// engine path, whose writes are OpenSSL's.
func (dc *dataConn) bulkConn() net.Conn {
	if dc.ec != nil {
		return nil
	}
	return dc.raw
}

// set records the accepted connection unless the data connection was
// aborted meanwhile.
func (dc *dataConn) set(c net.Conn) bool {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.aborted {
		return false
	}
	dc.raw = c
	return true
}

// batchConn hands several TLS records to the kernel in one write. crypto/tls
// writes each record (at most 16 KiB) with its own call; while hold is set,
// Write only appends, and flush sends what was appended. The upload loop
// holds it around each chunk's tls Write, so a 128 KiB chunk costs one
// write(2) instead of eight. strace of a 256 MiB upload: 2,056 pread64 and
// about 2,050 writes, against 8,200 and about 16,400 with 32 KiB chunks
// written record by record (per GiB: 16k system calls instead of 98k).
//
// The buffer is taken from batchPool for each held chunk and given back by
// flush (see bufpool.go).
type batchConn struct {
	net.Conn
	hold bool
	buf  []byte
	bufp *[]byte
}

func (b *batchConn) Write(p []byte) (int, error) {
	if !b.hold {
		return b.Conn.Write(p)
	}
	if b.bufp == nil {
		b.bufp = batchPool.Get().(*[]byte)
		b.buf = (*b.bufp)[:0]
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// flush ends holding, writes what was held and gives the buffer back.
func (b *batchConn) flush() error {
	b.hold = false
	if b.bufp == nil {
		return nil
	}
	var err error
	if len(b.buf) > 0 {
		_, err = b.Conn.Write(b.buf)
	}
	*b.bufp = b.buf[:0] // a buffer append grew is kept
	batchPool.Put(b.bufp)
	b.bufp, b.buf = nil, nil
	return err
}

// openData dials the passive address (or, in active mode, listens and
// announces it: active.go); the TLS handshake waits until the server has
// answered STOR (handshake runs then).
func (s *session) openData(ctx context.Context) (*dataConn, error) {
	if s.c.cfg.Active {
		return s.openActive()
	}
	addr, err := s.passive()
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: s.c.cfg.Timeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if !s.setData(raw) {
		raw.Close()
		return nil, context.Canceled
	}
	return &dataConn{raw: raw}, nil
}

// handshake runs TLS on the data connection, bounded by Timeout and ctx
// (in active mode it first accepts the server's connection; in plain FTP
// there is no TLS).
func (s *session) handshake(ctx context.Context, dc *dataConn) error {
	if dc.ln != nil {
		if err := s.acceptData(ctx, dc); err != nil {
			return err
		}
	}
	if s.eng != nil {
		return s.engineHandshake(ctx, dc)
	}
	dc.bc = &batchConn{Conn: dc.raw}
	if s.tls == nil {
		dc.c = dc.bc
		return nil
	}
	dc.tc = tls.Client(dc.bc, s.tls)
	dc.c = dc.tc
	hctx, cancel := context.WithTimeout(ctx, s.c.cfg.Timeout)
	defer cancel()
	err := dc.tc.HandshakeContext(hctx)
	if err != nil && s.tls != s.tlsAll && s.tlsAll != nil {
		// Perhaps the server refused the one group offered (dataTLS):
		// offer them all from the next data connection on. (Also after
		// a handshake we cut: that costs only the retry dataTLS saves.)
		s.c.log.Debug("ftp data connection: handshake failed; offering every key-exchange group from now on", "err", err)
		s.tls = s.tlsAll
	}
	return err
}

// finish ends an upload's data connection so that the server reads every
// byte: TLS close_notify, then TCP FIN, then read (the TLS 1.3 session
// tickets the server sent after the handshake, and its own close) until the
// server closes, before closing the socket. Closing with unread data would
// send a RST, and the server could lose the tail of the file (vsftpd 3.0.3
// with TLS 1.3 then answers 426).
func (s *session) finish(dc *dataConn, buf []byte) error {
	if dc.ec != nil {
		return s.engineFinish(dc)
	}
	d := s.c.cfg.Timeout
	// Without its deadline, close_notify or the read below could wait on
	// a stalled server for ever: a connection refusing one fails the STOR.
	err := dc.c.SetWriteDeadline(time.Now().Add(d))
	if err == nil && dc.tc != nil {
		err = dc.tc.CloseWrite()
	}
	if tcp, ok := dc.raw.(*net.TCPConn); ok && err == nil {
		if ferr := tcp.CloseWrite(); ferr != nil {
			// close_notify is sent, which ends the file for the server;
			// STOR's reply says whether it got all of it.
			s.c.log.Debug("ftp data connection: sending FIN", "err", ferr)
		}
	}
	if err == nil {
		err = dc.c.SetReadDeadline(time.Now().Add(d))
	}
	if err == nil {
		_, rerr := io.CopyBuffer(io.Discard, struct{ io.Reader }{dc.c}, buf)
		if rerr != nil && !isClosedErr(rerr) {
			s.c.log.Debug("ftp data connection: reading the server's close", "err", rerr)
		}
	}
	dc.raw.Close()
	s.setData(nil)
	return err
}

func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "connection reset")
}

// cutData closes a data connection whose transfer is still running, with
// a TCP RST (SO_LINGER 0) rather than a FIN: a server that gets our FIN
// first sees its next write fail with EPIPE (the socket is in CLOSE_WAIT
// when the RST comes), and ProFTPD's mod_tls then ends the whole session
// ("unexpected OpenSSL error, disconnecting"); with the RST alone it sees
// ECONNRESET, which it takes as the end of the transfer.
func (s *session) cutData(dc *dataConn) {
	if tcp, ok := dc.raw.(*net.TCPConn); ok {
		// Best effort: the connection is closed below either way, and
		// without SO_LINGER 0 with the FIN described above.
		_ = tcp.SetLinger(0)
	}
	s.abortData(dc)
}

func (s *session) abortData(dc *dataConn) {
	if dc == nil {
		return
	}
	dc.mu.Lock()
	dc.aborted = true
	raw, ec := dc.raw, dc.ec
	dc.mu.Unlock()
	if dc.ln != nil {
		dc.ln.Close() // ends a pending accept
	}
	if raw != nil {
		raw.Close()
	}
	if ec != nil {
		ec.Close() // the socket is closed: no close_notify; frees the engine's connection
	}
	s.setData(nil)
}

// endRetr reads what ends a RETR whose data connection we closed, so that
// the control connection is in step again. ended: the server had closed
// it first (it sent everything): its one final reply follows.
//
// Else we cut the transfer, and servers differ in what follows (measured
// here, and in their sources): vsftpd answers 426, ftpserverlib 550 (226
// when all was sent already), each after the transfer, before any later
// command's reply. ProFTPD answers 426 too, but reads the control
// connection during a transfer: a NOOP that reaches it before it saw the
// cut gets "200 NOOP: data transfer in progress" before the 426, and
// EPSV/PASV get 450. Pure-FTPd sends no reply of its own for a cut
// download, or one line "<last code> <timing>" (150, or 500 when it ate a
// command), and eats a command it reads during the transfer with "500
// Unknown command". So the probe is EPSV (PASV when EPSV is off): 229
// (227) only comes once the transfer is over, and every reply before it
// is the transfer's end; 450 or 5xx means the probe reached the server
// during the transfer, and one more probe is sent (a 5xx then is Pure-FTPd's
// timing line), after a pause that grows with each probe. The passive
// address of the probe's reply is kept for the
// next data connection (the next thing sent, or it is dropped).
func (s *session) endRetr(ended bool) error {
	if ended {
		_, _, err := s.readReply()
		return err
	}
	verb, want := "EPSV", 229
	if s.epsvOff {
		verb, want = "PASV", 227
	}
	// A server still sending when a probe arrives answers it at once: wait
	// a little longer before each next probe (10 ms doubling to 320 ms), for
	// at most Timeout; a slow client (armv7 under emulation) can send three
	// probes before ProFTPD has noticed the cut.
	start := time.Now()
	for n := 1; ; n++ {
		during, err := s.probe(verb, want, n == 1)
		if err != nil || !during {
			return err
		}
		s.c.log.Debug("ftp: probe answered during the cut transfer", "probe", n)
		if time.Since(start) > s.c.cfg.Timeout {
			s.broken = true
			return &Error{Class: Transient, Op: verb,
				Msg: fmt.Sprintf("the server was still in a canceled download after %d probes in %s; will retry", n, s.c.cfg.Timeout)}
		}
		time.Sleep(min(10*time.Millisecond<<min(n-1, 5), 320*time.Millisecond))
	}
}

// probe sends endRetr's probe and reads the replies up to its answer:
// want (the transfer is over; the replies before were its end), or, when
// during, 450 or (first: no command was eaten before) 5xx.
func (s *session) probe(verb string, want int, first bool) (during bool, err error) {
	code, msg, err := s.cmd(verb)
	for n := 0; err == nil; n++ {
		switch {
		case code == want:
			s.pasv = msg
			return false, nil
		case code == 450, first && code >= 500 && code <= 504:
			return true, nil
		case n == 3:
			s.broken = true
			return false, &replyError{code: code, msg: msg}
		}
		s.c.log.Debug("ftp: the end of a cut transfer", "code", code, "msg", oneLine(msg))
		code, msg, err = s.readReply()
	}
	return false, err
}

// readReply reads the reply that ends a transfer.
func (s *session) readReply() (int, string, error) {
	code, msg, err := s.rc.ReadResponse()
	if err != nil {
		s.broken = true
		err = s.ctlErr(err)
	}
	return code, msg, err
}

// ctlErr is err from the control connection, or the guard's reason when
// the guard cut it.
func (s *session) ctlErr(err error) error {
	if gerr := s.g.err(); gerr != nil {
		return gerr
	}
	return err
}

// logger adapts goftp's debug output to slog at debug level.
type logWriter struct{ l *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Debug(strings.TrimSpace(string(p)))
	return len(p), nil
}
