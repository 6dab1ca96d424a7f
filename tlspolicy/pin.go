package tlspolicy

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxCAFile bounds one imported CA file; a CA bundle is far smaller.
const maxCAFile = 4 << 20

// ParsePin parses a SHA-256 pin of a server certificate or of its public
// key (SPKI) and returns the 32-byte digest. Accepted forms:
//
//	sha256/<base64>    (as HPKP and most tools print it; base64 std or url, padding optional)
//	sha256//<base64>   (curl's --pinnedpubkey form)
//	<64 hex digits>    (colons or spaces allowed: openssl x509 -fingerprint -sha256), optional "sha256:" prefix
func ParsePin(s string) ([]byte, error) {
	orig := s
	s = strings.TrimSpace(s)
	bad := func(why string) error {
		return certErr(nil, fmt.Sprintf("pin %q %s: write it as sha256/<base64> or as 64 hex digits of the SHA-256 of the server certificate or its public key", clip(orig), why))
	}
	if s == "" {
		return nil, bad("is empty")
	}
	lower := strings.ToLower(s)
	if strings.HasPrefix(lower, "sha256/") {
		rest := s[len("sha256/"):]
		d, err := decodeB64(rest)
		if (err != nil || len(d) != sha256.Size) && strings.HasPrefix(rest, "/") {
			// curl's "sha256//<base64>"; a base64 digest may itself start with '/'.
			d, err = decodeB64(rest[1:])
		}
		if err != nil {
			return nil, bad("is not valid base64")
		}
		if len(d) != sha256.Size {
			return nil, bad(fmt.Sprintf("has %d bytes, a SHA-256 has 32", len(d)))
		}
		return d, nil
	}
	if strings.HasPrefix(lower, "sha256:") {
		s = s[len("sha256:"):]
	}
	h := strings.NewReplacer(":", "", " ", "", "\t", "").Replace(s)
	if len(h) != 2*sha256.Size {
		return nil, bad("is neither sha256/<base64> nor 64 hex digits")
	}
	d, err := hex.DecodeString(h)
	if err != nil {
		return nil, bad("has a character that is not a hex digit")
	}
	return d, nil
}

// decodeB64 decodes standard or URL base64, padding optional.
func decodeB64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// FormatPin returns the "sha256/<base64>" form of a digest.
func FormatPin(sum []byte) string {
	return "sha256/" + base64.StdEncoding.EncodeToString(sum)
}

// CertPins returns the pins of a certificate: of the whole certificate and
// of its public key (SPKI), both as "sha256/<base64>".
func CertPins(c *x509.Certificate) (cert, spki string) {
	a := sha256.Sum256(c.Raw)
	b := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return FormatPin(a[:]), FormatPin(b[:])
}

// LoadCAFiles reads certificate files to import ("import a certificate" in
// the spec) and returns them as PEM, ready for Options.CAPEM. A file may
// hold one or more PEM certificates, or one DER certificate (.cer/.crt as
// exported by Windows).
func LoadCAFiles(paths ...string) ([][]byte, error) {
	var out [][]byte
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, certErr(err, fmt.Sprintf("cannot read CA file %s: %v: check the path in the config", p, unwrapPath(err)))
		}
		data, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
		f.Close()
		if err != nil {
			return nil, certErr(err, fmt.Sprintf("cannot read CA file %s: %v", p, err))
		}
		certs, err := parseCAPEM(data)
		if err != nil {
			return nil, certErr(err, fmt.Sprintf("CA file %s: %v", p, err))
		}
		var buf []byte
		for _, c := range certs {
			buf = append(buf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		out = append(out, buf)
	}
	return out, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parseCAPEM parses imported certificate data: PEM CERTIFICATE blocks
// (other blocks such as keys are refused, so a private key is never taken
// for a CA by mistake), or a single DER certificate.
func parseCAPEM(data []byte) ([]*x509.Certificate, error) {
	if len(data) > maxCAFile {
		return nil, fmt.Errorf("data is larger than %d bytes: that is not a CA certificate", maxCAFile)
	}
	var certs []*x509.Certificate
	rest := data
	sawPEM := false
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		sawPEM = true
		switch b.Type {
		case "CERTIFICATE", "X509 CERTIFICATE":
		default:
			if strings.Contains(b.Type, "PRIVATE KEY") {
				return nil, fmt.Errorf("holds a %s: import only the certificate (BEGIN CERTIFICATE), never a key", b.Type)
			}
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d is damaged (%w): export it again in PEM format", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if !sawPEM {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			// DER with a stray newline added by a transfer tool.
			c, err = x509.ParseCertificate(bytes.TrimRight(data, "\r\n"))
		}
		if err != nil {
			return nil, fmt.Errorf("no certificate found: import the CA certificate in PEM (-----BEGIN CERTIFICATE-----) or DER format")
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("no CERTIFICATE block found: import the CA certificate in PEM (-----BEGIN CERTIFICATE-----) format")
	}
	return certs, nil
}
