//go:build openssl

package ossl

import "fmt"

// Kind is the class of an Error.
type Kind int

const (
	KindConfig    Kind = iota + 1 // bad Config: a cipher list OpenSSL refuses
	KindHandshake                 // the TLS handshake failed (no common suite or version, a bad record)
	KindWeakDH                    // the server's DHE group is smaller than MinDHBits (Logjam)
	KindIO                        // reading, writing or closing the TLS connection failed
)

func (k Kind) String() string {
	switch k {
	case KindConfig:
		return "tls-config"
	case KindHandshake:
		return "tls-handshake"
	case KindWeakDH:
		return "tls-policy"
	case KindIO:
		return "tls-io"
	}
	return fmt.Sprintf("ossl.Kind(%d)", int(k))
}

// Error is an OpenSSL engine error: its class and a one-line message.
type Error struct {
	Kind   Kind
	Msg    string
	DHBits int   // KindWeakDH: the server's group size
	Err    error // the underlying network error, if any
	// NoCommonSuite (KindHandshake): the server accepts none of the
	// suites offered (its handshake_failure or insufficient_security
	// alert), as OpenSSL's reason code says.
	NoCommonSuite bool
}

func (e *Error) Error() string { return e.Msg }

func (e *Error) Unwrap() error { return e.Err }
