package tlspolicy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"unicode"
)

// ErrorKind says which kind of problem an Error is.
type ErrorKind string

const (
	KindPolicy      ErrorKind = "tls-policy"  // version or suite outside the policy, or no common suite
	KindCertificate ErrorKind = "certificate" // unknown authority, name mismatch, expired, pin mismatch, bad CA file
	KindClock       ErrorKind = "clock"       // the device clock is too wrong to judge certificates
)

// Error is every error this package returns about a handshake or its
// configuration. Msg is one line: what is wrong and what to do.
// Transfer classifies with errors.As(err, new(*tlspolicy.Error)).
type Error struct {
	Kind ErrorKind
	Msg  string
	Err  error // underlying cause, if any
	// noCommon: the server refused every suite offered (Explain's
	// "accepted none of the suites" case); see IsNoCommonSuite.
	noCommon bool
}

// IsNoCommonSuite reports whether err is Explain's "the server accepted
// none of the suites offered": the one outcome after which the openssl
// build tries its second engine (never a network, certificate or version
// error).
func IsNoCommonSuite(err error) bool {
	var pe *Error
	return errors.As(err, &pe) && pe.noCommon
}

func (e *Error) Error() string {
	return string(e.Kind) + ": " + OneLine(e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// OneLine makes server, library or log text fit one line of a message or
// log: line breaks and tabs become spaces, other control characters are
// dropped and runs of white space become one space. It does not bound the
// length: callers clip to what their message can hold. Every package of
// camftpd uses this one (tlspolicy is the package all of them may import).
func OneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == '\t' {
			return ' '
		}
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

func policyErr(err error, msg string) *Error { return &Error{Kind: KindPolicy, Msg: msg, Err: err} }
func certErr(err error, msg string) *Error   { return &Error{Kind: KindCertificate, Msg: msg, Err: err} }

// Explain turns a failed handshake made with cfg (a Config() of this
// package) into an *Error with a clear message when the server refused
// every suite or version offered; it returns other errors unchanged (and
// nil for nil). An *Error from the policy's own checks is returned as is.
func Explain(err error, cfg *tls.Config) error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	host := ""
	var offered []uint16
	max13 := true
	if cfg != nil {
		host = cfg.ServerName
		offered = cfg.CipherSuites
		max13 = cfg.MaxVersion == 0 || cfg.MaxVersion >= tls.VersionTLS13
	}
	if host == "" {
		host = "the server"
	} else {
		host = "server " + host
	}
	var alert tls.AlertError
	var op *net.OpError
	remote := ""
	if errors.As(err, &op) && op.Op == "remote error" {
		remote = op.Err.Error()
	} else if errors.As(err, &alert) {
		remote = alert.Error()
	}
	msg := err.Error()
	switch {
	case strings.Contains(remote, "handshake failure"), strings.Contains(remote, "insufficient security"),
		strings.Contains(msg, "no cipher suite supported by both"), strings.Contains(msg, "server chose an unconfigured cipher suite"):
		pe := policyErr(err, noCommonSuiteMsg(host, offered, max13))
		pe.noCommon = true
		return pe
	case strings.Contains(remote, "protocol version"), strings.Contains(msg, "unsupported versions"),
		strings.Contains(msg, "server selected unsupported protocol version"):
		v := "TLS 1.2 or 1.3"
		if !max13 {
			v = "TLS 1.2"
		}
		return policyErr(err, host+" refused "+v+" (this device never uses TLS below 1.2): enable TLS 1.2 or TLS 1.3 on the server")
	}
	return err
}

func noCommonSuiteMsg(host string, offered []uint16, tls13 bool) string {
	recOnly := len(offered) > 0
	for _, id := range offered {
		if s, _ := Lookup(id); s.Class != Recommended {
			recOnly = false
		}
	}
	what := suiteNames(offered)
	if tls13 {
		what = "TLS 1.3, " + what
	}
	if recOnly {
		return host + " accepted none of the suites allowed in mode recommended (" + what +
			"): enable " + recommendedNames() + " on the server, or set the TLS mode to compatible; `camftpd check` shows what the server accepts"
	}
	var dhe, cbc []string
	for _, s := range unimplemented() {
		if strings.HasPrefix(s.Name, "TLS_DHE_") {
			dhe = append(dhe, s.Name)
		} else {
			cbc = append(cbc, s.Name)
		}
	}
	what = fmt.Sprintf("%d suites of the spec in TLS 1.2", len(offered))
	if tls13 {
		what = "TLS 1.3 and " + what
	}
	return fmt.Sprintf("%s accepted none of the suites this device can negotiate (%s); it may need one this device does not implement: the DHE suites (%s) or AES-256-CBC (%s): enable %s on the server; `camftpd check` shows what the server accepts",
		host, what, strings.Join(dhe, ", "), strings.Join(cbc, ", "), recommendedNames())
}
