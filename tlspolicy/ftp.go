package tlspolicy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

const defaultTimeout = 10 * time.Second

// maxReplyLines bounds a multi-line FTP reply; maxLine (the bufio size)
// bounds one line.
const (
	maxReplyLines = 100
	maxLine       = 4096
)

// reply is one FTP reply: its code and its text (lines joined by " | ").
type reply struct {
	Code int
	Text string
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.Code, r.Text) }

// readReply reads one FTP reply (RFC 959 4.2), single- or multi-line.
func readReply(r *bufio.Reader) (reply, error) {
	first, err := readLine(r)
	if err != nil {
		return reply{}, err
	}
	code, ok := replyCode(first)
	if !ok || (len(first) > 3 && first[3] != ' ' && first[3] != '-') {
		return reply{}, fmt.Errorf("server sent %q, not an FTP reply: is this the FTP port?", clip(printable(first)))
	}
	text := []string{strings.TrimSpace(first[min(4, len(first)):])}
	if len(first) > 3 && first[3] == '-' {
		for i := 0; ; i++ {
			if i >= maxReplyLines {
				return reply{}, fmt.Errorf("server sent a reply of more than %d lines: is this an FTP server?", maxReplyLines)
			}
			l, err := readLine(r)
			if err != nil {
				return reply{}, err
			}
			if len(l) >= 4 && l[:3] == first[:3] && l[3] == ' ' {
				text = append(text, strings.TrimSpace(l[4:]))
				break
			}
			if len(l) == 3 && l == first[:3] {
				break
			}
			text = append(text, strings.TrimSpace(l))
		}
	}
	return reply{Code: code, Text: printable(strings.Join(text, " | "))}, nil
}

func replyCode(l string) (int, bool) {
	if len(l) < 3 {
		return 0, false
	}
	c := 0
	for i := 0; i < 3; i++ {
		if l[i] < '0' || l[i] > '9' {
			return 0, false
		}
		c = c*10 + int(l[i]-'0')
	}
	return c, c >= 100 && c < 600
}

func readLine(r *bufio.Reader) (string, error) {
	b, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("server sent a line longer than %d bytes: is this an FTP server?", maxLine)
	}
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// printable replaces control and non-ASCII bytes so server text cannot
// disturb a terminal or a log line.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// session is one FTPES control connection during a check.
type session struct {
	raw     net.Conn
	tc      *tls.Conn
	br      *bufio.Reader
	timeout time.Duration
	ctx     context.Context
	stop    func() bool
	Banner  reply
	Auth    reply
}

func stepDeadline(ctx context.Context, timeout time.Duration) time.Time {
	d := time.Now().Add(timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	return d
}

// deadline bounds the next step. It fails only on a closed connection; a
// step without a deadline could wait for ever, so its error ends the check.
func (s *session) deadline() error {
	if err := s.raw.SetDeadline(stepDeadline(s.ctx, s.timeout)); err != nil {
		return fmt.Errorf("set the connection's deadline: %w", err)
	}
	return nil
}

// wrap makes a network error of a step say which step and why.
func (s *session) wrap(step string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctxErr(s.ctx); cerr != nil {
		return fmt.Errorf("%s: %w", step, cerr)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s: no answer within %s: check the address and port, and that the server is up", step, s.timeout)
	}
	return fmt.Errorf("%s: %w", step, err)
}

// dialFTP connects to addr, reads the greeting, sends AUTH TLS and
// expects 234: the connection is then ready for a ClientHello. Every step
// has a deadline from ctx and timeout; cancelling ctx aborts the step in
// progress.
func dialFTP(ctx context.Context, addr string, timeout time.Duration) (*session, error) {
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	d := net.Dialer{Deadline: stepDeadline(ctx, timeout)}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctxErr(ctx) != nil {
			return nil, fmt.Errorf("connect %s: %w", addr, ctxErr(ctx))
		}
		return nil, fmt.Errorf("connect %s: %w: check the server address and port, and the network", addr, err)
	}
	s := &session{raw: raw, br: bufio.NewReaderSize(raw, maxLine), timeout: timeout, ctx: ctx}
	// Cancelling ctx makes the step in progress time out at once. Should
	// SetDeadline fail, the connection is closed: nothing is left to abort.
	s.stop = context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*session, error) {
		s.stop()
		raw.Close()
		return nil, err
	}
	if err := s.deadline(); err != nil {
		return fail(fmt.Errorf("connect %s: %w", addr, err))
	}
	for {
		s.Banner, err = readReply(s.br)
		if err != nil {
			return fail(s.wrap("greeting from "+addr, err))
		}
		if s.Banner.Code/100 != 1 { // 120: "ready in n minutes", then 220
			break
		}
	}
	if s.Banner.Code != 220 {
		return fail(fmt.Errorf("server %s greeted with %q instead of 220: it is not ready or not an FTP server", addr, clip(s.Banner.String())))
	}
	if _, err := raw.Write([]byte("AUTH TLS\r\n")); err != nil {
		return fail(s.wrap("AUTH TLS", err))
	}
	s.Auth, err = readReply(s.br)
	if err != nil {
		return fail(s.wrap("AUTH TLS", err))
	}
	if s.Auth.Code != 234 {
		return fail(&Error{Kind: KindPolicy, Msg: fmt.Sprintf("server %s answered AUTH TLS with %q: enable explicit FTPS (FTPES, AUTH TLS) on the server", addr, clip(s.Auth.String()))})
	}
	if s.br.Buffered() > 0 {
		return fail(fmt.Errorf("server %s sent data after 234 before the TLS handshake: it is not speaking FTPES correctly", addr))
	}
	return s, nil
}

// preTLSError marks a failure before the TLS handshake started (network,
// greeting, AUTH TLS): suite probes would fail the same way.
type preTLSError struct{ err error }

func (e preTLSError) Error() string { return e.err.Error() }
func (e preTLSError) Unwrap() error { return e.err }

// dialAuthTLS is dialFTP followed by the TLS handshake with cfg.
func dialAuthTLS(ctx context.Context, addr string, cfg *tls.Config, timeout time.Duration) (*session, error) {
	s, err := dialFTP(ctx, addr, timeout)
	if err != nil {
		return nil, preTLSError{err}
	}
	fail := func(err error) (*session, error) {
		s.stop()
		s.raw.Close()
		return nil, err
	}
	if err := s.deadline(); err != nil {
		return fail(fmt.Errorf("TLS handshake with %s: %w", addr, err))
	}
	s.tc = tls.Client(s.raw, cfg)
	if err := s.tc.HandshakeContext(ctx); err != nil {
		if ctxErr(ctx) != nil {
			return fail(fmt.Errorf("TLS handshake with %s: %w", addr, ctxErr(ctx)))
		}
		// The policy's own *Error, or Explain's for refused suites and
		// versions; Explain returns any other error as it is.
		var pe *Error
		if ex := Explain(err, cfg); errors.As(ex, &pe) {
			return fail(ex)
		}
		return fail(s.wrap("TLS handshake with "+addr, err))
	}
	s.br = bufio.NewReaderSize(s.tc, maxLine)
	return s, nil
}

// quit sends QUIT over TLS, waits briefly for 221, and closes politely
// (close_notify). Errors are ignored: the check's result is known.
func (s *session) quit() {
	defer s.stop()
	defer s.raw.Close()
	d := time.Now().Add(min(s.timeout, 3*time.Second))
	if cd, ok := s.ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	if err := s.raw.SetDeadline(d); err != nil {
		return // closed already
	}
	if _, err := s.tc.Write([]byte("QUIT\r\n")); err != nil {
		return
	}
	_, _ = readReply(s.br) // 221 or not, the connection is closed next
	s.tc.Close()
}

// HandshakeError connects to addr (host:port), upgrades with AUTH TLS, runs
// one handshake with cfg and says goodbye with QUIT. It returns the
// handshake's error, explained as Explain does, or nil when the handshake
// succeeded or never started (connect, greeting or AUTH TLS failed). It is
// the FTPES client transfer uses to learn the type of a handshake error
// that goftp lost. timeout bounds each step (0 means 10 s).
func HandshakeError(ctx context.Context, addr string, cfg *tls.Config, timeout time.Duration) error {
	s, err := dialAuthTLS(ctx, addr, cfg, timeout)
	var pre preTLSError
	if errors.As(err, &pre) {
		return nil
	}
	if err != nil {
		return err
	}
	s.quit()
	return nil
}

// Probe connects to addr (host:port), upgrades with AUTH TLS, runs one
// handshake with p.Config() (verification, warning, OnNegotiated included)
// and says goodbye with QUIT. It reports what was negotiated. Errors are
// *Error for policy, certificate and clock problems (explained as Explain
// does), plain errors for the network. Options.Timeout bounds each step.
func (p *Policy) Probe(ctx context.Context, addr string) (Negotiated, error) {
	s, err := dialAuthTLS(ctx, addr, p.Config(), p.opts.Timeout)
	if err != nil {
		var pre preTLSError
		if errors.As(err, &pre) {
			err = pre.err
		}
		return Negotiated{}, err
	}
	defer s.quit()
	cs := s.tc.ConnectionState()
	sv, _ := Lookup(cs.CipherSuite)
	return Negotiated{Version: cs.Version, Suite: cs.CipherSuite, SuiteName: sv.Name, Class: sv.Class,
		Resumed: cs.DidResume, Warning: p.warningFor(cs.Version, sv)}, nil
}

// ctxErr is ctx.Err(), and also DeadlineExceeded as soon as ctx's
// deadline has passed: a connection deadline taken from ctx can fire
// before ctx's own timer, and the error must then say "time is up", not
// "the server did not answer".
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}
