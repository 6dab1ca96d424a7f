package tlspolicy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePin(t *testing.T) {
	sum := sha256.Sum256([]byte("camftpd"))
	b64 := base64.StdEncoding.EncodeToString(sum[:])
	hx := hex.EncodeToString(sum[:])
	var colon []string
	for i := 0; i < len(hx); i += 2 {
		colon = append(colon, strings.ToUpper(hx[i:i+2]))
	}
	good := []string{
		"sha256/" + b64,
		"SHA256/" + b64,
		"sha256/" + strings.TrimRight(b64, "="),
		"sha256//" + b64,
		"sha256/" + base64.RawURLEncoding.EncodeToString(sum[:]),
		hx,
		strings.ToUpper(hx),
		strings.Join(colon, ":"),
		"sha256:" + hx,
		"  " + hx + "\n",
		"SHA256:" + strings.Join(colon, ":"),
	}
	for _, s := range good {
		d, err := ParsePin(s)
		if err != nil || !bytes.Equal(d, sum[:]) {
			t.Errorf("ParsePin(%q) = %x, %v", s, d, err)
		}
	}
	// A digest whose base64 starts with '/' (first byte >= 0xfc), in the
	// HPKP and in curl's "sha256//" form.
	slash := bytes.Repeat([]byte{0xfd}, 32)
	sb := base64.StdEncoding.EncodeToString(slash)
	for _, s := range []string{"sha256/" + sb, "sha256//" + sb, FormatPin(slash)} {
		if d, err := ParsePin(s); err != nil || !bytes.Equal(d, slash) {
			t.Errorf("ParsePin(%q) = %x, %v", s, d, err)
		}
	}
	bad := map[string]string{
		"":                                  "is empty",
		"sha256/":                           "has 0 bytes",
		"sha256/!!!!":                       "not valid base64",
		"sha256/" + b64[:20]:                "has 15 bytes",
		"sha1/" + b64:                       "neither",
		hx[:62]:                             "neither",
		hx + "00":                           "neither",
		strings.Repeat("g", 64):             "not a hex digit",
		"md5:" + hx:                         "neither",
		strings.Repeat("x", 500):            "...",
		"sha256/" + strings.Repeat("A", 60): "has 45 bytes",
	}
	for s, want := range bad {
		_, err := ParsePin(s)
		var pe *Error
		if !errors.As(err, &pe) || pe.Kind != KindCertificate || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePin(%q) error %v, want %q", clip(s), err, want)
			continue
		}
		if !strings.Contains(err.Error(), "write it as sha256/<base64>") || strings.ContainsAny(err.Error(), "\n") {
			t.Errorf("ParsePin(%q) error %q does not say what to do on one line", clip(s), err)
		}
	}
}

func TestLoadCAFiles(t *testing.T) {
	ca := newTestCA(t, "import me")
	other := newTestCA(t, "and me")
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bundle := append(append([]byte("# comment\n"), ca.pem...), other.pem...)
	pems, err := LoadCAFiles(write("ca.pem", ca.pem), write("bundle.pem", bundle), write("ca.der", ca.cert.Raw),
		write("crlf.pem", bytes.ReplaceAll(ca.pem, []byte("\n"), []byte("\r\n"))))
	if err != nil {
		t.Fatal(err)
	}
	if len(pems) != 4 {
		t.Fatalf("%d files", len(pems))
	}
	for i, want := range []int{1, 2, 1, 1} {
		certs, err := parseCAPEM(pems[i])
		if err != nil || len(certs) != want {
			t.Errorf("file %d: %d certs, %v", i, len(certs), err)
		}
	}
	// The result feeds New.
	if _, err := New(Options{ServerName: "x", CAPEM: pems}); err != nil {
		t.Error(err)
	}

	// DER whose last byte is a whitespace byte must not be trimmed.
	for i := 0; ; i++ {
		c := newTestCA(t, "der")
		if last := c.cert.Raw[len(c.cert.Raw)-1]; last == '\n' || last == ' ' || last == '\r' || last == '\t' {
			if _, err := LoadCAFiles(write("ws.der", c.cert.Raw)); err != nil {
				t.Errorf("DER ending in %#x: %v", last, err)
			}
			break
		}
		if i > 5000 {
			t.Fatal("no DER ending in whitespace found")
		}
	}

	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	damaged := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw[:100]})
	for name, tc := range map[string]struct {
		path string
		want string
	}{
		"missing":  {filepath.Join(dir, "nope.pem"), "no such file"},
		"key":      {write("key.pem", append(append([]byte{}, ca.pem...), keyPEM...)), "never a key"},
		"garbage":  {write("junk.txt", []byte("hello world")), "no certificate found"},
		"empty":    {write("empty.pem", nil), "no certificate found"},
		"damaged":  {write("damaged.pem", damaged), "is damaged"},
		"only csr": {write("csr.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1}})), "no CERTIFICATE block"},
		"huge":     {write("huge.pem", bytes.Repeat([]byte("A"), maxCAFile+10)), "larger than"},
	} {
		_, err := LoadCAFiles(tc.path)
		var pe *Error
		if !errors.As(err, &pe) || pe.Kind != KindCertificate || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.path) || strings.ContainsAny(err.Error(), "\n") {
			t.Errorf("%s: %q should name the file, on one line", name, err)
		}
	}
}

func TestNewValidates(t *testing.T) {
	ca := newTestCA(t, "ca")
	for _, tc := range []struct {
		opts Options
		kind ErrorKind
		want string
	}{
		{Options{}, KindPolicy, "server name is empty"},
		{Options{ServerName: "  "}, KindPolicy, "server name is empty"},
		{Options{ServerName: "ftp.example.com:21"}, KindPolicy, "includes a port"},
		{Options{ServerName: "h", Mode: "secure"}, KindPolicy, `TLS mode "secure" is unknown`},
		{Options{ServerName: "h", Pins: []string{"nope"}}, KindCertificate, "pin"},
		{Options{ServerName: "h", CAPEM: [][]byte{ca.pem, []byte("junk")}}, KindCertificate, "imported CA certificate 2"},
	} {
		_, err := New(tc.opts)
		var pe *Error
		if !errors.As(err, &pe) || pe.Kind != tc.kind || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %s %q", tc.opts, err, tc.kind, tc.want)
		}
	}
	for _, name := range []string{"ftp.example.com", "127.0.0.1", "::1", "[::1]", "fe80::1"} {
		p, err := New(Options{ServerName: name})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if strings.ContainsAny(p.ServerName(), "[]") || p.Mode() != Compatible {
			t.Errorf("%s: %q %s", name, p.ServerName(), p.Mode())
		}
	}
}

func TestCertPins(t *testing.T) {
	ca := newTestCA(t, "ca")
	c := ca.issue(t, leafOpts{ecdsa: true}).Leaf
	cp, kp := CertPins(c)
	a, _ := ParsePin(cp)
	b, _ := ParsePin(kp)
	ws, wk := sha256.Sum256(c.Raw), sha256.Sum256(c.RawSubjectPublicKeyInfo)
	if !bytes.Equal(a, ws[:]) || !bytes.Equal(b, wk[:]) {
		t.Error("CertPins do not round-trip through ParsePin")
	}
}

// FuzzParsePin: never panics; an accepted pin is 32 bytes and its
// canonical form parses back to the same digest.
func FuzzParsePin(f *testing.F) {
	f.Add("sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
	f.Add("sha256//47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU")
	f.Add("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	f.Add("E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55")
	f.Add("sha256:")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParsePin(s)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("bad error %q", err)
			}
			return
		}
		if len(d) != 32 {
			t.Fatalf("%q gave %d bytes", s, len(d))
		}
		d2, err := ParsePin(FormatPin(d))
		if err != nil || !bytes.Equal(d, d2) {
			t.Fatalf("round trip of %q: %v", s, err)
		}
	})
}

// FuzzLoadCAPEM: parsing imported CA data never panics; what it accepts
// can be re-encoded and parsed again, and New takes it.
func FuzzLoadCAPEM(f *testing.F) {
	ca := newTestCA(f, "fuzz seed CA")
	f.Add(ca.pem)
	f.Add(ca.cert.Raw)
	f.Add(append(append([]byte{}, ca.pem...), ca.pem...))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := parseCAPEM(data)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("multi-line error %q", err)
			}
			if _, err2 := New(Options{ServerName: "h", CAPEM: [][]byte{data}}); err2 == nil {
				t.Fatal("New accepted what parseCAPEM refused")
			}
			return
		}
		if len(certs) == 0 {
			t.Fatal("no error and no certificate")
		}
		if _, err := New(Options{ServerName: "h", CAPEM: [][]byte{data}}); err != nil {
			t.Fatalf("New refused what parseCAPEM accepted: %v", err)
		}
	})
}

// FuzzReadReply: FTP replies come from the network.
func FuzzReadReply(f *testing.F) {
	f.Add([]byte("220 ok\r\n"))
	f.Add([]byte("220-a\r\n b\r\n220 c\r\n"))
	f.Add([]byte("234\r\n"))
	f.Add([]byte("999-\r\n999\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := readReply(bufioReader(data))
		if err == nil && (r.Code < 100 || r.Code > 599 || strings.ContainsAny(r.Text, "\r\n\x00\x1b")) {
			t.Fatalf("reply %+v", r)
		}
	})
}

// FuzzParseServerHello: the first record of a server after our bare
// ClientHello.
func FuzzParseServerHello(f *testing.F) {
	f.Add([]byte{0x16, 3, 3, 0, 42, 2, 0, 0, 38, 3, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 0, 0x00, 0x9f}, uint16(0x009f))
	f.Add([]byte{0x15, 3, 3, 0, 2, 2, 40}, uint16(0x009f))
	f.Fuzz(func(t *testing.T, data []byte, want uint16) {
		res, err := parseServerHello(bytes.NewReader(data), want)
		if (err != nil) != (res == helloUnclear) {
			t.Fatalf("result %v with error %v: an unclear answer says why, a clear one has no error", res, err)
		}
	})
}
