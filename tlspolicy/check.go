package tlspolicy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"text/tabwriter"
	"time"
)

// Status is the verdict of Check; its int value is the exit status of
// `camftpd check`.
type Status int

const (
	CheckPass Status = 0 // connects with a recommended suite
	CheckWarn Status = 1 // connects, but only with deprecated suites (negotiated, or the only ones accepted), or TLS 1.3 landed on ChaCha20
	CheckFail Status = 2 // cannot connect under this policy
)

func (s Status) String() string {
	switch s {
	case CheckPass:
		return "pass"
	case CheckWarn:
		return "warn"
	}
	return "fail"
}

// probeResult is what one suite offered alone got from the server.
type probeResult struct {
	Suite Suite
	OK    bool
	Err   error
	Cert  *x509.Certificate
}

// Check is `camftpd check`: it connects to addr (host[:port], port 21 by
// default) with AUTH TLS, runs a handshake under opts' policy and prints
// the negotiated version and suite with its class (with an Engine, that
// engine's handshake when the server accepts none of crypto/tls's suites,
// as transfer does); then offers each suite of the spec this device can
// negotiate alone (TLS 1.2; with an Engine, all 13) and prints whether the
// server accepts it; then, without an Engine, asks with a bare ClientHello
// whether the server would pick each suite this device cannot negotiate.
// It writes a report
// to w and returns the verdict; err is the policy handshake's error when
// the verdict is CheckFail. Options.Timeout bounds each network step, ctx
// the whole check.
func Check(ctx context.Context, addr string, opts Options, w io.Writer) (Status, error) {
	addr, opts, timeout := checkTarget(addr, opts)
	p, err := New(opts)
	if err != nil {
		fmt.Fprintf(w, "configuration: %v\nresult: FAIL\n", err)
		return CheckFail, err
	}
	c := &checkRun{ctx: ctx, addr: addr, p: p, timeout: timeout, w: w, status: CheckPass}
	c.header()

	c.connect()
	if ctxErr(ctx) != nil {
		return CheckFail, ctxErr(ctx)
	}
	var pre preTLSError
	if errors.As(c.mainErr, &pre) {
		fmt.Fprintf(w, "suite probes: skipped, the connection did not get as far as TLS\nresult: FAIL: cannot connect (see \"connect\" above)\n")
		return CheckFail, pre.err
	}

	if err := c.probeUsable(); err != nil {
		return CheckFail, err
	}
	if err := c.probeUnimplemented(); err != nil {
		return CheckFail, err
	}
	if err := c.probeTLS13(); err != nil {
		return CheckFail, err
	}
	c.reportNeed()
	c.reportCertificate()
	c.reportResult()
	return c.status, c.mainErr
}

// checkTarget fills in Check's defaults: port 21, the certificate name
// from the host, a discarding logger (the report already shows any
// warning; do not log it twice) and the per-step timeout.
func checkTarget(addr string, opts Options) (string, Options, time.Duration) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "21")
	}
	host, _, _ := net.SplitHostPort(addr)
	if opts.ServerName == "" {
		opts.ServerName = host
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	return addr, opts, timeout
}

// checkRun is one run of Check: the target and policy it was given, the
// report it writes to, and what its steps have measured so far, in the
// order they run.
type checkRun struct {
	ctx     context.Context
	addr    string
	p       *Policy
	timeout time.Duration
	w       io.Writer

	// connect: the policy handshake.
	status     Status
	verdict    []string // why status is not CheckPass
	mainErr    error
	mainCert   *x509.Certificate
	negotiated Negotiated

	// probeUsable: the suites this device has that the server accepts.
	recOK, depOK []string
	probeCert    *x509.Certificate // unverified, from the first accepting probe

	// probeUnimplemented: the suites this device lacks that the server would pick.
	needOK []string

	// reportCertificate: the verified certificate expires within CertWarnDays.
	certWarn string

	// connect: TLS 1.3 landed on ChaCha20 (refused in mode recommended,
	// or accepted with a warning in mode compatible): what to do.
	fix13 string
}

// header prints what is checked and under which policy.
func (c *checkRun) header() {
	roots := "system roots"
	if n := len(c.p.opts.CAPEM); n > 0 {
		roots = fmt.Sprintf("%d imported CA file(s)", n)
	}
	fmt.Fprintf(c.w, "check %s (certificate name %s, mode %s, TLS 1.2 to %s, %s, %d pin(s))\n",
		c.addr, c.p.serverName, c.p.opts.Mode, VersionName(c.p.maxVersion), roots, len(c.p.pins))
	if e := c.p.opts.Engine; e != nil {
		fmt.Fprintf(c.w, "TLS engines:  crypto/tls (%d suites of the spec), %s (the %d others)\n", len(table)-len(unimplemented()), e.Name(), len(unimplemented()))
	}
}

// connect runs the handshake under the policy and prints the greeting,
// the AUTH TLS reply and the negotiated version and suite; a failure or a
// deprecated suite sets the status.
func (c *checkRun) connect() {
	s, err := dialAuthTLS(c.ctx, c.addr, c.p.Config(), c.timeout)
	if errors.Is(err, ErrTLS13NotNIST) {
		// As the daemon does: refused, then TLS 1.2 (the Policy is capped now).
		fmt.Fprintf(c.w, "TLS 1.3:      REFUSED: %v\n", err)
		c.status = CheckWarn
		c.verdict = append(c.verdict, "in TLS 1.3 the server chose TLS_CHACHA20_POLY1305_SHA256, refused in mode recommended: the camera uses TLS 1.2 with this server")
		c.fix13 = "to keep TLS 1.3, " + tls13Fix
		s, err = dialAuthTLS(c.ctx, c.addr, c.p.Config(), c.timeout)
	}
	if err != nil && c.p.opts.Engine != nil && IsNoCommonSuite(err) {
		// As the openssl build's uploads do: the second engine, with the
		// suites crypto/tls lacks.
		fmt.Fprintf(c.w, "crypto/tls:   the server accepts none of its suites; trying %s\n", c.p.opts.Engine.Name())
		c.connectEngine()
		return
	}
	if err != nil {
		c.connectFailed(err)
		return
	}
	c.negotiatedLine(s.tc.ConnectionState(), s.Banner, s.Auth, "crypto/tls")
	s.quit()
}

// connectFailed records and prints a failed policy handshake.
func (c *checkRun) connectFailed(err error) {
	c.mainErr = err
	c.status = CheckFail
	fmt.Fprintf(c.w, "connect:      FAILED: %v\n", err)
	c.verdict = append(c.verdict, "cannot connect under this policy")
}

// connectEngine is connect's policy handshake made by the Engine: the
// policy's engine suites, then VerifyConnection as for crypto/tls.
func (c *checkRun) connectEngine() {
	e := c.p.opts.Engine
	s, err := dialFTP(c.ctx, c.addr, c.timeout)
	if err != nil {
		c.connectFailed(preTLSError{err})
		return
	}
	defer s.stop()
	defer s.raw.Close()
	cs, err := c.engineHandshake(s, c.p.EngineSuites(), c.p.MaxVersion())
	if err == nil {
		err = c.p.VerifyConnection(cs)
	}
	if err != nil {
		c.connectFailed(err)
		return
	}
	c.negotiatedLine(cs, s.Banner, s.Auth, e.Name())
}

// engineHandshake runs the Engine's handshake on s's connection, bounded
// by the step's deadline.
func (c *checkRun) engineHandshake(s *session, suites []uint16, maxVersion uint16) (tls.ConnectionState, error) {
	if err := s.deadline(); err != nil {
		return tls.ConnectionState{}, fmt.Errorf("TLS handshake with %s: %w", c.addr, err)
	}
	tcp, ok := s.raw.(*net.TCPConn)
	if !ok {
		return tls.ConnectionState{}, fmt.Errorf("TLS handshake with %s: %T is not a TCP connection", c.addr, s.raw)
	}
	cs, err := c.p.opts.Engine.Handshake(c.ctx, tcp, c.p.serverName, suites, maxVersion)
	if err != nil && ctxErr(c.ctx) != nil {
		return cs, fmt.Errorf("TLS handshake with %s: %w", c.addr, ctxErr(c.ctx))
	}
	return cs, err
}

// negotiatedLine prints the greeting, the AUTH TLS reply and what the
// policy handshake negotiated (and with which engine), and records it.
func (c *checkRun) negotiatedLine(cs tls.ConnectionState, banner, auth reply, engine string) {
	sv, _ := Lookup(cs.CipherSuite)
	c.negotiated = Negotiated{Version: cs.Version, Suite: cs.CipherSuite, SuiteName: sv.Name, Class: sv.Class, Warning: c.p.warningFor(cs.Version, sv)}
	if sv.Class == NonNIST {
		c.fix13 = tls13Fix
	}
	if len(cs.PeerCertificates) > 0 {
		c.mainCert = cs.PeerCertificates[0]
	}
	fmt.Fprintf(c.w, "greeting:     %s\n", clip(banner.String()))
	fmt.Fprintf(c.w, "AUTH TLS:     %s\n", clip(auth.String()))
	if c.p.opts.Engine != nil {
		fmt.Fprintf(c.w, "negotiated:   %s, %s (%s), by %s\n", VersionName(cs.Version), sv.Name, sv.Class, engine)
	} else {
		fmt.Fprintf(c.w, "negotiated:   %s, %s (%s)\n", VersionName(cs.Version), sv.Name, sv.Class)
	}
	if c.negotiated.Warning != "" {
		c.status = CheckWarn
		fmt.Fprintf(c.w, "warning:      %s\n", c.negotiated.Warning)
		if sv.Class != Recommended { // a recommended one warns only after a TLS 1.3 refusal, already said
			c.verdict = append(c.verdict, "the negotiated suite is "+sv.Class.String())
		}
	}
}

// probeUsable offers each suite this device can negotiate alone (TLS
// 1.2): the implemented ones with crypto/tls, and with an Engine the
// others with it too; it prints the server's answer in a table. When
// ctx's time runs out the remaining suites are reported as not probed; it
// returns ctx's error only when ctx was canceled.
func (c *checkRun) probeUsable() error {
	e := c.p.opts.Engine
	fmt.Fprintf(c.w, "\nsuites of the spec this device can negotiate, each offered alone (TLS 1.2):\n")
	tw := tabwriter.NewWriter(c.w, 0, 0, 2, ' ', 0)
	if e != nil {
		fmt.Fprintf(tw, "  SUITE\tCLASS\tENGINE\tSERVER\n")
	} else {
		fmt.Fprintf(tw, "  SUITE\tCLASS\tSERVER\n")
	}
	row := func(su Suite, word string) {
		switch {
		case e == nil:
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", su.Name, su.Class, word)
		case su.Implemented:
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", su.Name, su.Class, "crypto/tls", word)
		default:
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", su.Name, su.Class, e.Name(), word)
		}
	}
	var results []probeResult
	for _, su := range table {
		if !c.p.usable(su) {
			continue
		}
		var r probeResult
		if ctxErr(c.ctx) == nil {
			if su.Implemented {
				r = probeSuite(c.ctx, c.addr, c.p.serverName, su, c.timeout)
			} else {
				r = c.probeEngine(su)
			}
		}
		if errors.Is(ctxErr(c.ctx), context.Canceled) {
			tw.Flush()
			return ctxErr(c.ctx)
		}
		if ctxErr(c.ctx) != nil { // time is up: report what is known
			row(su, notProbed)
			continue
		}
		results = append(results, r)
		row(su, r.word())
	}
	tw.Flush()
	c.recOK, c.depOK, c.probeCert = acceptedSuites(results)
	return nil
}

// probeEngine offers su alone (TLS 1.2) with the Engine, as probeSuite
// does with crypto/tls: the certificate is not verified, the connection is
// closed after the handshake.
func (c *checkRun) probeEngine(su Suite) probeResult {
	s, err := dialFTP(c.ctx, c.addr, c.timeout)
	if err != nil {
		return probeResult{Suite: su, Err: err}
	}
	defer s.stop()
	defer s.raw.Close()
	cs, err := c.engineHandshake(s, []uint16{su.ID}, tls.VersionTLS12)
	if err != nil {
		if c.p.opts.Engine.NoCommonSuite(err) {
			return probeResult{Suite: su} // refused
		}
		return probeResult{Suite: su, Err: err}
	}
	r := probeResult{Suite: su, OK: cs.CipherSuite == su.ID}
	if len(cs.PeerCertificates) > 0 {
		r.Cert = cs.PeerCertificates[0]
	}
	return r
}

// acceptedSuites sorts the suites the server accepted into recommended
// and deprecated, and returns the certificate of the first one.
func acceptedSuites(results []probeResult) (recOK, depOK []string, cert *x509.Certificate) {
	recOK, depOK = []string{}, []string{}
	for _, r := range results {
		if !r.OK {
			continue
		}
		if cert == nil {
			cert = r.Cert
		}
		if r.Suite.Class == Recommended {
			recOK = append(recOK, r.Suite.Name)
		} else {
			depOK = append(depOK, r.Suite.Name)
		}
	}
	return recOK, depOK, cert
}

// probeUnimplemented asks, with a bare ClientHello per suite, whether the
// server would pick each listed suite crypto/tls lacks, and prints the
// answers in a table; time running out and cancellation are handled as in
// probeUsable.
func (c *checkRun) probeUnimplemented() error {
	if c.p.opts.Engine != nil {
		return nil // the Engine has them: probeUsable probed all 13
	}
	fmt.Fprintf(c.w, "\nsuites of the spec this device cannot negotiate (crypto/tls has no DHE and no AES-256-CBC-SHA256/SHA384 suites):\n")
	tw := tabwriter.NewWriter(c.w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  SUITE\tCLASS\tSERVER\n")
	for _, su := range unimplemented() {
		var res helloResult
		var err error
		if ctxErr(c.ctx) == nil {
			res, err = helloProbe(c.ctx, c.addr, c.p.serverName, su.ID, c.timeout)
		}
		if errors.Is(ctxErr(c.ctx), context.Canceled) {
			tw.Flush()
			return ctxErr(c.ctx)
		}
		if ctxErr(c.ctx) != nil {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", su.Name, su.Class, notProbed)
			continue
		}
		if res == helloAccepted {
			c.needOK = append(c.needOK, su.Name)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", su.Name, su.Class, helloWord(res, err))
	}
	tw.Flush()
	return nil
}

// helloWord is the table's word for one ClientHello probe.
func helloWord(res helloResult, err error) string {
	switch {
	case res == helloAccepted:
		return "would accept (this device cannot use it)"
	case err != nil:
		return "unclear: " + clip(printable(err.Error()))
	case res == helloUnclear:
		return "unclear"
	}
	return "refused"
}

// reportNeed answers the question the probes are for: does the server
// need a suite this device cannot negotiate? It also says when the
// check's time limit cut the probes short.
func (c *checkRun) reportNeed() {
	incomplete := ctxErr(c.ctx) != nil
	usable, needOK := len(c.recOK)+len(c.depOK), c.needOK
	if c.p.opts.Engine != nil && usable > 0 {
		return // the device has every suite of the spec: nothing it lacks to need
	}
	switch {
	case incomplete && usable+len(needOK) == 0:
		fmt.Fprintf(c.w, "needs one of them: unknown, the probes did not finish\n")
	case usable > 0 && len(needOK) > 0:
		fmt.Fprintf(c.w, "needs one of them: no (it accepts suites this device has; it also accepts %d this device lacks)\n", len(needOK))
	case usable > 0:
		fmt.Fprintf(c.w, "needs one of them: no\n")
	case len(needOK) > 0:
		fmt.Fprintf(c.w, "needs one of them: YES: in TLS 1.2 the server accepts only %s, which this device cannot negotiate: enable %s on the server\n",
			strings.Join(needOK, ", "), recommendedNames())
	case c.mainErr == nil && c.negotiated.Version == tls.VersionTLS13:
		fmt.Fprintf(c.w, "needs one of them: no suite of the spec was accepted in TLS 1.2; the server seems to accept only TLS 1.3 (fine for this device unless capped at TLS 1.2)\n")
	default:
		fmt.Fprintf(c.w, "needs one of them: probably: the server accepted none of the suites this device can negotiate; it may need one of the suites above or one outside the spec: enable %s on the server\n", recommendedNames())
	}

	if incomplete {
		fmt.Fprintf(c.w, "incomplete: the check's time limit ran out during the suite probes; the result rests on what was measured\n")
	}
}

// reportCertificate prints the server's certificate and its pins: the one
// the policy handshake verified or, when that failed, the unverified one
// of a suite probe.
func (c *checkRun) reportCertificate() {
	cert, note := c.mainCert, "verified"
	if cert == nil && c.probeCert != nil {
		cert, note = c.probeCert, "NOT verified, from a suite probe"
	}
	if cert == nil {
		return
	}
	cp, kp := CertPins(cert)
	fmt.Fprintf(c.w, "\ncertificate (%s): subject %q, issuer %q, valid %s to %s\n", note, printable(cert.Subject.String()),
		printable(cert.Issuer.String()), cert.NotBefore.UTC().Format(time.DateOnly), cert.NotAfter.UTC().Format(time.DateOnly))
	fmt.Fprintf(c.w, "pins:         certificate %s, public key %s\n", cp, kp)
	if ex := CertExpiry(cert, c.p.now(), c.p.opts.CertWarnDays); cert == c.mainCert && ex.Class == ExpiryWarn {
		fmt.Fprintf(c.w, "warning:      %s\n", ex.Msg)
		if c.status == CheckPass {
			c.status = CheckWarn
		}
		c.certWarn = fmt.Sprintf("the server certificate expires in %d day(s): renew it on the server", ex.DaysLeft)
	}
}

// reportResult settles the status (a server that accepts only deprecated
// suites in TLS 1.2 is a warning) and prints the result line.
func (c *checkRun) reportResult() {
	if c.status != CheckFail && len(c.recOK) == 0 && len(c.depOK) > 0 {
		c.status = CheckWarn
		c.verdict = append(c.verdict, "in TLS 1.2 the server accepts only deprecated suites ("+strings.Join(c.depOK, ", ")+")")
	}
	switch c.status {
	case CheckPass:
		msg := "PASS: the server uses recommended suites"
		if len(c.depOK) > 0 {
			msg += "; it also accepts deprecated ones (" + strings.Join(c.depOK, ", ") + "): the spec recommends disabling them on the server"
		}
		fmt.Fprintf(c.w, "result: %s\n", msg)
	case CheckWarn:
		var why []string
		switch {
		case c.fix13 != "":
			why = append(why, strings.Join(c.verdict, "; ")+": "+c.fix13)
		case len(c.verdict) > 0:
			why = append(why, fmt.Sprintf("%s: enable only the recommended suites on the server (OpenSSL names: %s)", strings.Join(c.verdict, "; "), recommendedOpenSSL()))
		}
		if c.certWarn != "" {
			why = append(why, c.certWarn)
		}
		fmt.Fprintf(c.w, "result: WARN: %s\n", strings.Join(why, "; "))
	default:
		fmt.Fprintf(c.w, "result: FAIL: cannot connect under this policy (see \"connect\" above)\n")
	}
}

const notProbed = "not probed (time limit reached)"

func (r probeResult) word() string {
	switch {
	case r.OK:
		return "accepted"
	case r.Err == nil:
		return "refused"
	}
	return "error: " + clip(printable(r.Err.Error()))
}

// probeSuite offers su alone in TLS 1.2. The handshake completes without
// verifying the certificate (only QUIT is sent afterwards): this measures
// what the server accepts, the policy handshake judged the certificate.
func probeSuite(ctx context.Context, addr, serverName string, su Suite, timeout time.Duration) probeResult {
	cfg := &tls.Config{
		ServerName:         serverName,
		MinVersion:         tls.VersionTLS12,
		MaxVersion:         tls.VersionTLS12,
		CipherSuites:       []uint16{su.ID},
		InsecureSkipVerify: true, // probe only: nothing but QUIT is sent
	}
	s, err := dialAuthTLS(ctx, addr, cfg, timeout)
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) && pe.Kind == KindPolicy {
			return probeResult{Suite: su} // refused
		}
		return probeResult{Suite: su, Err: err}
	}
	cs := s.tc.ConnectionState()
	r := probeResult{Suite: su, OK: cs.CipherSuite == su.ID}
	if len(cs.PeerCertificates) > 0 {
		r.Cert = cs.PeerCertificates[0]
	}
	s.quit()
	return r
}

func recommendedOpenSSL() string {
	return joinRecommended(table, func(s Suite) string { return s.OpenSSL }, ":")
}
