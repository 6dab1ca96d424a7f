package tlspolicy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned makes a self-signed ECDSA certificate with the given subject
// CN, names and validity (zero: an hour ago to 90 days ahead); isCA sets
// basicConstraints CA:TRUE, as openssl req -x509 does by default.
func selfSigned(t testing.TB, cn string, dns []string, ips []net.IP, from, to time.Time, isCA bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if from.IsZero() {
		from = time.Now().Add(-time.Hour)
	}
	if to.IsZero() {
		to = time.Now().Add(90 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: from, NotAfter: to, DNSNames: dns, IPAddresses: ips,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if isCA {
		tmpl.BasicConstraintsValid, tmpl.IsCA = true, true
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// TestPinReplacesChainAndName: a self-signed certificate naming the
// server only in its CN, reached by IP address, is refused without trust
// and accepted once pinned, in the trust store (seen at the next
// handshake, no new Policy) or in the config's pins; another certificate
// is then refused, and an expired pinned one too.
func TestPinReplacesChainAndName(t *testing.T) {
	nas := selfSigned(t, "nas.local", nil, nil, time.Time{}, time.Time{}, false)
	r := startResponder(t, &tls.Config{Certificates: []tls.Certificate{nas}}, nil)
	store := OpenTrustStore(filepath.Join(t.TempDir(), TrustStoreFile))
	p, err := New(Options{ServerName: "127.0.0.1", Trust: store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := probe(t, p, r.addr); err == nil || !strings.Contains(err.Error(), "no host names at all") {
		t.Fatalf("self-signed CN-only certificate without trust: %v, want refused (no host names)", err)
	}
	if added, err := store.Pin("127.0.0.1", TrustedFrom(nas.Leaf, "nas", "server", time.Now())); err != nil || !added {
		t.Fatalf("pin: %v %v", added, err)
	}
	if _, err := probe(t, p, r.addr); err != nil {
		t.Fatalf("pinned in the trust store: %v", err)
	}
	if n, _ := p.Last(); !n.Pinned {
		t.Errorf("Negotiated.Pinned false for a pinned certificate: %+v", n)
	}
	// The trust store pin is for 127.0.0.1 only: another host name of the
	// same server is not trusted.
	p2, _ := New(Options{ServerName: "localhost", Trust: store})
	if _, err := probe(t, p2, r.addr); err == nil {
		t.Fatal("a pin for 127.0.0.1 was honoured for localhost")
	}
	// The config's pins replace the chain and name checks too.
	cp, kp := CertPins(nas.Leaf)
	for _, pin := range []string{cp, kp} {
		pc, _ := New(Options{ServerName: "192.0.2.7", Pins: []string{pin}})
		if _, err := probe(t, pc, r.addr); err != nil {
			t.Errorf("config pin %s: %v", pin, err)
		}
	}
	// Pinned, then the server presents another certificate: refused.
	other := selfSigned(t, "nas.local", nil, nil, time.Time{}, time.Time{}, false)
	r2 := startResponder(t, &tls.Config{Certificates: []tls.Certificate{other}}, nil)
	if _, err := probe(t, p, r2.addr); err == nil || !strings.Contains(err.Error(), "matches none of the 1 configured pins") {
		t.Fatalf("another certificate than the pinned one: %v", err)
	}
	// A certificate naming only another IP address (the NAS as seen from
	// another network): refused on its name, accepted once pinned.
	ipOnly := selfSigned(t, "", nil, []net.IP{net.IPv4(192, 0, 2, 10)}, time.Time{}, time.Time{}, false)
	rIP := startResponder(t, &tls.Config{Certificates: []tls.Certificate{ipOnly}}, nil)
	ipStore := OpenTrustStore(filepath.Join(t.TempDir(), TrustStoreFile))
	pIP, _ := New(Options{ServerName: "127.0.0.1", Trust: ipStore})
	if _, err := probe(t, pIP, rIP.addr); err == nil || !strings.Contains(err.Error(), `is for "192.0.2.10", not for "127.0.0.1"`) {
		t.Fatalf("IP-only certificate for another address, not pinned: %v", err)
	}
	if _, err := ipStore.Pin("127.0.0.1", TrustedFrom(ipOnly.Leaf, "nas", "server", time.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := probe(t, pIP, rIP.addr); err != nil {
		t.Fatalf("IP-only certificate pinned: %v", err)
	}
	// Expired and pinned: refused, naming the date.
	old := selfSigned(t, "nas.local", nil, nil, time.Now().Add(-400*24*time.Hour), time.Now().Add(-24*time.Hour), false)
	r3 := startResponder(t, &tls.Config{Certificates: []tls.Certificate{old}}, nil)
	pe, _ := New(Options{ServerName: "127.0.0.1", Pins: []string{CertPinOf(old.Leaf)}})
	_, err = probe(t, pe, r3.addr)
	if err == nil || !strings.Contains(err.Error(), "expired on "+stamp(old.Leaf.NotAfter)) {
		t.Fatalf("expired pinned certificate: %v, want refused as expired", err)
	}
	_ = asErr(t, err, KindCertificate)
}

// CertPinOf is the certificate pin of c (test shorthand).
func CertPinOf(c *x509.Certificate) string { p, _ := CertPins(c); return p }

// TestTrustStoreCAs: a CA imported for a host is a root for that host
// only, with the name still checked; a self-signed CA:TRUE server
// certificate imported as a CA is accepted when the server presents it,
// whatever its names.
func TestTrustStoreCAs(t *testing.T) {
	ca := newTestCA(t, "private CA")
	leaf := ca.issue(t, leafOpts{}) // localhost, 127.0.0.1
	r := startResponder(t, &tls.Config{Certificates: []tls.Certificate{leaf}}, nil)
	store := OpenTrustStore(filepath.Join(t.TempDir(), TrustStoreFile))
	if _, err := store.AddCA("localhost", TrustedFrom(ca.cert, "nas", "ca.pem", time.Now())); err != nil {
		t.Fatal(err)
	}
	p, _ := New(Options{ServerName: "localhost", Trust: store})
	if _, err := probe(t, p, r.addr); err != nil {
		t.Fatalf("leaf of a CA imported for localhost: %v", err)
	}
	if n, _ := p.Last(); n.Pinned {
		t.Error("a chain to an imported CA reported as pinned")
	}
	p2, _ := New(Options{ServerName: "127.0.0.1", Trust: store})
	if _, err := probe(t, p2, r.addr); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("CA imported for localhost used for 127.0.0.1: %v", err)
	}

	nasCA := selfSigned(t, "NAS", nil, nil, time.Time{}, time.Time{}, true)
	r2 := startResponder(t, &tls.Config{Certificates: []tls.Certificate{nasCA}}, nil)
	if _, err := store.AddCA("10.1.2.3", TrustedFrom(nasCA.Leaf, "nas", "nas.crt", time.Now())); err != nil {
		t.Fatal(err)
	}
	p3, _ := New(Options{ServerName: "10.1.2.3", Trust: store})
	if _, err := probe(t, p3, r2.addr); err != nil {
		t.Fatalf("self-signed CA:TRUE certificate imported for its host: %v", err)
	}
}

// TestTrustStoreDamaged: a damaged store trusts nothing, and the refusal
// says so.
func TestTrustStoreDamaged(t *testing.T) {
	nas := selfSigned(t, "nas.local", nil, nil, time.Time{}, time.Time{}, false)
	r := startResponder(t, &tls.Config{Certificates: []tls.Certificate{nas}}, nil)
	path := filepath.Join(t.TempDir(), TrustStoreFile)
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _ := New(Options{ServerName: "127.0.0.1", Trust: OpenTrustStore(path)})
	_, err := probe(t, p, r.addr)
	if err == nil || !strings.Contains(err.Error(), "trust store "+path+" cannot be read") {
		t.Fatalf("damaged store: %v", err)
	}
	if _, err := OpenTrustStore(path).Pin("127.0.0.1", TrustedFrom(nas.Leaf, "", "server", time.Now())); err == nil {
		t.Fatal("a damaged store was overwritten")
	}
}

// TestCertExpiry covers the classes, the days left and the boundary.
func TestCertExpiry(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	mk := func(from, to time.Time) *x509.Certificate {
		return &x509.Certificate{NotBefore: from, NotAfter: to, Subject: pkix.Name{CommonName: "nas"}}
	}
	day := 24 * time.Hour
	for _, c := range []struct {
		name string
		cert *x509.Certificate
		warn int
		want ExpiryClass
		days int
		has  string
	}{
		{"long", mk(now.Add(-day), now.Add(200*day)), 30, ExpiryOK, 200, ""},
		{"31 days", mk(now.Add(-day), now.Add(31*day)), 30, ExpiryOK, 31, ""},
		{"29.5 days", mk(now.Add(-day), now.Add(29*day+12*time.Hour)), 30, ExpiryWarn, 29, "in 29 day(s)"},
		{"tomorrow", mk(now.Add(-day), now.Add(day)), 30, ExpiryWarn, 1, "expires on 2026-12-01T12:00:00Z"},
		{"tomorrow, warning off", mk(now.Add(-day), now.Add(day)), 0, ExpiryOK, 1, ""},
		{"expired", mk(now.Add(-9*day), now.Add(-time.Hour)), 30, ExpiryExpired, -1, "expired on"},
		{"not yet", mk(now.Add(day), now.Add(9*day)), 30, ExpiryNotYetValid, 9, "not valid before"},
	} {
		e := CertExpiry(c.cert, now, c.warn)
		if e.Class != c.want || e.DaysLeft != c.days || !strings.Contains(e.Msg, c.has) || (c.has == "") != (e.Msg == "") {
			t.Errorf("%s: %v %d days %q, want %v %d days with %q", c.name, e.Class, e.DaysLeft, e.Msg, c.want, c.days, c.has)
		}
	}
}

// TestCertWarningLoggedOnce: a certificate expiring within cert_warn_days
// sets Negotiated.CertWarning on every handshake and is logged once.
func TestCertWarningLoggedOnce(t *testing.T) {
	ca := newTestCA(t, "warn CA")
	soon := ca.issue(t, leafOpts{notAfter: time.Now().Add(10 * 24 * time.Hour)})
	r := startResponder(t, &tls.Config{Certificates: []tls.Certificate{soon}}, nil)
	log, buf := testLogger()
	p, _ := New(Options{ServerName: "localhost", CAPEM: [][]byte{ca.pem}, Logger: log})
	for i := range 3 {
		if _, err := probe(t, p, r.addr); err != nil {
			t.Fatal(err)
		}
		n, _ := p.Last()
		if !strings.Contains(n.CertWarning, "expires on") || n.CertDaysLeft != 9 && n.CertDaysLeft != 10 {
			t.Fatalf("handshake %d: warning %q, %d days left", i, n.CertWarning, n.CertDaysLeft)
		}
	}
	if c := strings.Count(buf.String(), "server certificate expires soon"); c != 1 {
		t.Fatalf("logged %d times over 3 handshakes, want once:\n%s", c, buf.String())
	}
	// With cert_warn_days 5 (or off) it is no warning.
	for _, wd := range []int{5, -1} {
		p, _ := New(Options{ServerName: "localhost", CAPEM: [][]byte{ca.pem}, CertWarnDays: wd})
		if _, err := probe(t, p, r.addr); err != nil {
			t.Fatal(err)
		}
		if n, _ := p.Last(); n.CertWarning != "" {
			t.Errorf("cert_warn_days %d: warning %q", wd, n.CertWarning)
		}
	}
}

// TestFetchCertificate: the certificate of an untrusted server is fetched
// under the version and suite rules, with the policy's verdict.
func TestFetchCertificate(t *testing.T) {
	nas := selfSigned(t, "nas.local", nil, nil, time.Time{}, time.Time{}, false)
	r := startResponder(t, &tls.Config{Certificates: []tls.Certificate{nas}}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), within(30*time.Second))
	defer cancel()
	f, err := FetchCertificate(ctx, r.addr, Options{ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.Chain[0].Raw, nas.Leaf.Raw) || f.Verdict == nil || !strings.Contains(f.Verdict.Error(), "no host names at all") {
		t.Fatalf("fetched %v, verdict %v", f.Chain[0].Subject, f.Verdict)
	}
	var b strings.Builder
	DescribeCert(&b, f.Chain[0], time.Now(), 30)
	cp, kp := CertPins(nas.Leaf)
	for _, s := range []string{"CN=nas.local", "(self-signed)", "names:        none (only the subject's CN \"nas.local\"", "days left", cp, kp} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("description lacks %q:\n%s", s, b.String())
		}
	}
	// Outside the suite rules: refused as a policy error.
	rs := startResponder(t, &tls.Config{Certificates: []tls.Certificate{nas}, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}, nil)
	if _, err := FetchCertificate(ctx, rs.addr, Options{ServerName: "127.0.0.1"}); err == nil {
		t.Fatal("fetched from a server that offers only a suite outside the policy")
	} else {
		_ = asErr(t, err, KindPolicy)
	}
}

// TestParseImport: PEM and DER certificates, and a clear error for what
// is not one.
func TestParseImport(t *testing.T) {
	c := selfSigned(t, "nas", nil, nil, time.Time{}, time.Time{}, false)
	kder, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range [][]byte{pemOf(c.Leaf), c.Leaf.Raw, append(append([]byte{}, c.Leaf.Raw...), '\n')} {
		got, err := ParseImport(in)
		if err != nil || len(got) != 1 || !bytes.Equal(got[0].Raw, c.Leaf.Raw) {
			t.Errorf("import: %v", err)
		}
	}
	for _, tc := range []struct {
		name string
		in   []byte
		has  string
	}{
		{"empty", []byte("\n"), "empty"},
		{"PEM key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), "holds a PRIVATE KEY"},
		{"DER key", kder, "private key (DER)"},
		{"CSR", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1}}), "certificate request"},
		{"text", []byte("hello, this is not a certificate"), "neither a PEM nor a DER certificate"},
		{"damaged PEM", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), "damaged"},
		{"other PEM", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}), "no BEGIN CERTIFICATE"},
	} {
		_, err := ParseImport(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.has) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", tc.name, err, tc.has)
		}
	}
}

// BenchmarkVerifyRemembered measures what the trust store adds to the
// verification of a resumed handshake (the remembered chain): one stat of
// its file per handshake, missing or present.
func BenchmarkVerifyRemembered(b *testing.B) {
	ca := newTestCA(b, "bench")
	leaf := ca.issue(b, leafOpts{})
	chain := []*x509.Certificate{leaf.Leaf}
	dir := b.TempDir()
	present := OpenTrustStore(filepath.Join(dir, "present.json"))
	other := selfSigned(b, "other", nil, nil, time.Time{}, time.Time{}, false)
	if _, err := present.Pin("elsewhere", TrustedFrom(other.Leaf, "", "server", time.Now())); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		store *TrustStore
	}{{"no store", nil}, {"store missing", OpenTrustStore(filepath.Join(dir, "missing.json"))}, {"store present", present}} {
		b.Run(c.name, func(b *testing.B) {
			p, err := New(Options{ServerName: "localhost", CAPEM: [][]byte{ca.pem}, Trust: c.store})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := p.verifyCert(chain); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCheckWarnsOfExpiry: `camftpd check` against a server whose
// certificate expires in 10 days says so and exits with warn (1).
func TestCheckWarnsOfExpiry(t *testing.T) {
	ca := newTestCA(t, "check expiry CA")
	soon := ca.issue(t, leafOpts{notAfter: time.Now().Add(10 * 24 * time.Hour)})
	// TLS 1.2: on a device that offers ChaCha20 first in TLS 1.3 (armv7),
	// a Go server would pick it, and the suite's warning would join the
	// certificate's.
	r := startResponder(t, &tls.Config{Certificates: []tls.Certificate{soon}, MaxVersion: tls.VersionTLS12}, nil)
	st, out, _ := runCheck(t, r.addr, Options{ServerName: "localhost", CAPEM: [][]byte{ca.pem}})
	if st != CheckWarn || !strings.Contains(out, "warning:      certificate \"CN=localhost\" expires on") ||
		!strings.Contains(out, "result: WARN: the server certificate expires in 9 day(s)") {
		t.Fatalf("check: %v\n%s", st, out)
	}
	if st, _, _ := runCheck(t, r.addr, Options{ServerName: "localhost", CAPEM: [][]byte{ca.pem}, CertWarnDays: 5}); st != CheckPass {
		t.Fatalf("cert_warn_days 5: %v", st)
	}
}
