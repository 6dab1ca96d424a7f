package tlspolicy

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClientHelloOpenSSL checks the bare ClientHello Check uses for the
// suites crypto/tls lacks against OpenSSL's own server, which implements
// all 13 suites of the spec (DHE with automatic parameters): each suite
// offered alone must come back chosen in a ServerHello.
func TestClientHelloOpenSSL(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl not found: install it (scripts/ftpservers install does)")
	}
	ca := newTestCA(t, "tlspolicy test CA")
	dir := t.TempDir()
	writePair := func(name string, ecdsa bool) (string, string) {
		c := ca.issue(t, leafOpts{ecdsa: ecdsa})
		key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		cp, kp := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		if err := os.WriteFile(cp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
			t.Fatal(err)
		}
		return cp, kp
	}
	rc, rk := writePair("rsa", false)
	ec, ek := writePair("ec", true)
	var names []string
	for _, s := range table {
		names = append(names, s.OpenSSL)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "s_server", "-accept", addr, "-cert", rc, "-key", rk, "-dcert", ec, "-dkey", ek,
		"-tls1_2", "-cipher", strings.Join(names, ":")+"@SECLEVEL=0", "-quiet")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Killed by cancel: Wait's error is that, and reaps the process.
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	deadline := time.Now().Add(within(10 * time.Second))
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("openssl s_server did not listen: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, s := range table {
		res, err := func() (helloResult, error) {
			c, err := net.DialTimeout("tcp", addr, within(5*time.Second))
			if err != nil {
				return helloUnclear, err
			}
			defer c.Close()
			if err := c.SetDeadline(time.Now().Add(within(10 * time.Second))); err != nil {
				return helloUnclear, err
			}
			if _, err := c.Write(clientHello("localhost", s.ID)); err != nil {
				return helloUnclear, err
			}
			return parseServerHello(c, s.ID)
		}()
		if res != helloAccepted {
			t.Errorf("%s (%s): %v %v", s.Name, s.OpenSSL, res, err)
		}
	}
	// A suite the server does not have is refused.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(within(10 * time.Second))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(clientHello("localhost", 0xcca8)); err != nil {
		t.Fatal(err)
	}
	if res, err := parseServerHello(c, 0xcca8); res != helloRefused {
		t.Errorf("CHACHA20: %v %v", res, err)
	}
	if t.Failed() {
		fmt.Println(out.String())
	}
}
