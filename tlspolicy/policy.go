package tlspolicy

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camftpd/camftpd/internal/wallclock"
)

// Options configures a Policy. The zero value (with a ServerName) means
// compatible mode, TLS 1.2-1.3, system roots, no pins.
type Options struct {
	Mode       Mode
	ServerName string   // host name (or IP) to verify the certificate against; required
	MaxTLS12   bool     // cap at TLS 1.2 (TLS 1.3 is on by default)
	CAPEM      [][]byte // imported CA (or self-signed server) certificates, PEM or DER; nil means system roots
	Pins       []string // SHA-256 pins of the server certificate or its public key (see ParsePin); one must match, and it replaces the chain and name checks
	// Trust is the trust store of `camftpd trust` (pins and CAs per host,
	// looked up by ServerName); nil: none.
	Trust *TrustStore
	// CertWarnDays: a server certificate that expires within this many
	// days is a warning (Negotiated.CertWarning, logged once per
	// certificate). 0 means DefaultCertWarnDays; negative: no warning.
	CertWarnDays int
	Now          func() time.Time
	Logger       *slog.Logger
	// OnNegotiated, if set, is called after every accepted handshake (resumed
	// ones too), from inside the handshake: keep it short and non-blocking.
	OnNegotiated func(Negotiated)
	// Timeout bounds each network step of Check (dial, each reply, each
	// handshake); 0 means 10 s. The ctx deadline, if sooner, wins.
	Timeout time.Duration
	// Engine is the openssl build's second TLS engine (see Engine); nil in
	// the default build.
	Engine Engine
}

// Negotiated describes one handshake as seen by VerifyConnection.
type Negotiated struct {
	Version   uint16
	Suite     uint16
	SuiteName string
	Class     Class
	Resumed   bool
	Warning   string // non-empty for a deprecated suite: what to do about it
	// Pinned: the certificate was accepted on a pin (config or trust
	// store), not on its chain and name.
	Pinned bool
	// CertNotAfter and CertDaysLeft are the server certificate's expiry;
	// CertWarning is non-empty when it expires within CertWarnDays.
	CertNotAfter time.Time
	CertDaysLeft int
	CertWarning  string
}

// String is e.g. "TLS 1.2 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (recommended)".
func (n Negotiated) String() string {
	s := VersionName(n.Version) + " " + n.SuiteName + " (" + n.Class.String() + ")"
	if n.Resumed {
		s += " resumed"
	}
	return s
}

// Policy builds tls.Configs and records what was negotiated. It is safe for
// concurrent use; all Configs of one Policy share one ClientSessionCache, so
// FTP data connections resume the control connection's session (vsftpd and
// ProFTPD require it) while one control connection is open at a time
// (transfer gives each control connection a cache of its own: see doc.go).
type Policy struct {
	opts       Options
	serverName string
	suites     []uint16
	maxVersion uint16
	roots      *x509.CertPool // nil: system roots
	pins       [][]byte
	cache      tls.ClientSessionCache
	now        func() time.Time
	log        *slog.Logger
	verified   verified // the last chain verifyCert passed
	// tls13Refused: the server chose ChaCha20 in TLS 1.3 in mode
	// recommended; Configs are capped at TLS 1.2 (tls13.go).
	tls13Refused atomic.Bool

	mu       sync.Mutex
	last     Negotiated
	has      bool
	warned   map[uint16]time.Time
	certWarn map[[32]byte]bool // certificates whose expiry warning was logged
}

// New validates opts and returns a Policy.
func New(opts Options) (*Policy, error) {
	p := &Policy{opts: opts, now: opts.Now, log: opts.Logger, warned: map[uint16]time.Time{}, certWarn: map[[32]byte]bool{}}
	if p.opts.CertWarnDays == 0 {
		p.opts.CertWarnDays = DefaultCertWarnDays
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	switch opts.Mode {
	case "":
		p.opts.Mode = Compatible
	case Compatible, RecommendedOnly:
	default:
		return nil, policyErr(nil, fmt.Sprintf("TLS mode %q is unknown: use %q (default) or %q", clip(string(opts.Mode)), Compatible, RecommendedOnly))
	}
	name := strings.TrimSpace(opts.ServerName)
	if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") {
		name = name[1 : len(name)-1]
	}
	if name == "" {
		return nil, policyErr(nil, "server name is empty: set the server's host name (the certificate is checked against it)")
	}
	if _, _, err := net.SplitHostPort(name); err == nil {
		return nil, policyErr(nil, fmt.Sprintf("server name %q includes a port: give the host name only", clip(name)))
	}
	p.serverName = name
	p.suites = allowed(p.opts.Mode)
	p.maxVersion = tls.VersionTLS13
	if opts.MaxTLS12 {
		p.maxVersion = tls.VersionTLS12
	}
	if len(opts.CAPEM) > 0 {
		p.roots = x509.NewCertPool()
		for i, data := range opts.CAPEM {
			certs, err := parseCAPEM(data)
			if err != nil {
				return nil, certErr(err, fmt.Sprintf("imported CA certificate %d: %v", i+1, err))
			}
			for _, c := range certs {
				p.roots.AddCert(c)
			}
		}
	}
	for _, s := range opts.Pins {
		d, err := ParsePin(s)
		if err != nil {
			return nil, err
		}
		p.pins = append(p.pins, d)
	}
	p.cache = tls.NewLRUClientSessionCache(32)
	return p, nil
}

// Mode returns the policy's mode (Compatible when Options.Mode was empty).
func (p *Policy) Mode() Mode { return p.opts.Mode }

// ServerName returns the name certificates are checked against.
func (p *Policy) ServerName() string { return p.serverName }

// Config returns a new client *tls.Config for one connection (control or
// data): ServerName, the mode's suites only, TLS 1.2 minimum (and maximum
// once the server chose ChaCha20 in TLS 1.3 in mode recommended), the Policy's
// shared ClientSessionCache and the VerifyConnection hook. A caller may
// replace the session cache or wrap the hook (transfer does both) but must
// keep the versions, the suites and the verification.
//
// Certificate verification is done by VerifyConnection, not by crypto/tls
// (hence InsecureSkipVerify): it runs on every handshake, resumed ones too,
// before any FTP command is sent, and gives errors that say what to do.
func (p *Policy) Config() *tls.Config {
	return &tls.Config{
		ServerName:         p.serverName,
		MinVersion:         tls.VersionTLS12,
		MaxVersion:         p.maxVersionNow(),
		CipherSuites:       slices.Clone(p.suites),
		ClientSessionCache: p.cache,
		RootCAs:            p.roots,
		Time:               p.now,
		InsecureSkipVerify: true, // verified by VerifyConnection below, on every handshake
		VerifyConnection:   p.VerifyConnection,
	}
}

// Explain is Explain(err, p.Config()): it names the refused suites or
// versions when the server ended the handshake.
func (p *Policy) Explain(err error) error { return Explain(err, p.Config()) }

// Last returns the most recent accepted negotiation, if any.
func (p *Policy) Last() (Negotiated, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last, p.has
}

// VerifyConnection checks one handshake: version, suite, certificate chain,
// host name, validity against the device clock, and pins. It is the hook
// Config installs; it returns an *Error. An accepted deprecated suite is
// logged as a warning at most once an hour per suite (data connections
// repeat it constantly); Negotiated.Warning is set every time. A server
// certificate that expires within CertWarnDays is logged once per
// certificate; Negotiated.CertWarning is set every time.
func (p *Policy) VerifyConnection(cs tls.ConnectionState) error {
	s, err := p.checkSuite(cs)
	if err != nil {
		return err
	}
	pinned, err := p.judgeCert(cs.PeerCertificates)
	if err != nil {
		return err
	}
	n := Negotiated{Version: cs.Version, Suite: s.ID, SuiteName: s.Name, Class: s.Class, Resumed: cs.DidResume, Pinned: pinned}
	n.Warning = p.warningFor(cs.Version, s)
	now := p.now()
	leaf := cs.PeerCertificates[0]
	ex := CertExpiry(leaf, now, p.opts.CertWarnDays)
	n.CertNotAfter, n.CertDaysLeft = ex.NotAfter, ex.DaysLeft
	if ex.Class == ExpiryWarn {
		n.CertWarning = "server " + p.serverName + " " + ex.Msg
	}
	p.mu.Lock()
	p.last, p.has = n, true
	logIt, logCert := false, false
	if n.Warning != "" {
		if t, ok := p.warned[n.Suite]; !ok || now.Sub(t) >= time.Hour || now.Before(t) {
			p.warned[n.Suite] = now
			logIt = true
		}
	}
	if n.CertWarning != "" {
		sum := sha256.Sum256(leaf.Raw)
		if logCert = !p.certWarn[sum]; logCert {
			if len(p.certWarn) >= 64 {
				clear(p.certWarn)
			}
			p.certWarn[sum] = true
		}
	}
	p.mu.Unlock()
	if logIt && n.Class == Deprecated {
		p.log.Warn("tls: deprecated cipher suite negotiated", "suite", n.SuiteName, "server", p.serverName,
			"version", VersionName(n.Version), "recommendation", "enable only the recommended suites on the server: "+recommendedNames())
	} else if logIt {
		p.log.Warn("tls: "+warn13Title(n.Class), "suite", n.SuiteName, "server", p.serverName,
			"version", VersionName(n.Version), "recommendation", tls13Fix)
	}
	if logCert {
		p.log.Warn("tls: server certificate expires soon", "server", p.serverName, "not_after", stamp(ex.NotAfter),
			"days_left", ex.DaysLeft, "warning", n.CertWarning)
	}
	if p.opts.OnNegotiated != nil {
		p.opts.OnNegotiated(n)
	}
	return nil
}

// checkSuite checks the negotiated version and suite against the policy.
func (p *Policy) checkSuite(cs tls.ConnectionState) (Suite, error) {
	host := p.serverName
	if cs.Version < tls.VersionTLS12 || cs.Version > p.maxVersion {
		return Suite{}, policyErr(nil, fmt.Sprintf("server %s negotiated %s, outside this policy (TLS 1.2 to %s): enable TLS 1.2 or 1.3 on the server", host, VersionName(cs.Version), VersionName(p.maxVersion)))
	}
	s, listed := Lookup(cs.CipherSuite)
	switch {
	case cs.Version == tls.VersionTLS13:
		if err := p.checkTLS13(s, listed); err != nil {
			return Suite{}, err
		}
	case !listed || s.Class == NotAllowed || slices.ContainsFunc(tls13, func(t Suite) bool { return t.ID == s.ID }):
		return Suite{}, policyErr(nil, fmt.Sprintf("server %s negotiated %s, which is not in the camera's list of suites: refused; enable %s on the server", host, s.Name, recommendedNames()))
	case !p.usable(s):
		return Suite{}, policyErr(nil, fmt.Sprintf("server %s negotiated %s, which this build cannot use (crypto/tls lacks it; the openssl build has it): enable %s on the server", host, s.Name, recommendedNames()))
	case !p.allowsSuite(s):
		return Suite{}, policyErr(nil, fmt.Sprintf("server %s negotiated %s (%s), not allowed in mode %s: enable %s on the server, or set the TLS mode to compatible", host, s.Name, s.Class, p.opts.Mode, recommendedNames()))
	}
	return s, nil
}

// warning is the text shown in status when s is deprecated ("" otherwise).
func (p *Policy) warning(s Suite) string {
	if s.Class != Deprecated {
		return ""
	}
	return fmt.Sprintf("server %s negotiated deprecated suite %s: enable only the recommended suites on the server (%s) and disable the deprecated ones", p.serverName, s.Name, recommendedNames())
}

// verifyCert is judgeCert without saying how the certificate was accepted.
func (p *Policy) verifyCert(certs []*x509.Certificate) error {
	_, err := p.judgeCert(certs)
	return err
}

// judgeCert judges the server's certificates and reports whether they
// were accepted on a pin. With pins (Options.Pins and the trust store's
// for this host), the leaf must match one, and a match replaces the chain
// and name checks: the validity dates are still checked. Without pins, a
// leaf that is itself a CA certificate imported for this host (a
// self-signed server certificate given to `camftpd trust -import`) is
// accepted the same way; anything else needs a chain to the roots (the
// imported CA files, else the system roots, then the trust store's CAs of
// this host) that names the host.
func (p *Policy) judgeCert(certs []*x509.Certificate) (bool, error) {
	host := p.serverName
	if len(certs) == 0 {
		return false, certErr(nil, fmt.Sprintf("server %s sent no certificate: configure a certificate on the server", host))
	}
	leaf := certs[0]
	now := p.now()
	// A clock before wallclock.SaneAfter has not been set (cameras boot in
	// 1970): certificates are not judged against it.
	plausible := wallclock.Sane(now)
	ht, gen, terr := p.opts.Trust.lookup(host)
	pinned, err := p.checkPins(leaf, ht)
	if err == nil && !pinned && ht != nil && len(ht.self) > 0 {
		sum := sha256.Sum256(leaf.Raw)
		pinned = matchesAny(sum[:], ht.self)
	}
	if err == nil && pinned {
		err = p.checkDates(leaf, now, plausible)
	} else if err == nil {
		err = p.verifyChainCached(certs, now, plausible, ht, gen)
	}
	if err != nil {
		return false, withTrustNote(err, p.opts.Trust, terr)
	}
	if !plausible {
		return false, clockErr(now, leaf)
	}
	return pinned, nil
}

// verifyChainCached is verifyChain, skipped when certs are the chain that
// passed last (for the same trust store generation) and now is inside
// its validity.
func (p *Policy) verifyChainCached(certs []*x509.Certificate, now time.Time, plausible bool, ht *hostTrust, gen uint64) error {
	if plausible && p.verified.hit(certs, now, gen) {
		return nil
	}
	chain, err := p.verifyChain(certs, now, plausible, p.roots)
	var unk x509.UnknownAuthorityError
	if err != nil && ht != nil && ht.roots != nil && errors.As(err, &unk) {
		chain, err = p.verifyChain(certs, now, plausible, ht.roots)
	}
	if err != nil {
		return p.certError(err, certs[0], now)
	}
	if plausible {
		p.verified.remember(certs, chain, gen)
	}
	return nil
}

// checkDates checks a pinned leaf's validity at now (with a plausible
// clock: an unset one is the caller's clock error).
func (p *Policy) checkDates(leaf *x509.Certificate, now time.Time, plausible bool) error {
	if !plausible || (!now.Before(leaf.NotBefore) && !now.After(leaf.NotAfter)) {
		return nil
	}
	return p.certError(x509.CertificateInvalidError{Cert: leaf, Reason: x509.Expired}, leaf, now)
}

// withTrustNote adds to a refusal that the trust store could not be read.
func withTrustNote(err error, ts *TrustStore, terr error) error {
	var pe *Error
	if terr == nil || !errors.As(err, &pe) || pe.Kind != KindCertificate {
		return err
	}
	return &Error{Kind: pe.Kind, Err: pe.Err, Msg: pe.Msg + fmt.Sprintf("; note: the trust store %s cannot be read (%v), so nothing in it is trusted: move it away and run camftpd trust again", ts.Path(), terr)}
}

// verifyChain builds and checks certs' chain to the policy's roots for its
// server name, at now (at a time inside the chain's validity when the
// clock is not plausible); it returns the chain built.
func (p *Policy) verifyChain(certs []*x509.Certificate, now time.Time, plausible bool, roots *x509.CertPool) ([]*x509.Certificate, error) {
	leaf, at := certs[0], now
	if !plausible {
		// The clock is unset: check everything else at a time the chain is
		// valid, so an unknown CA or a wrong name is still reported as such.
		at = validAt(certs)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		DNSName:       p.serverName,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, err
	}
	return chains[0], nil
}

// checkPins reports whether leaf matches a pin (Options.Pins or the
// trust store's for this host), and refuses a leaf that matches none of
// them when there are any.
func (p *Policy) checkPins(leaf *x509.Certificate, ht *hostTrust) (bool, error) {
	n := len(p.pins)
	if ht != nil {
		n += len(ht.pins)
	}
	if n == 0 {
		return false, nil
	}
	cs := sha256.Sum256(leaf.Raw)
	ks := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	if matchesAny(cs[:], p.pins) || matchesAny(ks[:], p.pins) {
		return true, nil
	}
	if ht != nil && (matchesAny(cs[:], ht.pins) || matchesAny(ks[:], ht.pins)) {
		return true, nil
	}
	return false, certErr(nil, fmt.Sprintf("server %s certificate matches none of the %d configured pins (its certificate pin is %s, its public key pin %s): if the server's certificate was replaced on purpose, update the pin (or run camftpd trust -server again); otherwise do not connect, the connection may be intercepted",
		p.serverName, n, FormatPin(cs[:]), FormatPin(ks[:])))
}

func clockErr(now time.Time, c *x509.Certificate) *Error {
	return &Error{Kind: KindClock, Msg: fmt.Sprintf("device clock is %s, before the server certificate's validity (from %s): set the clock / wait for NTP, then retry",
		now.UTC().Format(time.RFC3339), c.NotBefore.UTC().Format(time.RFC3339))}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// validAt returns a time inside every certificate's validity, or the
// leaf's NotBefore if there is none.
func validAt(certs []*x509.Certificate) time.Time {
	from, to := certs[0].NotBefore, certs[0].NotAfter
	for _, c := range certs[1:] {
		if c.NotBefore.After(from) {
			from = c.NotBefore
		}
		if c.NotAfter.Before(to) {
			to = c.NotAfter
		}
	}
	if from.After(to) {
		return certs[0].NotBefore
	}
	return from
}

func (p *Policy) certError(err error, leaf *x509.Certificate, now time.Time) *Error {
	host := p.serverName
	var inv x509.CertificateInvalidError
	var unk x509.UnknownAuthorityError
	var hn x509.HostnameError
	switch {
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		c := inv.Cert
		if c == nil {
			c = leaf
		}
		which := "server " + host + " certificate"
		if c != leaf {
			which = fmt.Sprintf("server %s certificate chain (%q)", host, c.Subject.String())
		}
		if now.Before(c.NotBefore) {
			// The clock is plausible (verifyCert checked): a certificate
			// error, not a clock wait, which would retry at once.
			return certErr(err, fmt.Sprintf("%s is not valid before %s (valid to %s; device clock %s, %s earlier): fix the device clock or the certificate's start date",
				which, stamp(c.NotBefore), stamp(c.NotAfter), stamp(now), c.NotBefore.Sub(now).Round(time.Second)))
		}
		return certErr(err, fmt.Sprintf("%s expired on %s (valid from %s, device clock %s): renew the certificate on the server",
			which, stamp(c.NotAfter), stamp(c.NotBefore), stamp(now)))
	case errors.As(err, &hn):
		names := certNames(hn.Certificate)
		if names == "" {
			names = "no host names at all (only a subject " + fmt.Sprintf("%q", hn.Certificate.Subject.String()) + ", which is not checked)"
		}
		return certErr(err, fmt.Sprintf("server certificate is for %s, not for %q: set the server address to a name in the certificate, or reissue the certificate for %q, or pin this certificate as it is with camftpd trust", names, host, host))
	case errors.As(err, &unk):
		issuer := leaf.Issuer.String()
		what := "import the server's CA certificate (or its self-signed certificate) into the camera (camftpd trust -import FILE), or pin the certificate the server presents (camftpd trust)"
		if p.roots == nil {
			what = "no certificate is imported and the system roots do not know it: " + what
		}
		return certErr(err, fmt.Sprintf("server %s certificate is signed by an unknown authority (issuer %q): %s, then retry; if you did, you may not be talking to your server", host, issuer, what))
	case errors.As(err, &inv):
		return certErr(err, fmt.Sprintf("server %s certificate is not acceptable: %v: fix the server's certificate", host, err))
	}
	return certErr(err, fmt.Sprintf("server %s certificate is not valid: %v: fix the server's certificate or import the right CA", host, err))
}

func certNames(c *x509.Certificate) string {
	var n []string
	for _, d := range c.DNSNames {
		n = append(n, fmt.Sprintf("%q", d))
	}
	for _, ip := range c.IPAddresses {
		n = append(n, fmt.Sprintf("%q", ip.String()))
	}
	if len(n) > 6 {
		n = append(n[:6], "...")
	}
	return strings.Join(n, ", ")
}
