//go:build openssl

package transfer

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer/ossl"
)

// osslEngine is the openssl build's second TLS engine (tlspolicy.Engine).
type osslEngine struct{}

// Engine is the second TLS engine of this build: OpenSSL (transfer/ossl),
// for the suites crypto/tls lacks. The default build's is nil.
func Engine() tlspolicy.Engine { return osslEngine{} }

// Name is "OpenSSL <version>".
func (osslEngine) Name() string { return "OpenSSL " + ossl.Version() }

// Handshake runs one OpenSSL handshake on conn offering suites (and TLS
// 1.3's AES-GCM suites when maxVersion allows), sends close_notify and
// closes conn (the engine owns the socket once it ran TLS on it).
func (osslEngine) Handshake(ctx context.Context, conn *net.TCPConn, serverName string, suites []uint16, maxVersion uint16) (tls.ConnectionState, error) {
	var names []string
	for _, id := range suites {
		s, ok := tlspolicy.Lookup(id)
		if !ok || s.OpenSSL == "" {
			return tls.ConnectionState{}, &ossl.Error{Kind: ossl.KindConfig, Msg: fmt.Sprintf("openssl: suite 0x%04x is not in the table", id)}
		}
		names = append(names, s.OpenSSL)
	}
	if len(names) == 0 {
		return tls.ConnectionState{}, &ossl.Error{Kind: ossl.KindConfig, Msg: "openssl: no TLS 1.2 suite to offer"}
	}
	octx, err := ossl.NewCtx(ossl.Config{Ciphers: strings.Join(names, ":"), MaxTLS12: maxVersion < tls.VersionTLS13})
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer octx.Free()
	c, err := octx.Client(conn, serverName, nil)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	c.CloseWait = time.Second
	defer c.Close()
	if err := c.Handshake(ctx); err != nil {
		return tls.ConnectionState{}, err
	}
	return c.ConnectionState()
}

// NoCommonSuite reports whether err is an OpenSSL handshake the server
// ended because it accepts none of the suites offered.
func (osslEngine) NoCommonSuite(err error) bool {
	var e *ossl.Error
	return errors.As(err, &e) && e.NoCommonSuite
}

// osslSession is a session's engine: its SSL_CTX and the control
// connection's TLS session, which every data connection resumes.
type osslSession struct {
	ctx        *ossl.Ctx
	sess       *ossl.Session
	serverName string
	closeWait  time.Duration
}

func (e *osslSession) name() string { return "openssl" }

func (e *osslSession) free() {
	if e.sess != nil {
		e.sess.Free()
	}
	e.ctx.Free()
}

func (e *osslSession) client(raw net.Conn) (engineConn, error) {
	tcp, ok := raw.(*net.TCPConn)
	if !ok {
		return nil, fmt.Errorf("openssl: data connection %T is not TCP", raw)
	}
	c, err := e.ctx.Client(tcp, e.serverName, e.sess)
	if err != nil {
		return nil, err
	}
	c.CloseWait = e.closeWait
	return osslData{c}, nil
}

// osslData is a data connection's TLS made by OpenSSL.
type osslData struct{ *ossl.Conn }

func (d osslData) DidResume() bool {
	st, err := d.State()
	return err == nil && st.DidResume
}

// osslCtl is the control transport over OpenSSL: lines out, FTP replies
// (multi-line included, as net/textproto reads them) in, each bounded by
// timeout. It is no FTP client: the commands are session's.
type osslCtl struct {
	conn    *ossl.Conn
	tcp     *net.TCPConn
	r       *textproto.Reader
	timeout time.Duration
}

func (t *osslCtl) SendCommand(format string, args ...any) (int, string, error) {
	line := fmt.Sprintf(format, args...)
	if err := t.conn.SetWriteDeadline(time.Now().Add(t.timeout)); err != nil {
		return 0, "", err
	}
	if _, err := t.conn.Write([]byte(line + "\r\n")); err != nil {
		return 0, "", fmt.Errorf("writing a command: %w", err)
	}
	return t.ReadResponse()
}

func (t *osslCtl) ReadResponse() (int, string, error) {
	if err := t.conn.SetReadDeadline(time.Now().Add(t.timeout)); err != nil {
		return 0, "", err
	}
	code, msg, err := t.r.ReadResponse(0)
	if err != nil {
		return 0, "", fmt.Errorf("reading a reply: %w", err)
	}
	return code, msg, nil
}

// Close closes the socket first (kill calls it from another goroutine:
// nothing waits for the server), then frees the engine's connection.
func (t *osslCtl) Close() error {
	err := t.tcp.Close()
	t.conn.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// dialEngine connects like dialGo, with OpenSSL on the control connection
// (through the guard, as goftp does): greeting, AUTH TLS, the handshake
// offering Policy.EngineCiphers, the policy's VerifyConnection before
// USER is sent, the login, PBSZ 0, PROT P. A failed engine handshake ends
// viaEngine (the next connect tries crypto/tls first).
func (c *Client) dialEngine(ctx context.Context) (*session, error) {
	cctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	ip, addr, target, g, err := c.reach(ctx, cctx)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	raw, err := d.DialContext(cctx, "tcp", target)
	if err != nil {
		g.close()
		return nil, goftpNetErr("connect "+addr, err)
	}
	tcp := raw.(*net.TCPConn)
	// ctx or ConnectTimeout ending closes the socket: every step fails then.
	stop := context.AfterFunc(cctx, func() { tcp.Close() })
	hs := &hsState{}
	tcfg := c.controlTLS(hs)
	ctl, es, err := c.engineLogin(cctx, addr, tcp, tcfg, hs)
	if !stop() || err != nil {
		tcp.Close()
		g.close()
		if ctl != nil {
			ctl.conn.Close()
		}
		if es != nil {
			es.free()
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err == nil || cctx.Err() != nil {
			return nil, &Error{Class: Transient, Op: "connect " + addr, Msg: fmt.Sprintf("no login within %s (server slow or unreachable); will retry", c.cfg.ConnectTimeout), Err: context.DeadlineExceeded}
		}
		return nil, err
	}
	s := &session{c: c, rc: ctl, eng: es, g: g, ip: ip, hs: hs, tls: tcfg, tlsAll: tcfg}
	_, cs, _ := hs.get()
	su, _ := tlspolicy.Lookup(cs.CipherSuite)
	c.log.Debug("ftps connected", "addr", addr, "engine", es.name(), "tls", tls.VersionName(cs.Version), "suite", su.Name)
	return c.ready(s, g, addr)
}

// engineLogin runs greeting, AUTH TLS, the OpenSSL handshake, the
// policy's check, USER/PASS, PBSZ 0 and PROT P on tcp.
func (c *Client) engineLogin(ctx context.Context, addr string, tcp *net.TCPConn, tcfg *tls.Config, hs *hsState) (*osslCtl, *osslSession, error) {
	op := "connect " + addr
	plain := &textproto.Reader{R: bufio.NewReader(tcp)}
	pre := func(line string, want int) error {
		if line != "" {
			if err := tcp.SetWriteDeadline(time.Now().Add(c.cfg.Timeout)); err != nil {
				return err
			}
			if _, err := tcp.Write([]byte(line + "\r\n")); err != nil {
				return goftpNetErr(op, err)
			}
		}
		if err := tcp.SetReadDeadline(time.Now().Add(c.cfg.Timeout)); err != nil {
			return err
		}
		code, msg, err := plain.ReadResponse(0)
		switch {
		case err != nil:
			return goftpNetErr(op, err)
		case code != want && line == "":
			return classify(op, &replyError{code: code, msg: msg})
		case code != want:
			return &Error{Class: TLSPolicy, Op: op, Code: code, Err: &replyError{code: code, msg: msg},
				Msg: "server refused AUTH TLS (server said: " + strconv.Itoa(code) + " " + oneLine(msg) + "): enable explicit FTPS (FTPES) on the server; camftpd never sends a password or file without TLS"}
		}
		return nil
	}
	if err := pre("", 220); err != nil {
		return nil, nil, err
	}
	if err := pre("AUTH TLS", 234); err != nil {
		return nil, nil, err
	}
	es, conn, err := c.engineTLS(ctx, op, tcp, tcfg, hs)
	if err != nil {
		return nil, nil, err
	}
	ctl := &osslCtl{conn: conn, tcp: tcp, r: textproto.NewReader(bufio.NewReader(conn)), timeout: c.cfg.Timeout}
	if err := engineAuth(ctl, c.cfg.User, c.cfg.Password); err != nil {
		return ctl, es, err
	}
	// After the login's replies the server's TLS 1.3 tickets are read:
	// the session data connections resume is the one to take now.
	sess, err := conn.Session()
	if err != nil {
		return ctl, es, classify(op, err)
	}
	es.sess = sess
	return ctl, es, nil
}

// engineTLS runs the control connection's OpenSSL handshake and the
// policy's check of it (recorded in hs, as crypto/tls's is).
func (c *Client) engineTLS(ctx context.Context, op string, tcp *net.TCPConn, tcfg *tls.Config, hs *hsState) (*osslSession, *ossl.Conn, error) {
	p := c.cfg.Policy
	c12, c13 := p.EngineCiphers()
	octx, err := ossl.NewCtx(ossl.Config{Ciphers: c12, Suites13: c13, MaxTLS12: c13 == ""})
	if err != nil {
		return nil, nil, &Error{Class: TLSPolicy, Op: op, Msg: err.Error(), Err: err}
	}
	es := &osslSession{ctx: octx, serverName: tcfg.ServerName, closeWait: c.cfg.Timeout}
	conn, err := octx.Client(tcp, tcfg.ServerName, nil)
	if err != nil {
		es.free()
		return nil, nil, classify(op, err)
	}
	conn.CloseWait = time.Second
	hctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if err := conn.Handshake(hctx); err != nil {
		conn.Close()
		es.free()
		c.viaEngine.Store(false)
		return nil, nil, engineHandshakeErr(op, p, err)
	}
	c.viaEngine.Store(true)
	cs, err := conn.ConnectionState()
	if err == nil {
		err = tcfg.VerifyConnection(cs) // the policy's, recorded in hs
	}
	if err != nil {
		conn.Close()
		es.free()
		return nil, nil, classify(op, tlspolicy.Explain(err, tcfg))
	}
	return es, conn, nil
}

// engineHandshakeErr classes a failed OpenSSL handshake: a weak DHE group
// and no common suite are the policy's, the rest the network's.
func engineHandshakeErr(op string, p *tlspolicy.Policy, err error) *Error {
	var e *ossl.Error
	switch {
	case errors.As(err, &e) && e.Kind == ossl.KindWeakDH:
		return &Error{Class: TLSPolicy, Op: op, Msg: e.Msg, Err: err}
	case errors.As(err, &e) && e.NoCommonSuite:
		return noCommonEither(op, Engine().Name(), p, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, net.ErrClosed):
		return &Error{Class: Transient, Op: op, Msg: "TLS handshake (OpenSSL) did not finish: " + oneLine(err.Error()) + "; will retry", Err: err}
	}
	return &Error{Class: Transient, Op: op, Msg: "TLS handshake (OpenSSL) failed: " + oneLine(err.Error()) + "; will retry", Err: err}
}

// engineAuth sends USER, PASS (never logged), PBSZ 0 and PROT P.
func engineAuth(ctl *osslCtl, user, pass string) error {
	code, msg, err := ctl.SendCommand("USER %s", user)
	if err == nil && code == 331 {
		code, msg, err = ctl.SendCommand("PASS %s", pass)
	}
	if err != nil {
		return classify("login", err)
	}
	if code/100 != 2 {
		re := &replyError{code: code, msg: msg}
		if code/100 == 4 {
			return classify("login", re)
		}
		return &Error{Class: Auth, Op: "login", Code: code, Err: re,
			Msg: fmt.Sprintf("server refused the login (server said: %s): check the user name, the password and the account on the server", serverText(re))}
	}
	for _, cmd := range []string{"PBSZ 0", "PROT P"} {
		code, msg, err := ctl.SendCommand("%s", cmd)
		if err != nil {
			return classify("login", err)
		}
		if code/100 != 2 {
			re := &replyError{code: code, msg: msg}
			if code/100 == 4 {
				return classify("login", re)
			}
			return protRefused(cmd, re)
		}
	}
	return nil
}

// noCommonEither is the error of a server that accepted none of the
// suites of either engine: it names what was offered and what to enable.
func noCommonEither(op, engine string, p *tlspolicy.Policy, err error) *Error {
	var offered, rec []string
	for _, id := range p.EngineSuites() {
		s, _ := tlspolicy.Lookup(id)
		offered = append(offered, s.Name)
	}
	for _, s := range tlspolicy.Table() {
		if s.Class == tlspolicy.Recommended {
			rec = append(rec, s.Name)
		}
	}
	what := "TLS 1.2: " + strings.Join(offered, ", ")
	if len(offered) == len(tlspolicy.Table()) {
		what = fmt.Sprintf("the %d suites of the spec in TLS 1.2", len(offered))
	}
	if p.MaxVersion() >= tls.VersionTLS13 {
		what = "TLS 1.3 AES-GCM, and " + what
	}
	return &Error{Class: TLSPolicy, Op: op, Err: err, Msg: fmt.Sprintf(
		"the server accepted none of the suites of crypto/tls nor of %s (%s): enable %s on the server; `camftpd check` shows what the server accepts",
		engine, what, strings.Join(rec, ", "))}
}
