//go:build openssl

package ossl

// #include "shim.h"
import "C"

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"unsafe"
)

// State is what a handshake negotiated.
type State struct {
	Version     uint16 // tls.VersionTLS12 or tls.VersionTLS13
	CipherSuite uint16 // IANA id
	DidResume   bool
	// KeyBits is the size of the server's ephemeral key (a DHE group's
	// bits, or the curve's); DH tells which. 0 when OpenSSL has none (a
	// TLS 1.2 RSA key exchange).
	KeyBits int
	DH      bool
	Chain   [][]byte // the peer's certificates, DER, leaf first
}

// State returns what the handshake negotiated. Call it after Handshake.
func (c *Conn) State() (State, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ssl == nil || !c.handshaken {
		return State{}, &Error{Kind: KindHandshake, Msg: "openssl: no completed handshake on this connection"}
	}
	var isDH C.int
	st := State{
		Version:     uint16(C.SSL_version(c.ssl)),
		CipherSuite: uint16(C.cam_cipher_id(c.ssl)),
		DidResume:   C.SSL_session_reused(c.ssl) == 1,
	}
	st.KeyBits = int(C.cam_peer_tmp_key(c.ssl, &isDH))
	st.DH = isDH == 1
	n := int(C.cam_cert_count(c.ssl))
	for i := range n {
		var der *C.uchar
		l := C.cam_cert_der(c.ssl, C.int(i), &der)
		if l <= 0 {
			return State{}, &Error{Kind: KindHandshake, Msg: fmt.Sprintf("openssl: certificate %d of %s's chain could not be encoded", i, c.serverName)}
		}
		st.Chain = append(st.Chain, C.GoBytes(unsafe.Pointer(der), l))
		C.cam_free(unsafe.Pointer(der))
	}
	return st, nil
}

// ConnectionState is State as crypto/tls would report it, for the Go
// policy (tlspolicy.Policy.VerifyConnection): version, suite, resumption,
// the server name and the parsed peer certificates.
func (c *Conn) ConnectionState() (tls.ConnectionState, error) {
	st, err := c.State()
	if err != nil {
		return tls.ConnectionState{}, err
	}
	cs := tls.ConnectionState{
		Version: st.Version, HandshakeComplete: true, DidResume: st.DidResume,
		CipherSuite: st.CipherSuite, ServerName: c.serverName,
	}
	for i, der := range st.Chain {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return tls.ConnectionState{}, &Error{Kind: KindHandshake, Msg: fmt.Sprintf("openssl: certificate %d of %s's chain: %v", i, c.serverName, err)}
		}
		cs.PeerCertificates = append(cs.PeerCertificates, cert)
	}
	return cs, nil
}
