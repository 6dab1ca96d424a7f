package ftpstest

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"time"
)

// SelfSigned makes a self-signed server certificate, as a NAS makes for
// itself: o as for IssueCert (DNSNames and IPs both nil mean localhost and
// 127.0.0.1; give DNSNames: []string{} for a certificate that names its
// server only in its CommonName). isCA sets basicConstraints CA:TRUE, as
// `openssl req -x509` does by default. The key is this process's leaf key
// of o's type (see newKey): certificates differ, keys do not.
func SelfSigned(o CertOptions, isCA bool) (*Cert, error) {
	key, err := newKey(o.ECDSA, "leaf")
	if err != nil {
		return nil, fmt.Errorf("ftpstest: generating key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	if o.DNSNames == nil && o.IPs == nil {
		o.DNSNames, o.IPs = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}
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
		SerialNumber: sn, Subject: pkix.Name{CommonName: cn}, NotBefore: o.NotBefore, NotAfter: o.NotAfter,
		KeyUsage: ku, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, DNSNames: o.DNSNames, IPAddresses: o.IPs,
		BasicConstraintsValid: isCA, IsCA: isCA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("ftpstest: self-signing certificate: %w", err)
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
