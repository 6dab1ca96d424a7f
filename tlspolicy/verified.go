package tlspolicy

import (
	"bytes"
	"crypto/x509"
	"sync"
	"time"
)

// verified remembers the last certificate chain that passed verifyCert, so
// that the handshakes that present it again do not build and check the
// chain again: FTP data connections resume the control connection's TLS
// session, and a resumed handshake carries the session's certificates, the
// same bytes. Re-verifying them (chain building and an RSA or ECDSA
// signature check per link) was about 4 % of camftpd's CPU per file on
// the benchmark's 1,000 small files (BENCHMARKS.md, "Where the per-file
// CPU goes").
//
// A hit needs the same certificates, byte for byte, in the same order, and
// a plausible clock inside the validity of every certificate of the chain
// the verification built (the root too): what the verification depends on
// besides the bytes is the policy (fixed for its life: roots, server name),
// the trust store's content (its generation) and the time. A clock that moved out of the window, a clock that is not
// set, or another chain verifies in full, and a failed verification is
// never remembered. Pins are checked on every handshake all the same (two
// SHA-256 of the leaf).
type verified struct {
	mu       sync.Mutex
	raw      [][]byte // the chain as presented (DER)
	from, to time.Time
	gen      uint64 // the trust store's generation it was verified with
}

// hit reports whether certs is the remembered chain, verified with the
// trust store generation gen, and now inside its validity.
func (v *verified) hit(certs []*x509.Certificate, now time.Time, gen uint64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.raw) == 0 || len(v.raw) != len(certs) || gen != v.gen || now.Before(v.from) || now.After(v.to) {
		return false
	}
	for i, c := range certs {
		if !bytes.Equal(v.raw[i], c.Raw) {
			return false
		}
	}
	return true
}

// remember records certs, verified at a plausible time into chain (the
// chain x509 built, from the leaf to a root) with trust store generation gen.
func (v *verified) remember(certs, chain []*x509.Certificate, gen uint64) {
	if len(chain) == 0 {
		return
	}
	from, to := chain[0].NotBefore, chain[0].NotAfter
	for _, c := range chain[1:] {
		if c.NotBefore.After(from) {
			from = c.NotBefore
		}
		if c.NotAfter.Before(to) {
			to = c.NotAfter
		}
	}
	raw := make([][]byte, len(certs))
	for i, c := range certs {
		raw[i] = c.Raw
	}
	v.mu.Lock()
	v.raw, v.from, v.to, v.gen = raw, from, to, gen
	v.mu.Unlock()
}
