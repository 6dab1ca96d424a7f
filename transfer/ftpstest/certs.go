package ftpstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"
)

// CA is a throw-away certificate authority for tests.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// PEM is the CA certificate, PEM encoded: what a client imports.
	PEM []byte
}

// Cert is a certificate issued by a CA, with its key.
type Cert struct {
	TLS tls.Certificate
	// CertPEM holds the leaf certificate (PEM); KeyPEM its private key
	// (PKCS#8 PEM). Servers that take one file get CertPEM+KeyPEM.
	CertPEM, KeyPEM []byte
	Leaf            *x509.Certificate
}

// CertOptions describes a leaf certificate. The zero value gives a
// certificate valid now (1 hour back, 397 days ahead: a server
// certificate's usual life, beyond the 30 days before expiry in which
// camftpd warns) for "localhost" and 127.0.0.1 with an RSA key.
type CertOptions struct {
	ECDSA     bool
	DNSNames  []string // default {"localhost"} when DNSNames and IPs are both nil
	IPs       []net.IP // default {127.0.0.1} when DNSNames and IPs are both nil
	NotBefore time.Time
	NotAfter  time.Time
	// CommonName defaults to the first DNS name.
	CommonName string
}

var (
	keyMu sync.Mutex
	keys  = map[string]crypto.Signer{}
)

// newKey returns this process's key for a role ("ca" or "leaf") and type.
// Keys are generated once and reused by every certificate: RSA key
// generation takes seconds under qemu-arm, and tests only need fresh
// certificates (new CA subject key, serials, validity), not fresh keys.
func newKey(ec bool, role string) (crypto.Signer, error) {
	id := fmt.Sprintf("%s/%v", role, ec)
	keyMu.Lock()
	defer keyMu.Unlock()
	if k, ok := keys[id]; ok {
		return k, nil
	}
	var k crypto.Signer
	var err error
	if ec {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return nil, err
	}
	keys[id] = k
	return k, nil
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
}

// NewCA makes a self-signed CA (ECDSA P-256 or RSA 2048), valid from a day
// ago for ten years. Each CA has its own random name, so a client trusting
// one CA does not trust another's certificates.
func NewCA(ec bool) (*CA, error) { return NewNamedCA(ec, "camftpd test CA") }

// NewNamedCA is NewCA with a name of the caller's: the CA's common name is
// name and a random suffix (two CAs never share a name), for a test that
// looks for the name in an error.
func NewNamedCA(ec bool, name string) (*CA, error) {
	key, err := newKey(ec, "ca")
	if err != nil {
		return nil, fmt.Errorf("ftpstest: generating CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: name + " " + sn.Text(36), Organization: []string{"camftpd ftpstest"}},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("ftpstest: creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// IssueCert issues a server certificate signed by ca.
func IssueCert(ca *CA, o CertOptions) (*Cert, error) { return ca.IssueCert(o) }

// IssueCert issues a server certificate signed by the CA.
func (ca *CA) IssueCert(o CertOptions) (*Cert, error) {
	return leafCert(o, false, func(*x509.Certificate, crypto.Signer) (*x509.Certificate, crypto.Signer) {
		return ca.Cert, ca.Key
	})
}

// leafCert makes a server certificate for o (DNSNames and IPs both nil
// mean localhost and 127.0.0.1; valid from an hour ago for 397 days unless
// o says otherwise) with this process's leaf key of o's type; isCA sets
// basicConstraints CA:TRUE. signer returns the issuer's certificate and
// key, given the new certificate's template and key (themselves when
// self-signed).
func leafCert(o CertOptions, isCA bool, signer func(*x509.Certificate, crypto.Signer) (*x509.Certificate, crypto.Signer)) (*Cert, error) {
	key, err := newKey(o.ECDSA, "leaf")
	if err != nil {
		return nil, fmt.Errorf("ftpstest: generating key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	if o.DNSNames == nil && o.IPs == nil {
		o.DNSNames = []string{"localhost"}
		o.IPs = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(397 * 24 * time.Hour)
	}
	cn := o.CommonName
	if cn == "" && len(o.DNSNames) > 0 {
		cn = o.DNSNames[0]
	}
	ku := x509.KeyUsageDigitalSignature
	if !o.ECDSA {
		ku |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		KeyUsage:              ku,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:              o.DNSNames,
		IPAddresses:           o.IPs,
		BasicConstraintsValid: isCA,
		IsCA:                  isCA,
	}
	parent, parentKey := signer(tmpl, key)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, fmt.Errorf("ftpstest: issuing certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Cert{
		TLS:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		Leaf:    leaf,
	}, nil
}

// newPair makes a fresh CA and a localhost/127.0.0.1 certificate of the
// same key type.
func newPair(ec bool) (*CA, *Cert, error) {
	ca, err := NewCA(ec)
	if err != nil {
		return nil, nil, err
	}
	c, err := ca.IssueCert(CertOptions{ECDSA: ec})
	if err != nil {
		return nil, nil, err
	}
	return ca, c, nil
}
