package ftpstest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func startT(t *testing.T, o Options) *Server {
	t.Helper()
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func loginT(t *testing.T, s *Server, cfg interface{}) *rawConn {
	t.Helper()
	rc, code, msg, err := dialRaw(s.Addr, clientTLS(t, s.CAPEM, false, true))
	if err != nil || code != 220 {
		t.Fatalf("dial: %v %q", err, msg)
	}
	t.Cleanup(rc.Close)
	if err := rc.login(s.opts.User, s.opts.Password); err != nil {
		t.Fatal(err)
	}
	return rc
}

func TestStartUploadResume(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ecdsa    bool
		maxTLS12 bool
	}{{"rsa-tls13", false, false}, {"rsa-tls12", false, true}, {"ecdsa-tls13", true, false}, {"ecdsa-tls12", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := startT(t, Options{ECDSA: tc.ecdsa, MaxTLS12: tc.maxTLS12, RequireReuse: true})
			data := bytes.Repeat([]byte("camftpd "), 4096)
			res, err := rawUpload(s.Addr, clientTLS(t, s.CAPEM, false, true), "camftpd", "secret", "a.jpg", data)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Resumed {
				t.Error("data connection did not resume the control session")
			}
			want := uint16(0x0304)
			if tc.maxTLS12 {
				want = 0x0303
			}
			if res.Version != want {
				t.Errorf("TLS version %x, want %x", res.Version, want)
			}
			got, err := os.ReadFile(filepath.Join(s.Root, "a.jpg"))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("file: %v, %d bytes, want %d", err, len(got), len(data))
			}
			st := s.Stats()
			if st.Stors != 1 || st.BytesReceived != int64(len(data)) || st.Resumed != 1 {
				t.Errorf("stats %+v", st)
			}
			for _, c := range st.Commands {
				if strings.Contains(c, "secret") {
					t.Errorf("password in the command log: %q", c)
				}
			}
			if !contains(st.Commands, "PASS ****") {
				t.Errorf("commands %q", st.Commands)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestLoginRules(t *testing.T) {
	s := startT(t, Options{})
	cfg := clientTLS(t, s.CAPEM, false, true)
	// Plain login refused.
	rc, _, _, err := dialRaw(s.Addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if code, msg, _ := rc.cmd("USER camftpd"); code != 530 {
		t.Fatalf("plain USER: %q, want 530", msg)
	}
	// Wrong password.
	if err := rc.authTLS(); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.expect(331, "USER camftpd"); err != nil {
		t.Fatal(err)
	}
	if code, msg, _ := rc.cmd("PASS wrong"); code != 530 {
		t.Fatalf("wrong PASS: %q, want 530", msg)
	}
	// Data without PROT P refused.
	rc2 := loginT(t, s, nil)
	if _, err := rc2.expect(200, "PROT C"); err == nil {
		t.Fatal("PROT C accepted")
	}
}

func TestRequireReuse(t *testing.T) {
	s := startT(t, Options{RequireReuse: true, MaxTLS12: true})
	res, err := rawUpload(s.Addr, clientTLS(t, s.CAPEM, false, false), "camftpd", "secret", "x", []byte("x"))
	if err == nil {
		t.Fatalf("upload without session cache succeeded: %+v", res)
	}
}

func TestCommands(t *testing.T) {
	s := startT(t, Options{})
	rc := loginT(t, s, nil)
	data := []byte("0123456789abcdef")
	if _, err := rc.expect(257, "MKD d"); err != nil {
		t.Fatal(err)
	}
	if res, err := rc.stor("d/f.tmp", data[:6], 0, 0); err != nil || res.Code != 226 {
		t.Fatalf("stor: %v %+v", err, res)
	}
	if msg, err := rc.expect(213, "SIZE d/f.tmp"); err != nil || !strings.HasSuffix(msg, " 6") {
		t.Fatalf("SIZE: %v %q", err, msg)
	}
	if res, err := rc.stor("d/f.tmp", data, 6, 0); err != nil || res.Code != 226 {
		t.Fatalf("resume: %v %+v", err, res)
	}
	if _, err := rc.expect(350, "RNFR d/f.tmp"); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.expect(250, "RNTO d/f.jpg"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(s.Root, "d", "f.jpg"))
	if !bytes.Equal(got, data) {
		t.Fatalf("after resume+rename: %q", got)
	}
	// Two STORs (the second a resume) delivered to d/f.tmp, moved to
	// d/f.jpg; a second copy stored and renamed over it adds one; a STOR
	// to a file then deleted counts nowhere.
	if res, err := rc.stor("d/g.tmp", data, 0, 0); err != nil || res.Code != 226 {
		t.Fatalf("stor: %v %+v", err, res)
	}
	if _, err := rc.expect(350, "RNFR d/g.tmp"); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.expect(250, "RNTO /d/f.jpg"); err != nil {
		t.Fatal(err)
	}
	if res, err := rc.stor("d/h.tmp", data, 0, 0); err != nil || res.Code != 226 {
		t.Fatalf("stor: %v %+v", err, res)
	}
	if _, err := rc.expect(250, "DELE d/h.tmp"); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Stors != 4 || len(st.StorsTo) != 1 || st.StorsTo["/d/f.jpg"] != 3 || st.RenamesTo["/d/f.jpg"] != 2 {
		t.Errorf("Stors %d, StorsTo %v, RenamesTo %v; want 4, map[/d/f.jpg:3], map[/d/f.jpg:2]", st.Stors, st.StorsTo, st.RenamesTo)
	}
	if _, err := rc.expect(213, "MDTM d/f.jpg"); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	msg, err := rc.expect(213, "HASH d/f.jpg")
	if err != nil || !strings.Contains(msg, hex.EncodeToString(sum[:])) {
		t.Fatalf("HASH: %v %q", err, msg)
	}
	_, feat, _ := rc.cmd("FEAT")
	for _, f := range []string{"REST STREAM", "SIZE", "MDTM", "HASH ", "SHA-256*", "AUTH TLS"} {
		if !strings.Contains(feat, f) {
			t.Errorf("FEAT lacks %q: %s", f, feat)
		}
	}
	s.SetFaults(Faults{HideFeatures: []string{"REST STREAM"}, Replies: map[string]string{"rest": "502 no REST here"}})
	_, feat, _ = rc.cmd("FEAT")
	if strings.Contains(feat, "REST") {
		t.Errorf("REST STREAM not hidden: %s", feat)
	}
	if code, _, _ := rc.cmd("REST 5"); code != 502 {
		t.Errorf("REST reply %d, want 502", code)
	}
}

func TestNoHash(t *testing.T) {
	s := startT(t, Options{NoHash: true})
	rc := loginT(t, s, nil)
	_, feat, _ := rc.cmd("FEAT")
	if strings.Contains(feat, "SHA") {
		t.Errorf("FEAT shows hashes: %s", feat)
	}
	if code, _, _ := rc.cmd("XSHA256 x"); code != 502 {
		t.Errorf("XSHA256: %d", code)
	}
}

func TestFaults(t *testing.T) {
	s := startT(t, Options{})
	cfg := clientTLS(t, s.CAPEM, false, true)

	t.Run("421", func(t *testing.T) {
		s.SetFaults(Faults{Reply421OnConnect: true})
		defer s.SetFaults(Faults{})
		rc, code, msg, err := dialRaw(s.Addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
		if code != 421 {
			t.Fatalf("greeting %q", msg)
		}
	})
	t.Run("452", func(t *testing.T) {
		rc := loginT(t, s, nil)
		s.SetFaults(Faults{Reply452OnStor: true})
		defer s.SetFaults(Faults{})
		res, err := rc.stor("full", []byte("x"), 0, 0)
		if err != nil || res.Code != 452 {
			t.Fatalf("%v %+v", err, res)
		}
	})
	t.Run("cut", func(t *testing.T) {
		rc := loginT(t, s, nil)
		s.SetFaults(Faults{CutAfterBytes: 100000})
		data := bytes.Repeat([]byte{7}, 1<<20)
		res, err := rc.stor("cut", data, 0, within(5*time.Second))
		if err != nil || res.Code != 426 {
			t.Fatalf("%v %+v", err, res)
		}
		st, _ := os.Stat(filepath.Join(s.Root, "cut"))
		if st == nil || st.Size() != 100000 {
			t.Fatalf("cut file: %v", st)
		}
		if s.Faults().CutAfterBytes != 0 {
			t.Fatal("one-shot cut not cleared")
		}
		// Next one goes through: resume from 100000.
		res, err = rc.stor("cut", data, 100000, within(5*time.Second))
		if err != nil || res.Code != 226 {
			t.Fatalf("%v %+v", err, res)
		}
		got, _ := os.ReadFile(filepath.Join(s.Root, "cut"))
		if !bytes.Equal(got, data) {
			t.Fatal("resumed file differs")
		}
		if s.Stats().Cuts != 1 {
			t.Fatalf("cuts %d", s.Stats().Cuts)
		}
	})
	t.Run("cut-drops-control", func(t *testing.T) {
		rc := loginT(t, s, nil)
		s.SetFaults(Faults{CutAfterBytes: 5000, CutDropsControl: true})
		defer s.SetFaults(Faults{})
		_, err := rc.stor("drop", make([]byte, 1<<20), 0, within(5*time.Second))
		if err == nil {
			t.Fatal("control connection survived")
		}
	})
	t.Run("delay", func(t *testing.T) {
		rc := loginT(t, s, nil)
		s.SetFaults(Faults{Delay: 200 * time.Millisecond})
		defer s.SetFaults(Faults{})
		t0 := time.Now()
		if _, err := rc.expect(200, "NOOP"); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d < 200*time.Millisecond {
			t.Fatalf("NOOP took %v", d)
		}
	})
	t.Run("rate", func(t *testing.T) {
		rc := loginT(t, s, nil)
		s.SetFaults(Faults{DataRate: 1 << 20})
		defer s.SetFaults(Faults{})
		t0 := time.Now()
		res, err := rc.stor("slow", make([]byte, 512<<10), 0, within(10*time.Second))
		if err != nil || res.Code != 226 {
			t.Fatalf("%v %+v", err, res)
		}
		if d := time.Since(t0); d < 400*time.Millisecond {
			t.Fatalf("512 KiB at 1 MiB/s took %v", d)
		}
	})
	t.Run("stall", func(t *testing.T) {
		rc := loginT(t, s, nil)
		s.SetFaults(Faults{Stall: true, StallAfterBytes: 1000})
		defer s.SetFaults(Faults{})
		res, err := rc.stor("stall", make([]byte, 32<<20), 0, 500*time.Millisecond)
		if res.WriteErr == nil {
			t.Fatalf("write did not stall: %v %+v", err, res)
		}
		rc.Close()
	})
	t.Run("stall new", func(t *testing.T) {
		// An upload under way when StallNew is set goes on; the next one
		// is held. Each half fails without the other's condition.
		old, held := loginT(t, s, nil), loginT(t, s, nil)
		const oldSize = 4 << 20 // 1 s at 4 MiB/s
		s.SetFaults(Faults{DataRate: 4 << 20})
		defer s.SetFaults(Faults{})
		type result struct {
			res storResult
			err error
		}
		done := make(chan result, 1)
		go func() {
			res, err := old.stor("old", make([]byte, oldSize), 0, within(20*time.Second))
			done <- result{res, err}
		}()
		for deadline := time.Now().Add(within(10 * time.Second)); s.Stats().StorsTo["/old"] == 0; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the first upload never opened its file")
			}
		}
		s.SetFaults(Faults{DataRate: 4 << 20, Stall: true, StallNew: true, StallAfterBytes: 1000})
		if got := s.Stats().BytesReceived; got >= oldSize {
			t.Fatalf("the first upload was done (%d bytes) before the stall was set: nothing to prove", got)
		}
		res, err := held.stor("new", make([]byte, 32<<20), 0, 500*time.Millisecond)
		if res.WriteErr == nil {
			t.Fatalf("the upload opened under StallNew did not stall: %v %+v", err, res)
		}
		held.Close()
		o := <-done
		if o.err != nil || o.res.Code != 226 {
			t.Fatalf("the upload under way when StallNew was set did not finish: %v %+v", o.err, o.res)
		}
	})
}

func TestCertHelpers(t *testing.T) {
	ca, err := NewCA(true)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := ca.IssueCert(CertOptions{ECDSA: true, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	s := startT(t, Options{CA: ca, Cert: expired})
	rc, _, _, err := dialRaw(s.Addr, clientTLS(t, s.CAPEM, false, true))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := rc.authTLS(); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired certificate accepted: %v", err)
	}
	// Another server's CA does not vouch for this one.
	other := startT(t, Options{ECDSA: true})
	rc3, _, _, err := dialRaw(other.Addr, clientTLS(t, s.CAPEM, false, true))
	if err != nil {
		t.Fatal(err)
	}
	defer rc3.Close()
	if err := rc3.authTLS(); err == nil {
		t.Fatal("certificate from another CA accepted")
	}
	wrong, err := IssueCert(ca, CertOptions{DNSNames: []string{"example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	s2 := startT(t, Options{CA: ca, Cert: wrong})
	rc2, _, _, err := dialRaw(s2.Addr, clientTLS(t, s2.CAPEM, false, true))
	if err != nil {
		t.Fatal(err)
	}
	defer rc2.Close()
	if err := rc2.authTLS(); err == nil {
		t.Fatal("wrong-name certificate accepted")
	}
}
