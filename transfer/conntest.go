package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
)

// The steps of the connection test (Test), in the order they run.
const (
	StepConfig      = "config" // only when the Config is refused
	StepResolve     = "resolve"
	StepTCP         = "tcp"
	StepGreeting    = "greeting"
	StepAuthTLS     = "auth-tls"
	StepHandshake   = "handshake"
	StepCertificate = "certificate"
	StepLogin       = "login"
	StepProt        = "pbsz-prot"
	StepMkdir       = "mkd"
	StepData        = "data"
	StepStor        = "stor"
	StepSize        = "size"
	StepRest        = "rest"
	StepHash        = "hash"
	StepRename      = "rename"
	StepDelete      = "dele"
)

// TestSteps lists the steps of a connection test in order (without
// StepConfig).
func TestSteps() []string {
	return []string{StepResolve, StepTCP, StepGreeting, StepAuthTLS, StepHandshake, StepCertificate, StepLogin, StepProt,
		StepMkdir, StepData, StepStor, StepSize, StepRest, StepHash, StepRename, StepDelete}
}

// Verdict is the outcome of one step of the connection test.
type Verdict int

const (
	StepOK      Verdict = iota
	StepWarn            // works, but uploads lose something (a hash, resuming) or the server needs attention soon
	StepFail            // uploads cannot work
	StepSkipped         // not run: Detail says why
)

func (v Verdict) String() string {
	switch v {
	case StepOK:
		return "ok"
	case StepWarn:
		return "warn"
	case StepFail:
		return "fail"
	}
	return "skipped"
}

// StepResult is one step of the connection test.
type StepResult struct {
	Step    string
	Verdict Verdict
	Detail  string // what was seen, one line
	Fix     string // one line saying what to do; empty when ok or skipped
	Err     error  // the *Error of a failed step (its Class), else nil
}

// certWarnDays is the default of TestOptions.CertWarnDays.
const certWarnDays = 30

// TestOptions configure Test.
type TestOptions struct {
	// Remote is the remote path an upload of a sample capture would take
	// (RenderRemote): its folder is created as uploads create it (and
	// kept: uploads use it), and the test file goes into it.
	Remote string
	// CertWarnDays: a server certificate that expires within that many
	// days is a warning; 0 means 30, negative none. An expired one fails
	// the handshake.
	CertWarnDays int
	// Now is the clock of the expiry warning (nil: time.Now).
	Now func() time.Time
	// Pinned, when set, says whether the TLS policy accepted the last
	// certificate on a pin (which replaces the chain and name checks), so
	// that the certificate step says which check passed.
	Pinned func() bool
	// Report, when set, is called with each step as it ends, in order
	// (from Test's goroutine).
	Report func(StepResult)
}

// Test is the connection test (`camftpd check`, POST /check): it walks
// every step an upload takes on cfg's server, with the Client's own code
// (resolve, dial through the guard, TLS policy, login, data connections,
// STOR, REST, the hash, RNFR/RNTO), on a connection of its own, and
// reports each step (TestSteps) as ok, warn, fail or skipped. After the
// first failure the remaining steps are skipped, except StepDelete: the
// test file is written under a name no capture has (".camftpd-check-<random>.part",
// renamed to "camftpd-check-<random><ext>") and deleted, after a failure
// midway too, on a new connection when the first one broke; StepDelete
// fails when something is left. ctx bounds the whole test, cfg's timeouts
// each step.
func Test(ctx context.Context, cfg Config, o TestOptions) []StepResult {
	if o.CertWarnDays == 0 {
		o.CertWarnDays = certWarnDays
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	hl := &handshakeLog{}
	if cfg.TLS != nil {
		cfg.TLS = hl.wrap(cfg.TLS)
	}
	t := &connTest{c: New(cfg), o: o, hl: hl}
	defer t.c.Close()
	t.run(ctx)
	return t.results
}

// handshakeLog records every handshake of the test's connections (the
// control connection's first, then each data connection's) as
// VerifyConnection sees it, with the policy's verdict.
type handshakeLog struct {
	mu  sync.Mutex
	css []tls.ConnectionState
	err []error
	// refused13: a TLS 1.3 handshake on ChaCha20 was refused (mode
	// recommended); the handshake of dial's retry at TLS 1.2 replaced it.
	refused13 bool
}

// wrap returns a clone of cfg whose VerifyConnection records into h.
func (h *handshakeLog) wrap(cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	inner := cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		var err error
		if inner != nil {
			err = inner(cs)
		}
		h.mu.Lock()
		if n := len(h.err); n > 0 && errors.Is(h.err[n-1], tlspolicy.ErrTLS13NotNIST) {
			h.css, h.err, h.refused13 = h.css[:n-1], h.err[:n-1], true
		}
		h.css, h.err = append(h.css, cs), append(h.err, err)
		h.mu.Unlock()
		return err
	}
	return cfg
}

// get returns handshake i (0: the control connection's) and its verdict.
func (h *handshakeLog) get(i int) (cs tls.ConnectionState, err error, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i < 0 || i >= len(h.css) {
		return tls.ConnectionState{}, nil, false
	}
	return h.css[i], h.err[i], true
}

func (h *handshakeLog) refused13Seen() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.refused13
}

func (h *handshakeLog) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.css)
}

// connTest is one run of Test. Its file steps are in conntest_files.go.
type connTest struct {
	ctx     context.Context // the whole test's
	c       *Client
	o       TestOptions
	hl      *handshakeLog
	results []StepResult
	failed  string // the first failed step

	s *session
	u *upload // the test file's upload (conntest_files.go)
	// left: remote files the test created that may still be there.
	left []string
}

// add records a step and reports it.
func (t *connTest) add(r StepResult) {
	if r.Verdict == StepFail && t.failed == "" {
		t.failed = r.Step
	}
	t.results = append(t.results, r)
	if t.o.Report != nil {
		t.o.Report(r)
	}
}

func (t *connTest) ok(step, detail string) { t.add(StepResult{Step: step, Detail: detail}) }

func (t *connTest) warn(step, detail, fix string) {
	t.add(StepResult{Step: step, Verdict: StepWarn, Detail: detail, Fix: fix})
}

func (t *connTest) skip(step, why string) {
	t.add(StepResult{Step: step, Verdict: StepSkipped, Detail: why})
}

// fail records a failed step: err's message is the detail, or, when the
// test's ctx ended, that it did.
func (t *connTest) fail(step string, err error, fix string) {
	if t.ctx != nil && t.ctx.Err() != nil {
		err = &Error{Class: Transient, Err: t.ctx.Err(), Msg: "the test was canceled or ran out of time (" + t.ctx.Err().Error() + ")"}
		fix = "run the test again; give it more time if the server is slow"
	}
	e := classify("", err)
	t.add(StepResult{Step: step, Verdict: StepFail, Detail: e.Error(), Fix: fix, Err: e})
}

// skipFrom skips every step from step on (up to StepDelete, excluded)
// that was not reported yet.
func (t *connTest) skipFrom(step string) {
	on := false
	for _, s := range TestSteps() {
		if s == step {
			on = true
		}
		if on && s != StepDelete && !t.reported(s) {
			t.skip(s, "not run: the "+t.failed+" step failed")
		}
	}
}

func (t *connTest) reported(step string) bool {
	for _, r := range t.results {
		if r.Step == step {
			return true
		}
	}
	return false
}

// run walks the steps.
func (t *connTest) run(ctx context.Context) {
	t.ctx = ctx
	if t.c.cfgErr != nil {
		t.fail(StepConfig, t.c.cfgErr, "fix the server's settings in the configuration")
		t.skipFrom(StepResolve)
		t.skip(StepDelete, "not run: the configuration was refused")
		return
	}
	rctx, cancel := context.WithTimeout(ctx, t.c.cfg.ConnectTimeout)
	ip, err := t.c.resolve(rctx)
	cancel()
	if err != nil {
		t.fail(StepResolve, err, "check the host name and the camera's network and DNS settings")
		t.skipFrom(StepTCP)
		t.skip(StepDelete, "not run: nothing was sent")
		return
	}
	if ip == strings.Trim(t.c.cfg.Host, "[]") {
		t.ok(StepResolve, ip+" (an address: nothing to resolve)")
	} else {
		t.ok(StepResolve, t.c.cfg.Host+" is "+ip)
	}
	tr := &dialTrace{}
	s, err := t.c.dial(withDialTrace(ctx, tr))
	t.connectSteps(tr, err)
	if err != nil {
		t.skipFrom(StepMkdir)
		t.skip(StepDelete, "not run: nothing was sent")
		return
	}
	t.s = s
	t.files(ctx)
	t.cleanup(ctx)
	t.s.close()
}

// connectSteps reports the steps of dial (TCP to PBSZ/PROT P) from what
// the trace and the handshake log saw and the error dial returned.
func (t *connTest) connectSteps(tr *dialTrace, err error) {
	addr, plain := tr.connected()
	if addr == "" {
		t.fail(StepTCP, err, "check the host and port; is the FTP server running and reachable from the camera (firewall)?")
		t.skipFrom(StepGreeting)
		return
	}
	t.ok(StepTCP, "connected to "+addr)
	n := t.hl.count()
	switch {
	case err != nil && n == 0 && plain == 0:
		t.fail(StepGreeting, err, "the server did not greet with 220: check the port (explicit FTPS on the FTP port; implicit FTPS on 990 is not supported) and the server's connection limits")
		t.skipFrom(StepAuthTLS)
		return
	case err != nil && n == 0 && codeOf(err) != 0:
		t.ok(StepGreeting, "220")
		t.fail(StepAuthTLS, err, "enable explicit FTPS (AUTH TLS) on the server")
		t.skipFrom(StepHandshake)
		return
	}
	t.ok(StepGreeting, "220")
	if t.c.tls == nil {
		t.warn(StepAuthTLS, "plain FTP (secure = false): the password and every file cross the network unencrypted",
			"set secure = true and enable explicit FTPS on the server")
		t.skip(StepHandshake, "plain FTP")
		t.skip(StepCertificate, "plain FTP")
	} else {
		t.ok(StepAuthTLS, "234")
		if !t.tlsSteps(err) {
			t.skipFrom(StepCertificate)
			return
		}
	}
	t.loginSteps(err)
}

// tlsSteps reports the control connection's handshake and certificate;
// false when one failed.
func (t *connTest) tlsSteps(dialErr error) bool {
	cs, verr, ok := t.hl.get(0)
	if !ok {
		t.fail(StepHandshake, dialErr, "enable TLS 1.2 or 1.3 with a recommended suite on the server (the suite table below shows what it accepts)")
		return false
	}
	var pe *tlspolicy.Error
	if verr != nil && errors.As(verr, &pe) && pe.Kind == tlspolicy.KindPolicy {
		t.fail(StepHandshake, verr, "enable TLS 1.2 or 1.3 with a recommended suite on the server")
		return false
	}
	su, _ := tlspolicy.Lookup(cs.CipherSuite)
	detail := fmt.Sprintf("%s, %s (%s)", tlspolicy.VersionName(cs.Version), su.Name, su.Class)
	if t.c.viaEngine.Load() { // the openssl build's fallback (engine.go)
		detail += " through " + Engine().Name()
	}
	switch {
	case su.Class == tlspolicy.Deprecated:
		t.warn(StepHandshake, detail+": uploads work, but the spec recommends another suite", "enable the recommended suites on the server (see the suite table)")
	case su.Class == tlspolicy.NonNIST:
		t.warn(StepHandshake, detail+": uploads work, but NIST SP 800-52r2 does not list this TLS 1.3 suite", "make the server choose TLS_AES_256_GCM_SHA384 or TLS_AES_128_GCM_SHA256 in TLS 1.3")
	case t.hl.refused13Seen():
		t.warn(StepHandshake, detail+": the server chose TLS_CHACHA20_POLY1305_SHA256 in TLS 1.3, refused in mode recommended; uploads use TLS 1.2", "make the server choose TLS_AES_256_GCM_SHA384 or TLS_AES_128_GCM_SHA256 in TLS 1.3")
	default:
		t.ok(StepHandshake, detail)
	}
	if verr != nil {
		t.fail(StepCertificate, verr, "import the server's CA (ca_files) or pin its certificate, use the name in the certificate as host, or renew it")
		return false
	}
	t.certificate(cs)
	return true
}

// certificate reports the verified certificate: its names and validity,
// a warning when it expires within CertWarnDays.
func (t *connTest) certificate(cs tls.ConnectionState) {
	if len(cs.PeerCertificates) == 0 {
		t.ok(StepCertificate, "verified (no certificate shown)")
		return
	}
	cert := cs.PeerCertificates[0]
	left := cert.NotAfter.Sub(t.o.Now())
	days := int(left.Hours() / 24)
	_, kp := tlspolicy.CertPins(cert)
	how := "verified (chain, name, pins)"
	if t.o.Pinned != nil && t.o.Pinned() {
		how = "accepted on its pin (chain and name not checked)"
	}
	detail := fmt.Sprintf("%s: subject %q, issuer %q, valid until %s (%d days), key pin %s",
		how, oneLine(cert.Subject.String()), oneLine(cert.Issuer.String()), cert.NotAfter.UTC().Format(time.DateOnly), days, kp)
	if t.o.CertWarnDays > 0 && left < time.Duration(t.o.CertWarnDays)*24*time.Hour {
		t.warn(StepCertificate, fmt.Sprintf("expires in %d days (%s, warning from %d days): ", days,
			cert.NotAfter.UTC().Format(time.DateOnly), t.o.CertWarnDays)+detail,
			"renew the server's certificate before it expires: uploads stop then")
		return
	}
	t.ok(StepCertificate, detail)
}

// loginSteps reports USER/PASS and PBSZ/PROT P from dial's error (goftp
// sends them in one call: a reply code tells which one refused).
func (t *connTest) loginSteps(err error) {
	if err == nil {
		t.ok(StepLogin, "logged in as "+t.c.cfg.User)
		if t.c.tls == nil {
			t.skip(StepProt, "plain FTP")
		} else {
			t.ok(StepProt, "PBSZ 0, PROT P: data connections encrypted")
		}
		return
	}
	switch code := codeOf(err); {
	case code == 536 || code == 534 || code == 533 || code == 431 || code == 503:
		t.ok(StepLogin, "logged in as "+t.c.cfg.User)
		err = &Error{Class: ClassOf(err), Code: code, Err: err, Msg: "the server refused PBSZ 0 / PROT P (server said: " + serverText(err) + ")"}
		t.fail(StepProt, err, "the server refused encrypted data connections (PBSZ 0 / PROT P): enable TLS for data connections on the server (vsftpd force_local_data_ssl, ProFTPD TLSRequired on)")
	case ClassOf(err) == Auth || code == 530 || code == 331 || code == 332:
		t.fail(StepLogin, err, "check the user name and password (password_file) of this server")
		t.skip(StepProt, "not run: the login step failed")
	default:
		t.fail(StepLogin, err, "the server refused the login or PBSZ/PROT P: check the user, the password and the server's log")
		t.skip(StepProt, "not run: the login step failed")
	}
}
