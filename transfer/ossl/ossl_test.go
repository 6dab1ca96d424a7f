//go:build openssl

package ossl

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// TestOffered: the Ctx offers exactly the spec's 13 suites in TLS 1.2 and
// the two AES-GCM suites in TLS 1.3 (no ChaCha20).
func TestOffered(t *testing.T) {
	c, err := NewCtx(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Free()
	got := c.Offered()
	want := []uint16{tls.TLS_AES_256_GCM_SHA384, tls.TLS_AES_128_GCM_SHA256}
	for _, s := range tlspolicy.Table() {
		want = append(want, s.ID)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("offered %04x, want %04x", got, want)
	}
	if slices.Contains(got, tls.TLS_CHACHA20_POLY1305_SHA256) {
		t.Error("TLS_CHACHA20_POLY1305_SHA256 offered")
	}
}

// TestCiphers12MatchesTable: Ciphers12 is the table's OpenSSL names, in order.
func TestCiphers12MatchesTable(t *testing.T) {
	var names []string
	for _, s := range tlspolicy.Table() {
		names = append(names, s.OpenSSL)
	}
	if got := strings.Join(names, ":"); got != Ciphers12 {
		t.Errorf("Ciphers12 = %q, table = %q", Ciphers12, got)
	}
}

// TestBadCipherList: a list OpenSSL rejects is a KindConfig error naming it.
func TestBadCipherList(t *testing.T) {
	_, err := NewCtx(Config{Ciphers: "NO-SUCH-SUITE"})
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindConfig || !strings.Contains(e.Msg, "NO-SUCH-SUITE") {
		t.Fatalf("got %v, want a KindConfig error naming the list", err)
	}
}

type upCase struct {
	name      string
	server    string
	maxTLS12  bool
	ciphers   string   // server's cipher list ("" = its default)
	extra     []string // server config lines
	wantSuite uint16   // 0: any listed
	wantVer   uint16
	wantDH    int // the DHE group's bits, 0: no DHE
}

// TestUploadResumes: through OpenSSL, the data connections resume the
// control connection's session (the servers require it), the upload
// arrives whole, the certificate chain passes the Go checks, and no 426
// is logged. Two uploads per control connection: the session stays usable.
func TestUploadResumes(t *testing.T) {
	dh2048, err := filepath.Abs("testdata/dh2048.pem")
	if err != nil {
		t.Fatal(err)
	}
	cases := []upCase{
		{name: "vsftpd-tls12", server: "vsftpd", maxTLS12: true, wantVer: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384},
		{name: "vsftpd-tls13", server: "vsftpd", wantVer: tls.VersionTLS13},
		{name: "vsftpd-AES256-SHA256", server: "vsftpd", maxTLS12: true, ciphers: "AES256-SHA256", wantVer: tls.VersionTLS12, wantSuite: 0x003d},
		{name: "proftpd-tls12", server: "proftpd", maxTLS12: true, wantVer: tls.VersionTLS12},
		{name: "proftpd-tls13", server: "proftpd", wantVer: tls.VersionTLS13},
		{name: "proftpd-DHE-RSA-AES256-GCM-SHA384", server: "proftpd", maxTLS12: true, ciphers: "DHE-RSA-AES256-GCM-SHA384",
			extra: []string{"TLSDHParamFile " + dh2048}, wantVer: tls.VersionTLS12, wantSuite: 0x009f, wantDH: 2048},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { testUpload(t, tc) })
	}
}

// loginRig is a real server, a Ctx and a control connection logged in
// through it (its state checked against the case), with the session data
// connections resume; the test's cleanup frees them.
type loginRig struct {
	r    *ftpstest.Real
	c    *Ctx
	f    *ftpCtl
	ctl  State
	sess *Session
}

func startLogin(t *testing.T, tc upCase, o ftpstest.RealOptions) loginRig {
	t.Helper()
	r, err := ftpstest.StartReal(tc.server, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	c, err := NewCtx(Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Free)
	f := dialAuth(t, c, r.Addr, r.ServerName)
	f.handshake()
	ctl := checkState(t, f.tls, r, tc, false)
	f.login(r.User, r.Password)
	sess, err := f.tls.Session()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.Free)
	return loginRig{r: r, c: c, f: f, ctl: ctl, sess: sess}
}

func testUpload(t *testing.T, tc upCase) {
	lr := startLogin(t, tc, ftpstest.RealOptions{MaxTLS12: tc.maxTLS12, Ciphers: tc.ciphers, Extra: tc.extra})
	r, c, f, ctl, sess := lr.r, lr.c, lr.f, lr.ctl, lr.sess
	if !sess.Resumable() {
		t.Fatalf("control session not resumable after login (%s)", tlspolicy.VersionName(ctl.Version))
	}
	for i, size := range []int{3<<20 + 123, 64 << 10} {
		data := make([]byte, size)
		_, _ = rand.Read(data)
		name := "up" + string(rune('a'+i)) + ".bin"
		st, peerClosed := f.store(c, r.ServerName, sess, name, data)
		if !st.DidResume {
			t.Errorf("upload %d: data connection did not resume the control session", i)
		}
		if st.Version != ctl.Version || st.CipherSuite != ctl.CipherSuite {
			t.Errorf("upload %d: data %04x/%04x, control %04x/%04x", i, st.Version, st.CipherSuite, ctl.Version, ctl.CipherSuite)
		}
		got, err := os.ReadFile(r.Path(name))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("upload %d: server has %d bytes (err %v), want %d equal bytes", i, len(got), err, len(data))
		}
		t.Logf("upload %d: %d bytes, %s %s, resumed %v, server close_notify %v", i, size,
			tlspolicy.VersionName(st.Version), suiteName(st.CipherSuite), st.DidResume, peerClosed)
	}
	f.cmd("QUIT", 221)
	if r.LogHasReply(426) {
		t.Errorf("server logged a 426:\n%s", r.LogText())
	}
}

func suiteName(id uint16) string {
	s, _ := tlspolicy.Lookup(id)
	return s.Name
}

// checkState checks what the handshake negotiated, and the certificate
// with the Go code: the policy when crypto/tls knows the suite, else
// crypto/x509 alone (the policy's suite set does not know the engine yet).
func checkState(t *testing.T, c *Conn, r *ftpstest.Real, tc upCase, resumed bool) State {
	t.Helper()
	st, err := c.State()
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != tc.wantVer || (tc.wantSuite != 0 && st.CipherSuite != tc.wantSuite) {
		t.Fatalf("negotiated %s %s, want %s %04x", tlspolicy.VersionName(st.Version), suiteName(st.CipherSuite), tlspolicy.VersionName(tc.wantVer), tc.wantSuite)
	}
	if s, listed := tlspolicy.Lookup(st.CipherSuite); !listed || st.CipherSuite == tls.TLS_CHACHA20_POLY1305_SHA256 {
		t.Fatalf("negotiated %s: not offered", s.Name)
	}
	if tc.wantDH != 0 && (!st.DH || st.KeyBits != tc.wantDH) {
		t.Errorf("key exchange: DH %v, %d bits; want a %d-bit DHE group", st.DH, st.KeyBits, tc.wantDH)
	}
	if st.DidResume != resumed {
		t.Errorf("resumed %v, want %v", st.DidResume, resumed)
	}
	cs, err := c.ConnectionState()
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := tlspolicy.Lookup(st.CipherSuite); s.Implemented || st.Version == tls.VersionTLS13 {
		p, err := tlspolicy.New(tlspolicy.Options{ServerName: r.ServerName, CAPEM: [][]byte{r.CAPEM}, MaxTLS12: tc.maxTLS12})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.VerifyConnection(cs); err != nil {
			t.Fatalf("policy refused the OpenSSL connection: %v", err)
		}
		return st
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(r.CAPEM) {
		t.Fatal("no CA")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: r.ServerName, Roots: roots, Intermediates: inter}); err != nil {
		t.Fatalf("certificate: %v", err)
	}
	return st
}

// TestWeakDHRefused: a server whose DHE group is under the minimum is
// refused during the handshake, with a message naming the size; no FTP
// byte (and so no password) is sent after AUTH TLS. 1024 bits against the
// default 2048 (which the system's OpenSSL security level 2 refuses too),
// and 2048 against a 3072 minimum (which only this engine's check refuses).
func TestWeakDHRefused(t *testing.T) {
	for _, tc := range []struct {
		file      string
		bits, min int
	}{{"testdata/dh1024.pem", 1024, 0}, {"testdata/dh2048.pem", 2048, 3072}} {
		t.Run(strconv.Itoa(tc.bits), func(t *testing.T) { testWeakDH(t, tc.file, tc.bits, tc.min) })
	}
}

func testWeakDH(t *testing.T, file string, bits, minBits int) {
	dh, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	// @SECLEVEL=0: the server's own OpenSSL would refuse to use 1024 bits.
	r, err := ftpstest.StartProFTPD(ftpstest.RealOptions{MaxTLS12: true, Ciphers: "DHE-RSA-AES256-GCM-SHA384:@SECLEVEL=0",
		Extra: []string{"TLSDHParamFile " + dh}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := NewCtx(Config{MinDHBits: minBits})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Free()
	f := dialAuth(t, c, r.Addr, r.ServerName)
	ctx, cancel := testCtx()
	defer cancel()
	err = f.tls.Handshake(ctx)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindWeakDH || e.DHBits != bits || !strings.Contains(e.Msg, strconv.Itoa(bits)+"-bit") {
		t.Fatalf("got %v, want a KindWeakDH error naming %d bits\n%s", err, bits, r.LogText())
	}
	t.Logf("refused: %v", err)
}

// TestEverySuite: each of the spec's 13 suites, alone on a real server
// (TLS 1.2), negotiated through OpenSSL with a resumed data connection and
// an upload verified on the server. DHE suites need ProFTPD with a DH
// parameter file (vsftpd 3.0.3 sets none); ECDSA suites an ECDSA
// certificate.
func TestEverySuite(t *testing.T) {
	dh2048, err := filepath.Abs("testdata/dh2048.pem")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range tlspolicy.Table() {
		server, o := ftpstest.SuiteServer(s.OpenSSL, dh2048)
		tc := upCase{name: s.OpenSSL, server: server, maxTLS12: true, ciphers: s.OpenSSL, extra: o.Extra, wantVer: tls.VersionTLS12, wantSuite: s.ID}
		if server == "proftpd" {
			tc.wantDH = 2048
		}
		t.Run(s.OpenSSL, func(t *testing.T) { testSuite(t, tc, o) })
	}
}

func testSuite(t *testing.T, tc upCase, o ftpstest.RealOptions) {
	lr := startLogin(t, tc, o)
	r, c, f, sess := lr.r, lr.c, lr.f, lr.sess
	data := make([]byte, 256<<10)
	_, _ = rand.Read(data)
	st, _ := f.store(c, r.ServerName, sess, "suite.bin", data)
	if !st.DidResume || st.CipherSuite != tc.wantSuite {
		t.Errorf("data connection: resumed %v, suite %s", st.DidResume, suiteName(st.CipherSuite))
	}
	if got, err := os.ReadFile(r.Path("suite.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("server has %d bytes (err %v), want %d equal bytes", len(got), err, len(data))
	}
	f.cmd("QUIT", 221)
}
