package ftpstest

import (
	"crypto"
	"crypto/x509"
)

// SelfSigned makes a self-signed server certificate, as a NAS makes for
// itself: o as for IssueCert (DNSNames and IPs both nil mean localhost and
// 127.0.0.1; give DNSNames: []string{} for a certificate that names its
// server only in its CommonName). isCA sets basicConstraints CA:TRUE, as
// `openssl req -x509` does by default. The key is this process's leaf key
// of o's type (see newKey): certificates differ, keys do not.
func SelfSigned(o CertOptions, isCA bool) (*Cert, error) {
	return leafCert(o, isCA, func(tmpl *x509.Certificate, key crypto.Signer) (*x509.Certificate, crypto.Signer) {
		return tmpl, key
	})
}
