package tlspolicy

import (
	"crypto/tls"
	"log/slog"
	"time"
)

// Class is a suite's standing in the spec.
type Class int

const (
	NotAllowed  Class = iota // outside the spec's table
	Recommended              // the spec's 3 recommended suites, and TLS 1.3
	Deprecated               // the spec's 10 deprecated suites
)

// Mode selects which listed suites may be negotiated.
type Mode string

const (
	Compatible      Mode = "compatible"  // every implemented listed suite; deprecated ones warn
	RecommendedOnly Mode = "recommended" // only recommended suites
)

// Suite is one row of the spec's table.
type Suite struct {
	Name        string
	ID          uint16
	Class       Class
	Implemented bool // crypto/tls can negotiate it
}

// Options configures a Policy. The zero value means compatible mode, TLS 1.2-1.3,
// system roots.
type Options struct {
	Mode       Mode
	ServerName string   // host name to verify (required)
	MaxTLS12   bool     // cap at TLS 1.2
	CAPEM      [][]byte // imported CA certificates (PEM); nil means system roots
	Pins       []string // "sha256/<base64>" of the cert or SPKI; empty means no pinning
	Now        func() time.Time
	Logger     *slog.Logger
}

// Negotiated describes one handshake as seen by VerifyConnection.
type Negotiated struct {
	Version   uint16
	Suite     uint16
	SuiteName string
	Class     Class
	Resumed   bool
	Warning   string // non-empty for a deprecated suite
}

// Policy builds tls.Configs and records what was negotiated.
type Policy struct{ opts Options }

// New validates opts and returns a Policy.
func New(opts Options) (*Policy, error) { panic("tlspolicy: not implemented") }

// Config returns the client *tls.Config (shared ClientSessionCache, restricted
// suites, VerifyConnection hook).
func (p *Policy) Config() *tls.Config { panic("tlspolicy: not implemented") }

// Last returns the most recent negotiation, if any.
func (p *Policy) Last() (Negotiated, bool) { panic("tlspolicy: not implemented") }
