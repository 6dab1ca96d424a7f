package tlspolicy

import (
	"crypto/tls"
	"errors"
	"fmt"
)

// ErrTLS13NotNIST is the cause (errors.Is) of the refusal of a TLS 1.3
// handshake that ended on TLS_CHACHA20_POLY1305_SHA256 in mode
// recommended. The Policy then caps its Configs at TLS 1.2: a caller that
// sees it may connect again at once with a new Config (transfer does, once).
var ErrTLS13NotNIST = errors.New("TLS 1.3 suite not listed by NIST SP 800-52r2")

// TLS13Refused reports whether this Policy has refused a TLS 1.3
// handshake on ChaCha20 (mode recommended), and so caps its Configs at TLS
// 1.2 from then on, for the Policy's lifetime (until a restart or reload).
func (p *Policy) TLS13Refused() bool { return p.tls13Refused.Load() }

// maxVersionNow is the highest version Config offers: Options' (TLS 1.3
// unless MaxTLS12), or TLS 1.2 once the server chose ChaCha20 in mode
// recommended.
func (p *Policy) maxVersionNow() uint16 {
	if p.tls13Refused.Load() {
		return tls.VersionTLS12
	}
	return p.maxVersion
}

// checkTLS13 judges a TLS 1.3 suite: AES-GCM passes; ChaCha20 passes in
// mode compatible (Policy.warning warns) and is refused in mode
// recommended, which caps the Policy at TLS 1.2.
func (p *Policy) checkTLS13(s Suite, listed bool) error {
	host := p.serverName
	if !listed || !isTLS13(s.ID) || (s.Class != Recommended && s.Class != NonNIST) {
		return policyErr(nil, fmt.Sprintf("server %s negotiated %s in TLS 1.3, which is not a TLS 1.3 suite this policy knows: refused", host, s.Name))
	}
	if s.Class == Recommended || p.opts.Mode != RecommendedOnly {
		return nil
	}
	if !p.tls13Refused.Swap(true) {
		p.log.Warn("tls: server chose a TLS 1.3 suite outside NIST SP 800-52r2; refused, TLS 1.2 from now on", "server", host, "suite", s.Name,
			"recommendation", tls13Fix)
	}
	return policyErr(ErrTLS13NotNIST, fmt.Sprintf("server %s chose %s in TLS 1.3, which NIST SP 800-52r2 does not list: refused in mode recommended before any FTP command; this device uses TLS 1.2 with this server from now on; to keep TLS 1.3, %s, or set the TLS mode to compatible",
		host, s.Name, tls13Fix))
}

// tls13Fix says how to make a server choose an AES-GCM suite in TLS 1.3.
var tls13Fix = "make the server choose " + recommendedTLS13() +
	" (OpenSSL-based servers: Ciphersuites = TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256 in the server's openssl.cnf)"

// warning13 is the warning of a TLS 1.3 handshake on ChaCha20 (mode
// compatible), or of a TLS 1.2 handshake of a Policy capped by one (mode
// recommended); "" otherwise.
func (p *Policy) warning13(version uint16, s Suite) string {
	switch {
	case version == tls.VersionTLS13 && s.Class == NonNIST:
		return fmt.Sprintf("server %s negotiated %s in TLS 1.3, which NIST SP 800-52r2 does not list: %s; or set the TLS mode to recommended (TLS 1.2 with the recommended suites, then)",
			p.serverName, s.Name, tls13Fix)
	case version == tls.VersionTLS12 && p.maxVersion == tls.VersionTLS13 && p.tls13Refused.Load():
		return fmt.Sprintf("server %s chose TLS_CHACHA20_POLY1305_SHA256 in TLS 1.3, refused in mode recommended: using TLS 1.2 with this server; to get TLS 1.3 back, %s, then restart or reload",
			p.serverName, tls13Fix)
	}
	return ""
}

// warningFor is Negotiated.Warning for suite s negotiated in version:
// the deprecated suite's warning, or warning13's.
func (p *Policy) warningFor(version uint16, s Suite) string {
	if w := p.warning(s); w != "" {
		return w
	}
	return p.warning13(version, s)
}

// warn13Title is the log message of warning13's two cases.
func warn13Title(c Class) string {
	if c == NonNIST {
		return "TLS 1.3 suite outside NIST SP 800-52r2 negotiated"
	}
	return "using TLS 1.2: the server chose ChaCha20 in TLS 1.3 (refused in mode recommended)"
}

func isTLS13(id uint16) bool {
	for _, t := range tls13 {
		if t.ID == id {
			return true
		}
	}
	return false
}
