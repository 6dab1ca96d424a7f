package ftpstest

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// TestRealBenchOptions: the options scripts/benchkit starts its server with.
// The server's folder is the caller's and outlives Close; NoLog leaves no
// protocol, transfer or TLS log; the passive range has PasvCount ports below
// the ephemeral range; Extra lands at the end of vsftpd.conf (vsftpd's own
// per-session isolation back on) and uploads still go through; with
// AnyPassword vsftpd lets the test user in with any password, and nobody
// else.
func TestRealBenchOptions(t *testing.T) {
	for _, name := range RealServers() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "server")
			o := RealOptions{Dir: dir, NoLog: true, PasvCount: 16, PasvFreeOn: []string{"127.0.0.2"}}
			if name == "vsftpd" {
				o.Extra = []string{"isolate=YES", "isolate_network=YES"}
				o.AnyPassword = true
			}
			r := startRealT(t, name, o)
			pass := r.Password
			if o.AnyPassword {
				pass = "any-" + pass
				refuseLogin(t, r, "daemon", pass)
			}
			if r.Dir != dir {
				t.Errorf("Dir %s, want %s", r.Dir, dir)
			}
			if lo, hi := r.PasvPorts[0], r.PasvPorts[1]; hi-lo+1 != 16 || lo < 20000 || hi >= 32000 {
				t.Errorf("passive ports %d-%d, want 16 between 20000 and 32000", lo, hi)
			}
			if ca, err := os.ReadFile(r.CAFile); err != nil || !bytes.Equal(ca, r.CAPEM) {
				t.Errorf("CAFile %s: %v, or not CAPEM", r.CAFile, err)
			}
			data := bytes.Repeat([]byte("bench"), 20000)
			if _, err := rawUpload(r.Addr, clientTLS(t, r.CAPEM, false, true), r.User, pass, "up.jpg", data); err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(r.Path("up.jpg")); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("uploaded file: %v (%d bytes, want %d)", err, len(got), len(data))
			}
			if name == "vsftpd" {
				conf, err := os.ReadFile(filepath.Join(dir, "vsftpd.conf"))
				if err != nil || !strings.HasSuffix(string(conf), "\nisolate=YES\nisolate_network=YES\n") {
					t.Errorf("vsftpd.conf does not end with Extra (%v):\n%s", err, conf)
				}
			}
			_ = r.Close() // always nil: it kills and waits
			if r.LogPath != "" {
				t.Errorf("LogPath %q with NoLog", r.LogPath)
			}
			for _, f := range []string{"vsftpd.log", "xferlog", "commands.log", "tls.log"} {
				if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s in the server folder with NoLog (%v)", f, err)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "cert.pem")); err != nil {
				t.Errorf("the caller's server folder did not outlive Close: %v", err)
			}
		})
	}
}

// refuseLogin checks that the server answers 530 to user's login.
func refuseLogin(t *testing.T, r *Real, user, pass string) {
	t.Helper()
	rc, _, _, err := dialRaw(r.Addr, clientTLS(t, r.CAPEM, false, true))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := rc.authTLS(); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.expect(331, "USER %s", user); err != nil {
		t.Fatal(err)
	}
	if code, msg, _ := rc.cmd("PASS %s", pass); code != 530 {
		t.Errorf("%s logged in (%d %s): want 530", user, code, msg)
	}
}
