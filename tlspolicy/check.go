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
	CheckWarn Status = 1 // connects, but only with deprecated suites (negotiated, or the only ones accepted)
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
// the negotiated version and suite with its class; then offers each
// implemented suite of the spec alone (TLS 1.2) and prints whether the
// server accepts it; then asks, with a bare ClientHello, whether the server
// would pick each suite this device cannot negotiate. It writes a report
// to w and returns the verdict; err is the policy handshake's error when
// the verdict is CheckFail. Options.Timeout bounds each network step, ctx
// the whole check.
func Check(ctx context.Context, addr string, opts Options, w io.Writer) (Status, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "21")
	}
	host, _, _ := net.SplitHostPort(addr)
	if opts.ServerName == "" {
		opts.ServerName = host
	}
	if opts.Logger == nil {
		// The report already shows any warning; do not log it twice.
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	p, err := New(opts)
	if err != nil {
		fmt.Fprintf(w, "configuration: %v\nresult: FAIL\n", err)
		return CheckFail, err
	}
	roots := "system roots"
	if n := len(opts.CAPEM); n > 0 {
		roots = fmt.Sprintf("%d imported CA file(s)", n)
	}
	fmt.Fprintf(w, "check %s (certificate name %s, mode %s, TLS 1.2 to %s, %s, %d pin(s))\n",
		addr, p.serverName, p.opts.Mode, VersionName(p.maxVersion), roots, len(p.pins))

	status := CheckPass
	var verdict []string
	var mainErr error
	var mainCert *x509.Certificate
	var negotiated Negotiated
	s, err := dialAuthTLS(ctx, addr, p.Config(), timeout)
	if err != nil {
		mainErr = err
		status = CheckFail
		fmt.Fprintf(w, "connect:      FAILED: %v\n", err)
		verdict = append(verdict, "cannot connect under this policy")
	} else {
		cs := s.tc.ConnectionState()
		sv, _ := Lookup(cs.CipherSuite)
		negotiated = Negotiated{Version: cs.Version, Suite: cs.CipherSuite, SuiteName: sv.Name, Class: sv.Class, Warning: p.warning(sv)}
		if len(cs.PeerCertificates) > 0 {
			mainCert = cs.PeerCertificates[0]
		}
		fmt.Fprintf(w, "greeting:     %s\n", clip(s.Banner.String()))
		fmt.Fprintf(w, "AUTH TLS:     %s\n", clip(s.Auth.String()))
		fmt.Fprintf(w, "negotiated:   %s, %s (%s)\n", VersionName(cs.Version), sv.Name, sv.Class)
		if negotiated.Warning != "" {
			status = CheckWarn
			fmt.Fprintf(w, "warning:      %s\n", negotiated.Warning)
			verdict = append(verdict, "the negotiated suite is deprecated")
		}
		s.quit()
	}
	if ctxErr(ctx) != nil {
		return CheckFail, ctxErr(ctx)
	}
	var pre preTLSError
	if errors.As(mainErr, &pre) {
		fmt.Fprintf(w, "suite probes: skipped, the connection did not get as far as TLS\nresult: FAIL: cannot connect (see \"connect\" above)\n")
		return CheckFail, pre.err
	}

	// Each implemented suite alone, TLS 1.2.
	fmt.Fprintf(w, "\nsuites of the spec this device can negotiate, each offered alone (TLS 1.2):\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  SUITE\tCLASS\tSERVER\n")
	var results []probeResult
	for _, su := range table {
		if !su.Implemented {
			continue
		}
		var r probeResult
		if ctxErr(ctx) == nil {
			r = probeSuite(ctx, addr, p.serverName, su, timeout)
		}
		if errors.Is(ctxErr(ctx), context.Canceled) {
			tw.Flush()
			return CheckFail, ctxErr(ctx)
		}
		if ctxErr(ctx) != nil { // time is up: report what is known
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", su.Name, su.Class, notProbed)
			continue
		}
		results = append(results, r)
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", su.Name, su.Class, r.word())
	}
	tw.Flush()
	recOK, depOK := []string{}, []string{}
	var probeCert *x509.Certificate
	for _, r := range results {
		if !r.OK {
			continue
		}
		if probeCert == nil {
			probeCert = r.Cert
		}
		if r.Suite.Class == Recommended {
			recOK = append(recOK, r.Suite.Name)
		} else {
			depOK = append(depOK, r.Suite.Name)
		}
	}

	// The listed suites crypto/tls lacks: ask with a bare ClientHello.
	fmt.Fprintf(w, "\nsuites of the spec this device cannot negotiate (crypto/tls has no DHE and no AES-256-CBC-SHA256/SHA384 suites):\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  SUITE\tCLASS\tSERVER\n")
	var needOK []string
	for _, su := range unimplemented() {
		var res helloResult
		var err error
		if ctxErr(ctx) == nil {
			res, err = helloProbe(ctx, addr, p.serverName, su.ID, timeout)
		}
		if errors.Is(ctxErr(ctx), context.Canceled) {
			tw.Flush()
			return CheckFail, ctxErr(ctx)
		}
		if ctxErr(ctx) != nil {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", su.Name, su.Class, notProbed)
			continue
		}
		word := "refused"
		switch {
		case res == helloAccepted:
			word = "would accept (this device cannot use it)"
			needOK = append(needOK, su.Name)
		case err != nil:
			word = "unclear: " + clip(printable(err.Error()))
		case res == helloUnclear:
			word = "unclear"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", su.Name, su.Class, word)
	}
	tw.Flush()

	incomplete := ctxErr(ctx) != nil
	switch {
	case incomplete && len(recOK)+len(depOK)+len(needOK) == 0:
		fmt.Fprintf(w, "needs one of them: unknown, the probes did not finish\n")
	case len(recOK)+len(depOK) > 0 && len(needOK) > 0:
		fmt.Fprintf(w, "needs one of them: no (it accepts suites this device has; it also accepts %d this device lacks)\n", len(needOK))
	case len(recOK)+len(depOK) > 0:
		fmt.Fprintf(w, "needs one of them: no\n")
	case len(needOK) > 0:
		fmt.Fprintf(w, "needs one of them: YES: in TLS 1.2 the server accepts only %s, which this device cannot negotiate: enable %s on the server\n",
			strings.Join(needOK, ", "), recommendedNames())
	case mainErr == nil && negotiated.Version == tls.VersionTLS13:
		fmt.Fprintf(w, "needs one of them: no suite of the spec was accepted in TLS 1.2; the server seems to accept only TLS 1.3 (fine for this device unless capped at TLS 1.2)\n")
	default:
		fmt.Fprintf(w, "needs one of them: probably: the server accepted none of the suites this device can negotiate; it may need one of the suites above or one outside the spec: enable %s on the server\n", recommendedNames())
	}

	if incomplete {
		fmt.Fprintf(w, "incomplete: the check's time limit ran out during the suite probes; the result rests on what was measured\n")
	}

	cert, note := mainCert, "verified"
	if cert == nil && probeCert != nil {
		cert, note = probeCert, "NOT verified, from a suite probe"
	}
	if cert != nil {
		cp, kp := CertPins(cert)
		fmt.Fprintf(w, "\ncertificate (%s): subject %q, issuer %q, valid %s to %s\n", note, printable(cert.Subject.String()),
			printable(cert.Issuer.String()), cert.NotBefore.UTC().Format(time.DateOnly), cert.NotAfter.UTC().Format(time.DateOnly))
		fmt.Fprintf(w, "pins:         certificate %s, public key %s\n", cp, kp)
	}

	if status != CheckFail && len(recOK) == 0 && len(depOK) > 0 {
		status = CheckWarn
		verdict = append(verdict, "in TLS 1.2 the server accepts only deprecated suites ("+strings.Join(depOK, ", ")+")")
	}
	switch status {
	case CheckPass:
		msg := "PASS: the server uses recommended suites"
		if len(depOK) > 0 {
			msg += "; it also accepts deprecated ones (" + strings.Join(depOK, ", ") + "): the spec recommends disabling them on the server"
		}
		fmt.Fprintf(w, "result: %s\n", msg)
	case CheckWarn:
		fmt.Fprintf(w, "result: WARN: %s: enable only the recommended suites on the server (OpenSSL names: %s)\n", strings.Join(verdict, "; "), recommendedOpenSSL())
	default:
		fmt.Fprintf(w, "result: FAIL: cannot connect under this policy (see \"connect\" above)\n")
	}
	return status, mainErr
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
	var n []string
	for _, s := range table {
		if s.Class == Recommended {
			n = append(n, s.OpenSSL)
		}
	}
	return strings.Join(n, ":")
}
