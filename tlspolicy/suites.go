package tlspolicy

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// Class is a suite's standing in the spec.
type Class int

const (
	NotAllowed  Class = iota // outside the spec's table: never negotiated
	Recommended              // the spec's 3 recommended suites, and TLS 1.3's two AES-GCM suites
	Deprecated               // the spec's 10 deprecated suites
	// NonNIST is TLS_CHACHA20_POLY1305_SHA256 (TLS 1.3 only), which NIST
	// SP 800-52r2 does not list: accepted with a warning in compatible
	// mode, refused in recommended mode (see doc.go, "TLS 1.3").
	NonNIST
)

// String returns "not allowed", "recommended", "deprecated" or "non-NIST".
func (c Class) String() string {
	switch c {
	case Recommended:
		return "recommended"
	case Deprecated:
		return "deprecated"
	case NonNIST:
		return "non-NIST"
	default:
		return "not allowed"
	}
}

// Mode selects which listed suites may be negotiated.
type Mode string

const (
	Compatible      Mode = "compatible"  // every implemented listed suite; deprecated and non-NIST ones warn (the spec's behaviour)
	RecommendedOnly Mode = "recommended" // only recommended suites (TLS 1.2's ECDHE AES-GCM, TLS 1.3's AES-GCM)
)

// Suite is one row of the spec's table.
type Suite struct {
	Name        string // IANA name, as in the spec
	ID          uint16 // IANA id
	Class       Class
	Implemented bool   // crypto/tls can negotiate it
	OpenSSL     string // OpenSSL's name, for server configs (vsftpd ssl_ciphers, ProFTPD TLSCipherSuite)
}

// table is the spec's list, in the spec's order. Implemented is true for
// exactly the 6 suites crypto/tls has; the test checks it against crypto/tls.
var table = []Suite{
	{"TLS_RSA_WITH_AES_256_CBC_SHA256", 0x003d, Deprecated, false, "AES256-SHA256"},
	{"TLS_RSA_WITH_AES_128_CBC_SHA256", 0x003c, Deprecated, true, "AES128-SHA256"},
	{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 0xc030, Recommended, true, "ECDHE-RSA-AES256-GCM-SHA384"},
	{"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", 0xc028, Deprecated, false, "ECDHE-RSA-AES256-SHA384"},
	{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 0xc02f, Recommended, true, "ECDHE-RSA-AES128-GCM-SHA256"},
	{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", 0xc027, Deprecated, true, "ECDHE-RSA-AES128-SHA256"},
	{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 0xc02c, Recommended, true, "ECDHE-ECDSA-AES256-GCM-SHA384"},
	{"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", 0xc024, Deprecated, false, "ECDHE-ECDSA-AES256-SHA384"},
	{"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", 0xc023, Deprecated, true, "ECDHE-ECDSA-AES128-SHA256"},
	{"TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", 0x009f, Deprecated, false, "DHE-RSA-AES256-GCM-SHA384"},
	{"TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", 0x006b, Deprecated, false, "DHE-RSA-AES256-SHA256"},
	{"TLS_DHE_RSA_WITH_AES_256_CBC_SHA", 0x0039, Deprecated, false, "DHE-RSA-AES256-SHA"},
	{"TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", 0x0067, Deprecated, false, "DHE-RSA-AES128-SHA256"},
}

// tls13 are the TLS 1.3 suites. crypto/tls offers all three whenever TLS
// 1.3 is enabled (they are not configurable). NIST SP 800-52r2 lists the
// AES-GCM (and AES-CCM) suites for TLS 1.3, not ChaCha20-Poly1305: the
// AES-GCM ones are recommended, ChaCha20 is NonNIST. An engine that can
// choose what it offers (OpenSSL) offers only the recommended ones.
var tls13 = []Suite{
	{"TLS_AES_128_GCM_SHA256", tls.TLS_AES_128_GCM_SHA256, Recommended, true, "TLS_AES_128_GCM_SHA256"},
	{"TLS_AES_256_GCM_SHA384", tls.TLS_AES_256_GCM_SHA384, Recommended, true, "TLS_AES_256_GCM_SHA384"},
	{"TLS_CHACHA20_POLY1305_SHA256", tls.TLS_CHACHA20_POLY1305_SHA256, NonNIST, true, "TLS_CHACHA20_POLY1305_SHA256"},
}

// TLS13Suites returns the three TLS 1.3 suites with their class (a copy).
func TLS13Suites() []Suite {
	return append([]Suite(nil), tls13...)
}

// recommendedTLS13 is the names of the recommended TLS 1.3 suites.
func recommendedTLS13() string {
	return joinRecommended(tls13, func(s Suite) string { return s.Name }, " or ")
}

// joinRecommended joins field of the recommended suites of suites, in
// their order, with sep.
func joinRecommended(suites []Suite, field func(Suite) string, sep string) string {
	var n []string
	for _, s := range suites {
		if s.Class == Recommended {
			n = append(n, field(s))
		}
	}
	return strings.Join(n, sep)
}

// Table returns the spec's 13 suites, in the spec's order (a copy).
func Table() []Suite {
	return append([]Suite(nil), table...)
}

// Lookup finds a suite by IANA id: one of the spec's 13, or one of the
// three TLS 1.3 suites (AES-GCM recommended, ChaCha20 NonNIST). Any other id is not allowed:
// Lookup returns a Suite with crypto/tls's name, Class NotAllowed, and false.
func Lookup(id uint16) (Suite, bool) {
	for _, s := range table {
		if s.ID == id {
			return s, true
		}
	}
	for _, s := range tls13 {
		if s.ID == id {
			return s, true
		}
	}
	return Suite{Name: tls.CipherSuiteName(id), ID: id, Class: NotAllowed}, false
}

// allowed returns the TLS 1.2 suite ids a mode may offer, in table order.
func allowed(m Mode) []uint16 {
	var ids []uint16
	for _, s := range table {
		if !s.Implemented {
			continue
		}
		if s.Class == Recommended || (m != RecommendedOnly && s.Class == Deprecated) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// unimplemented returns the listed suites crypto/tls cannot negotiate.
func unimplemented() []Suite {
	var out []Suite
	for _, s := range table {
		if !s.Implemented {
			out = append(out, s)
		}
	}
	return out
}

func recommendedNames() string {
	return joinRecommended(table, func(s Suite) string { return s.Name }, ", ")
}

func suiteNames(ids []uint16) string {
	n := make([]string, len(ids))
	for i, id := range ids {
		s, _ := Lookup(id)
		n[i] = s.Name
	}
	return strings.Join(n, ", ")
}

// VersionName returns "TLS 1.2", "TLS 1.3", ... for a protocol version.
func VersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLS 1.0"
	case tls.VersionTLS11:
		return "TLS 1.1"
	case tls.VersionTLS12:
		return "TLS 1.2"
	case tls.VersionTLS13:
		return "TLS 1.3"
	}
	return fmt.Sprintf("TLS version 0x%04x", v)
}
