package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// server is the one vsftpd every tool uploads to, started by
// transfer/ftpstest's launcher (the one the tests use).
type server struct {
	real    *ftpstest.Real
	Root    string // served folder: "/" after login (chroot)
	Port    int
	PasvLo  int // passive data ports, also proxied by the link emulator
	PasvHi  int
	User    string
	Pass    string
	CA      string // CA file clients verify against
	Version string
}

// pasvPortNum passive ports: enough that a port freed by one transfer is not
// needed again while its connection is still closing.
const pasvPortNum = 64

// vsftpdDefaults restores what ftpstest turns off for tests: vsftpd runs
// each session in its own PID, IPC and network namespaces. The bench
// measures the server as it ships.
var vsftpdDefaults = []string{"isolate=YES", "isolate_network=YES"}

// startServer runs vsftpd on 127.0.0.1 in dir (kept at exit), serving
// dir/srv, with an RSA 2048 certificate for localhost, 127.0.0.1 and the
// link emulator's address, passive ports free on both addresses (the
// emulator proxies them), and no logs unless protocolLog (then
// dir/vsftpd.log). It logs in ftpstest's test account with any password
// (AnyPassword): pam_unix's yescrypt check (83 ms measured under load)
// would be paid on every file by the peers that log in once per file.
func startServer(dir string, linkIP net.IP, protocolLog bool) (*server, error) {
	ca, err := ftpstest.NewCA(false)
	if err != nil {
		return nil, err
	}
	cert, err := ca.IssueCert(ftpstest.CertOptions{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), linkIP}})
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "srv")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	r, err := ftpstest.StartVsftpd(ftpstest.RealOptions{
		Root: root, Dir: dir, CA: ca, Cert: cert, NoLog: !protocolLog, Extra: vsftpdDefaults, AnyPassword: true,
		PasvCount: pasvPortNum, PasvFreeOn: []string{linkIP.String()},
	})
	if err != nil {
		return nil, err
	}
	bin, err := ftpstest.Binary("vsftpd")
	if err != nil {
		_ = r.Close()
		return nil, err
	}
	return &server{real: r, Root: r.Root, Port: r.Port, PasvLo: r.PasvPorts[0], PasvHi: r.PasvPorts[1],
		User: r.User, Pass: r.Password, CA: r.CAFile, Version: vsftpdVersion(bin)}, nil
}

func (s *server) Addr() string { return s.real.Addr }

// Clear empties the served folder between runs.
func (s *server) Clear() error {
	ents, err := os.ReadDir(s.Root)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(s.Root, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// Close stops vsftpd (its process group: the listener and its sessions).
func (s *server) Close() { _ = s.real.Close() } // Real.Close reports nothing: it kills and waits

// vsftpdVersion asks the binary; "?" when it does not say.
func vsftpdVersion(bin string) string {
	// vsftpd -v writes its version to standard input (fd 0).
	cmd := exec.Command(bin, "-v")
	var out bytes.Buffer
	r, w, err := os.Pipe()
	if err != nil {
		return "?"
	}
	cmd.Stdin = w
	if err := cmd.Start(); err != nil {
		_ = w.Close()
		_ = r.Close()
		return "?"
	}
	_ = w.Close()
	_, _ = out.ReadFrom(r)
	_ = r.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Sprintf("? (%s -v: %v)", bin, err)
	}
	v := strings.TrimSpace(out.String())
	v = strings.TrimPrefix(v, "vsftpd: version ")
	if v == "" {
		return "?"
	}
	return v
}
