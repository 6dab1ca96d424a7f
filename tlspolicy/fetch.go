package tlspolicy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Fetched is what FetchCertificate saw of a server.
type Fetched struct {
	Chain      []*x509.Certificate // as the server sent it, leaf first
	Negotiated Negotiated
	// Verdict is the policy's judgement of Chain as things stand (the
	// configured roots and pins, and the trust store): nil when it is
	// accepted; Pinned when it is accepted on a pin.
	Verdict error
	Pinned  bool
}

// FetchCertificate connects to addr (host[:port], port 21 by default) with
// AUTH TLS and runs a handshake under opts' version and suite rules, but
// does not fail on the certificate: it returns the certificates with the
// policy's verdict on them, for a user to look at before trusting them
// (`camftpd trust -server`). Only QUIT is sent after the handshake.
func FetchCertificate(ctx context.Context, addr string, opts Options) (Fetched, error) {
	addr, opts, timeout := checkTarget(addr, opts)
	p, err := New(opts)
	if err != nil {
		return Fetched{}, err
	}
	var f Fetched
	cfg := p.Config()
	cfg.ClientSessionCache = nil // a full handshake: the certificates are sent
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		s, err := p.checkSuite(cs)
		if err != nil {
			return err
		}
		f.Chain = cs.PeerCertificates
		f.Negotiated = Negotiated{Version: cs.Version, Suite: s.ID, SuiteName: s.Name, Class: s.Class, Warning: p.warning(s)}
		if len(f.Chain) > 0 {
			f.Pinned, f.Verdict = p.judgeCert(f.Chain)
		}
		return nil
	}
	s, err := dialAuthTLS(ctx, addr, cfg, timeout)
	if err != nil {
		var pre preTLSError
		if errors.As(err, &pre) {
			err = pre.err
		}
		return Fetched{}, err
	}
	s.quit()
	if len(f.Chain) == 0 {
		return Fetched{}, certErr(nil, fmt.Sprintf("server %s sent no certificate: configure a certificate on the server", p.serverName))
	}
	return f, nil
}

// DescribeCert writes what a user needs to decide whether to trust a
// certificate: subject, issuer, the names it is valid for, its validity
// and days left, and the SHA-256 pins of the certificate and of its
// public key, in the form of the config's pins. Text from the certificate
// is made printable.
func DescribeCert(w io.Writer, c *x509.Certificate, now time.Time, warnDays int) {
	issuer := printable(c.Issuer.String())
	if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil {
		issuer += " (self-signed)"
	}
	kind := "server certificate"
	if c.BasicConstraintsValid && c.IsCA {
		kind = "CA certificate"
	}
	ex := CertExpiry(c, now, warnDays)
	valid := fmt.Sprintf("%s to %s", stamp(c.NotBefore), stamp(c.NotAfter))
	switch ex.Class {
	case ExpiryOK:
		valid += fmt.Sprintf(" (%d days left)", ex.DaysLeft)
	case ExpiryWarn:
		valid += fmt.Sprintf(" (%d days left: WARNING, expires within %d days)", ex.DaysLeft, warnDays)
	case ExpiryExpired:
		valid += " (EXPIRED)"
	case ExpiryNotYetValid:
		valid += " (NOT VALID YET)"
	}
	cp, kp := CertPins(c)
	fmt.Fprintf(w, "  kind:         %s\n", kind)
	fmt.Fprintf(w, "  subject:      %s\n", printable(c.Subject.String()))
	fmt.Fprintf(w, "  issuer:       %s\n", issuer)
	fmt.Fprintf(w, "  names:        %s\n", describeNames(c))
	fmt.Fprintf(w, "  valid:        %s\n", valid)
	fmt.Fprintf(w, "  certificate:  %s (SHA-256)\n", cp)
	fmt.Fprintf(w, "  public key:   %s (SHA-256 of the SPKI)\n", kp)
}

func describeNames(c *x509.Certificate) string {
	var n []string
	for _, d := range c.DNSNames {
		n = append(n, "DNS "+printable(d))
	}
	for _, ip := range c.IPAddresses {
		n = append(n, "IP "+ip.String())
	}
	if len(n) == 0 {
		return fmt.Sprintf("none (only the subject's CN %q, which TLS clients do not check)", printable(c.Subject.CommonName))
	}
	if len(n) > 12 {
		n = append(n[:12], fmt.Sprintf("... (%d more)", len(n)-12))
	}
	return strings.Join(n, ", ")
}

// ParseImport parses a certificate file a user gives to import (PEM or
// DER, one certificate or several), with one-line errors that say what
// the file is instead when it is not a certificate: a private key, a
// certificate request, a PKCS#12 bundle, an empty file.
func ParseImport(data []byte) ([]*x509.Certificate, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("the file is empty: copy the certificate file again")
	}
	if len(data) > maxCAFile {
		return nil, fmt.Errorf("the file is larger than %d bytes: that is not a certificate", maxCAFile)
	}
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		return parseImportDER(data)
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		switch {
		case strings.Contains(b.Type, "PRIVATE KEY"):
			return nil, fmt.Errorf("the file holds a %s, not a certificate: give the certificate (BEGIN CERTIFICATE) and keep the key on the server", b.Type)
		case strings.Contains(b.Type, "CERTIFICATE REQUEST"):
			return nil, errors.New("the file is a certificate request (CSR), not a certificate: give the certificate the CA issued for it")
		case b.Type != "CERTIFICATE" && b.Type != "X509 CERTIFICATE" && b.Type != "TRUSTED CERTIFICATE":
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d of the file is damaged (%w): export it again", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("the file has no BEGIN CERTIFICATE block: give a certificate in PEM or DER format")
	}
	return certs, nil
}

func parseImportDER(data []byte) ([]*x509.Certificate, error) {
	for _, d := range [][]byte{data, bytes.TrimRight(data, "\r\n")} {
		if c, err := x509.ParseCertificate(d); err == nil {
			return []*x509.Certificate{c}, nil
		}
		if _, err := x509.ParsePKCS8PrivateKey(d); err == nil {
			return nil, errors.New("the file is a private key (DER), not a certificate: give the certificate and keep the key on the server")
		}
		if _, err := x509.ParsePKCS1PrivateKey(d); err == nil {
			return nil, errors.New("the file is a private key (DER), not a certificate: give the certificate and keep the key on the server")
		}
		if _, err := x509.ParseECPrivateKey(d); err == nil {
			return nil, errors.New("the file is a private key (DER), not a certificate: give the certificate and keep the key on the server")
		}
		if _, err := x509.ParseCertificateRequest(d); err == nil {
			return nil, errors.New("the file is a certificate request (CSR), not a certificate: give the certificate the CA issued for it")
		}
	}
	return nil, errors.New("the file is neither a PEM nor a DER certificate (a .p12/.pfx bundle must be converted: openssl pkcs12 -in FILE -nokeys -out cert.pem)")
}
