package tlspolicy

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
)

// Engine is a TLS engine other than crypto/tls: the openssl build's
// OpenSSL (transfer.Engine), for the 7 listed suites crypto/tls lacks (the
// DHE suites and AES-256-CBC-SHA256/SHA384). The default build has none.
//
// A Policy whose Options.Engine is set allows those 7 too (each classed as
// the table says: all 7 are deprecated, so mode recommended still refuses
// them); VerifyConnection judges a handshake made by either engine with
// the same rules and messages; Check probes the 7 with the engine and
// reports all 13 as usable. A Policy without an Engine refuses the 7 and
// names them as suites this device cannot negotiate.
type Engine interface {
	// Name is the engine and its version, for reports: "OpenSSL 3.0.20".
	Name() string
	// Handshake runs one client TLS handshake on conn (after AUTH TLS was
	// accepted) offering suites (TLS 1.2 ids of the table; Check offers one
	// alone) and, when maxVersion is TLS 1.3, the engine's TLS 1.3 suites;
	// it returns what was negotiated without verifying the certificate
	// (the caller runs VerifyConnection) and sends close_notify before it
	// returns. The caller closes conn. A server that accepts none of what
	// was offered is an error for which NoCommonSuite is true.
	Handshake(ctx context.Context, conn *net.TCPConn, serverName string, suites []uint16, maxVersion uint16) (tls.ConnectionState, error)
	// NoCommonSuite reports whether err (from Handshake, or from any
	// handshake of the engine) means the server accepts none of the suites
	// offered.
	NoCommonSuite(err error) bool
}

// Engine returns Options.Engine (nil in the default build).
func (p *Policy) Engine() Engine { return p.opts.Engine }

// usable reports whether this Policy's device can negotiate s: crypto/tls
// implements it, or an Engine is set.
func (p *Policy) usable(s Suite) bool { return s.Implemented || p.opts.Engine != nil }

// allowsSuite reports whether a TLS 1.2 suite of the table may be
// negotiated under this Policy: its class is allowed in the mode, and one
// of the device's engines implements it.
func (p *Policy) allowsSuite(s Suite) bool {
	if !p.usable(s) {
		return false
	}
	return s.Class == Recommended || (p.opts.Mode != RecommendedOnly && s.Class == Deprecated)
}

// EngineSuites returns the TLS 1.2 suites an Engine offers under this
// Policy, in table order: every suite the mode allows, the 7 crypto/tls
// lacks included (nil without an Engine).
func (p *Policy) EngineSuites() []uint16 {
	if p.opts.Engine == nil {
		return nil
	}
	var ids []uint16
	for _, s := range table {
		if p.allowsSuite(s) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// EngineCiphers returns EngineSuites as an OpenSSL TLS 1.2 cipher list
// ("AES256-SHA256:..."), and the TLS 1.3 suites an Engine offers (the
// recommended AES-GCM ones only; ChaCha20 is not in NIST SP 800-52r2's
// list) as an OpenSSL ciphersuites string. tls13 is "" when the Policy is
// capped at TLS 1.2.
func (p *Policy) EngineCiphers() (tls12, tls13s string) {
	var n []string
	for _, id := range p.EngineSuites() {
		s, _ := Lookup(id)
		n = append(n, s.OpenSSL)
	}
	tls12 = strings.Join(n, ":")
	if p.maxVersionNow() >= tls.VersionTLS13 {
		tls13s = joinRecommended(tls13, func(s Suite) string { return s.OpenSSL }, ":")
	}
	return tls12, tls13s
}

// MaxVersion is the highest TLS version this Policy lets either engine
// offer now (see Config).
func (p *Policy) MaxVersion() uint16 { return p.maxVersionNow() }
