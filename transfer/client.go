package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/secsy/goftp"
)

// Client uploads files to one FTPES server. It keeps up to two idle logged-in
// control connections between uploads. Upload may be called concurrently.
type Client struct {
	cfg    Config
	tls    *tls.Config
	cfgErr *Error
	log    *slog.Logger
	lim    *Limiter

	mu     sync.Mutex
	idle   []*session      // each points back here (session.c): see session
	dirs   map[string]bool // remote directories known to exist
	closed bool
	wg     sync.WaitGroup // background goroutines (abandoned connects)

	// guardLimit bounds the control connection's replies (guard.go): 0 is
	// replyLimit; < 0 dials without the guard (tests and its benchmark).
	guardLimit int64

	plainTemp atomic.Bool // the server refused ".camftpd-*" names
	tls12     atomic.Bool // the policy refused TLS 1.3 on ChaCha20: dial with TLS 1.2 (tls13.go)

	// Bulk mode (bulk_linux.go): a window of bulkWindow bytes sent faster
	// than bulkRate turns it on for the next window. bulkWindows counts
	// the windows sent in bulk mode.
	bulkRate    float64 // bytes/s
	bulkWindows atomic.Int64

	retrs atomic.Int64 // byte ranges read back with RETR (sample.go)

	// The openssl build's engine (engine.go): viaEngine remembers that
	// this server accepts none of crypto/tls's suites, so connects go
	// straight to the engine until its handshake fails; the counters are
	// control connections dialed with each engine and the fallbacks.
	viaEngine   atomic.Bool
	goDials     atomic.Int64
	engineDials atomic.Int64
	fallbacks   atomic.Int64
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
	case cfg.Plain && cfg.TLS != nil:
		c.cfgErr = &Error{Class: Permanent, Op: "config", Msg: "plain FTP with a TLS configuration: give either Plain or TLS, not both"}
	case cfg.TLS == nil && !cfg.Plain:
		c.cfgErr = &Error{Class: TLSPolicy, Op: "config", Msg: "no TLS configuration: camftpd uploads only over FTPES (explicit TLS), never plain FTP"}
	case cfg.Host == "":
		c.cfgErr = &Error{Class: Permanent, Op: "config", Msg: "no server host: set the FTP server's host name"}
	case cfg.SameName != Overwrite && cfg.SameName != Skip && cfg.SameName != Rename:
		c.cfgErr = &Error{Class: Permanent, Op: "config", Msg: fmt.Sprintf("same-name policy %q unknown: use overwrite, skip or rename", cfg.SameName)}
	case cfg.Port < 1 || cfg.Port > 65535:
		c.cfgErr = &Error{Class: Permanent, Op: "config", Msg: fmt.Sprintf("port %d out of range", cfg.Port)}
	case c.checkOptions() != nil:
		c.cfgErr = c.checkOptions()
	case cfg.Plain: // no TLS configuration
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

// dialGo connects, upgrades with AUTH TLS (crypto/tls), logs in, reads
// FEAT and sets TYPE I. goftp talks to the server through a guard
// (guard.go) that bounds what it reads. (dialOnce, engine.go, chooses
// between it and the openssl build's engine.)
func (c *Client) dialGo(ctx context.Context) (*session, error) {
	cctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	ip, addr, target, g, err := c.reach(ctx, cctx)
	if err != nil {
		return nil, err
	}
	hs := &hsState{}
	var tcfg *tls.Config
	gcfg := goftp.Config{
		User: c.cfg.User, Password: c.cfg.Password,
		ConnectionsPerHost: 1,
		Timeout:            c.cfg.Timeout,
	}
	if c.cfg.Plain {
		// On every connection, as the camera manual's precaution says.
		c.log.Warn(PlainWarning, "addr", addr)
	} else {
		tcfg = c.controlTLS(hs)
		gcfg.TLSConfig = tcfg // its ServerName is the server's, not the guard's
		gcfg.TLSMode = goftp.TLSExplicit
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
	s := &session{c: c, gc: gc, rc: rc, g: g, ip: ip, hs: hs}
	if tcfg != nil {
		_, cs, _ := hs.get()
		s.tls, s.tlsAll = dataTLS(tcfg, cs), tcfg
		c.log.Debug("ftps connected", "addr", addr, "tls", tls.VersionName(cs.Version), "suite", tls.CipherSuiteName(cs.CipherSuite))
	}
	return c.ready(s, g, addr)
}

// ready finishes a logged-in session: the local address in active mode,
// FEAT, TYPE I. It closes s on error.
func (c *Client) ready(s *session, g *guard, addr string) (*session, error) {
	var err error
	if c.cfg.Active {
		if s.local, err = localIP(g, addr); err != nil {
			s.close()
			return nil, err
		}
	}
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
	if c.tls12.Load() { // the server chose ChaCha20 in TLS 1.3 (tls13.go)
		tcfg.MaxVersion = tls.VersionTLS12
	}
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

// reach resolves the server (ip, and addr: ip and the port) and connect
// gives the address to dial (target: addr itself, or the guard's) and the
// guard: the first steps of dialGo and the engine's dialEngine.
func (c *Client) reach(ctx, cctx context.Context) (ip, addr, target string, g *guard, err error) {
	if ip, err = c.resolve(cctx); err != nil {
		return "", "", "", nil, err
	}
	addr = net.JoinHostPort(ip, strconv.Itoa(c.cfg.Port))
	target, g, err = c.connect(ctx, cctx, addr)
	return ip, addr, target, g, err
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
	traceConnected(ctx, addr, g)
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
		if n == 0 && !c.cfg.Plain {
			if code/100 == 4 {
				return classify(op, err)
			}
			return &Error{Class: TLSPolicy, Op: op, Code: code, Err: err,
				Msg: "server refused AUTH TLS (server said: " + serverText(err) + "): enable explicit FTPS (FTPES) on the server; camftpd never sends a password or file without TLS"}
		}
		if pe := c.loginRefused(ctx, addr, code, err); pe != nil {
			return pe // PROT P refused: see protrefused.go
		}
		e := classify("login", err)
		if e.Class == Auth {
			e.Msg = "server refused the login (server said: " + serverText(err) + "): check user name and password"
		}
		return e
	}
	msg := err.Error()
	if n == 0 && !c.cfg.Plain && !strings.HasPrefix(msg, "dial ") {
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
