package ftpstest

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
)

func startRealT(t *testing.T, name string, o RealOptions) *Real {
	t.Helper()
	r, err := StartReal(name, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, r.LogText())
		}
		r.Close()
	})
	return r
}

// TestRealServers uploads with session resumption to every real server,
// RSA and ECDSA, TLS 1.2 and 1.3.
func TestRealServers(t *testing.T) {
	for _, name := range RealServers() {
		for _, ec := range []bool{false, true} {
			for _, max12 := range []bool{false, true} {
				kind, ver := "rsa", "tls13"
				if ec {
					kind = "ecdsa"
				}
				if max12 {
					ver = "tls12"
				}
				t.Run(fmt.Sprintf("%s/%s/%s", name, kind, ver), func(t *testing.T) {
					t.Parallel()
					r := startRealT(t, name, RealOptions{ECDSA: ec, MaxTLS12: max12})
					data := bytes.Repeat([]byte("0123456789"), 10000)
					res, err := rawUpload(r.Addr, clientTLS(t, r.CAPEM, false, true), r.User, r.Password, "up.jpg", data)
					if err != nil {
						t.Fatal(err)
					}
					want := uint16(tls.VersionTLS13)
					if max12 {
						want = tls.VersionTLS12
					}
					if res.Version != want {
						t.Errorf("negotiated %x, want %x", res.Version, want)
					}
					t.Logf("%s: TLS %x suite %s resumed=%v", name, res.Version, tls.CipherSuiteName(res.Suite), res.Resumed)
					if !res.Resumed && name != "pureftpd" {
						t.Errorf("data connection did not resume the control session")
					}
					got, err := os.ReadFile(r.Path("up.jpg"))
					if err != nil || !bytes.Equal(got, data) {
						t.Fatalf("uploaded file: %v (%d bytes, want %d)", err, len(got), len(data))
					}
					if r.LogHasReply(426) {
						t.Errorf("426 in the server log")
					}
					if name != "pureftpd" && !r.LogHasReply(226) {
						t.Errorf("no 226 in the server log %s", r.LogPath)
					}
				})
			}
		}
	}
}

// TestRealSessionReuse: vsftpd and ProFTPD refuse data connections that
// do not resume the control session by default; RequireReuse=false lifts
// it; Pure-FTPd never asks.
func TestRealSessionReuse(t *testing.T) {
	no := false
	for _, name := range RealServers() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := startRealT(t, name, RealOptions{MaxTLS12: true})
			_, err := rawUpload(r.Addr, clientTLS(t, r.CAPEM, false, false), r.User, r.Password, "a", []byte("abc"))
			if name == "pureftpd" {
				if err != nil {
					t.Fatalf("pure-ftpd without session cache: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("upload without TLS session reuse accepted by default")
			}
			t.Logf("%s without reuse: %v", name, err)
			r2 := startRealT(t, name, RealOptions{MaxTLS12: true, RequireReuse: &no})
			if _, err := rawUpload(r2.Addr, clientTLS(t, r2.CAPEM, false, false), r2.User, r2.Password, "a", []byte("abc")); err != nil {
				t.Fatalf("RequireReuse=false: %v", err)
			}
		})
	}
}

// TestRealCiphers: the OpenSSL cipher string reaches every server.
func TestRealCiphers(t *testing.T) {
	for _, name := range RealServers() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := startRealT(t, name, RealOptions{MaxTLS12: true, Ciphers: "ECDHE-RSA-AES128-GCM-SHA256"})
			res, err := rawUpload(r.Addr, clientTLS(t, r.CAPEM, false, true), r.User, r.Password, "c", []byte("abc"))
			if err != nil {
				t.Fatal(err)
			}
			if res.Suite != tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 {
				t.Fatalf("suite %s", tls.CipherSuiteName(res.Suite))
			}
		})
	}
}

// TestRealWrongPassword: 530 from every server.
func TestRealWrongPassword(t *testing.T) {
	for _, name := range RealServers() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := startRealT(t, name, RealOptions{})
			rc, _, _, err := dialRaw(r.Addr, clientTLS(t, r.CAPEM, false, true))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if code, msg, _ := rc.cmd("USER %s", r.User); code < 400 {
				t.Fatalf("plain USER accepted: %q", msg)
			}
			rc2, _, _, err := dialRaw(r.Addr, clientTLS(t, r.CAPEM, false, true))
			if err != nil {
				t.Fatal(err)
			}
			defer rc2.Close()
			if err := rc2.authTLS(); err != nil {
				t.Fatal(err)
			}
			if _, err := rc2.expect(331, "USER %s", r.User); err != nil {
				t.Fatal(err)
			}
			if code, msg, _ := rc2.cmd("PASS wrong-%s", r.Password); code != 530 {
				t.Fatalf("wrong PASS: %q", msg)
			}
		})
	}
}

// TestRealCommands: what an uploader needs works on every server, with a
// caller's t.TempDir as root: MKD, partial STOR, SIZE, REST+STOR, RNFR/RNTO,
// and resuming a file planted with WriteFile.
func TestRealCommands(t *testing.T) {
	for _, name := range RealServers() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := startRealT(t, name, RealOptions{Root: t.TempDir(), ECDSA: true})
			data := []byte("0123456789abcdef")
			if err := r.WriteFile("stale/p.tmp", data[:3]); err != nil {
				t.Fatal(err)
			}
			rc, _, _, err := dialRaw(r.Addr, clientTLS(t, r.CAPEM, false, true))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if err := rc.login(r.User, r.Password); err != nil {
				t.Fatal(err)
			}
			if _, err := rc.expect(257, "MKD d"); err != nil {
				t.Fatal(err)
			}
			if res, err := rc.stor("d/f.tmp", data[:6], 0, 0); err != nil || res.Code != 226 {
				t.Fatalf("stor: %v %+v", err, res)
			}
			if msg, err := rc.expect(213, "SIZE d/f.tmp"); err != nil || !strings.HasSuffix(msg, " 6") {
				t.Fatalf("SIZE: %v %q", err, msg)
			}
			for _, f := range []struct {
				name string
				off  int64
			}{{"d/f.tmp", 6}, {"stale/p.tmp", 3}} {
				if res, err := rc.stor(f.name, data, f.off, 0); err != nil || res.Code != 226 {
					t.Fatalf("resume %s: %v %+v", f.name, err, res)
				}
			}
			if _, err := rc.expect(350, "RNFR d/f.tmp"); err != nil {
				t.Fatal(err)
			}
			if _, err := rc.expect(250, "RNTO d/f.jpg"); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{"d/f.jpg", "/stale/p.tmp"} {
				got, err := os.ReadFile(r.Path(p))
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("%s: %v %q", p, err, got)
				}
			}
			_, feat, _ := rc.cmd("FEAT")
			t.Logf("%s FEAT: %q", name, feat)
		})
	}
}

// TestRealProFTPDHash: with Hash, ProFTPD answers HASH with the SHA-256.
func TestRealProFTPDHash(t *testing.T) {
	r := startRealT(t, "proftpd", RealOptions{Hash: true})
	data := []byte("hash me")
	if err := r.WriteFile("h.jpg", data); err != nil {
		t.Fatal(err)
	}
	rc, _, _, err := dialRaw(r.Addr, clientTLS(t, r.CAPEM, false, true))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := rc.login(r.User, r.Password); err != nil {
		t.Fatal(err)
	}
	_, feat, _ := rc.cmd("FEAT")
	if !strings.Contains(feat, "HASH") {
		t.Fatalf("FEAT without HASH: %s", feat)
	}
	if _, err := rc.expect(200, "OPTS HASH SHA-256"); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	msg, err := rc.expect(213, "HASH h.jpg")
	if err != nil || !strings.Contains(msg, hex.EncodeToString(sum[:])) {
		t.Fatalf("HASH: %v %q", err, msg)
	}
	t.Logf("FEAT %q HASH %q", feat, msg)
}
