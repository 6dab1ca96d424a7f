package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is the one vsftpd every tool uploads to.
type server struct {
	bin      string
	dir      string // config, certificates, empty dir
	Root     string // served folder: "/" after login (chroot)
	Port     int
	PasvLo   int // passive data ports, also proxied by the link emulator
	PasvHi   int
	User     string
	Pass     string
	CA       string // CA file clients verify against
	pamPath  string
	cmd      *exec.Cmd
	stderr   bytes.Buffer
	Version  string
	confText string
}

// The bench logs in as the system account "daemon" (present on every Debian
// system, with an existing home), through a PAM service of its own that lets
// only that user in, with any password, while the bench runs; the file is
// removed at exit. Nothing listens beyond loopback.
const (
	benchUser   = "daemon"
	benchPass   = "bench"
	pamName     = "camftpd-bench"
	pasvPortNum = 64
)

func vsftpdBinary() (string, error) {
	root := os.Getenv("CAMFTPD_FTPD_ROOT")
	if root == "" {
		root = "/opt/camftpd-ftpd"
	}
	bin := filepath.Join(root, "vsftpd/usr/sbin/vsftpd")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("vsftpd not found at %s: run scripts/ftpservers install as root", bin)
	}
	return bin, nil
}

// startServer runs vsftpd on 127.0.0.1 with TLS and the server's defaults,
// except what a test server needs: chroot to the served folder, a passive
// port range (so the link emulator can proxy it) and no logging.
func startServer(dir string, linkIP net.IP, protocolLog bool) (*server, error) {
	bin, err := vsftpdBinary()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the bench runs vsftpd, which needs root: run it as root")
	}
	s := &server{bin: bin, dir: dir, User: benchUser, Pass: benchPass}
	s.Version = vsftpdVersion(bin)
	s.Root = filepath.Join(dir, "srv")
	empty := filepath.Join(dir, "empty")
	for _, d := range []string{s.Root, empty} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(s.Root, 0o777); err != nil {
		return nil, err
	}
	ca, cert, key, err := writeCerts(dir, net.IPv4(127, 0, 0, 1), linkIP)
	if err != nil {
		return nil, err
	}
	s.CA = ca
	users := filepath.Join(dir, "pam-users")
	if err := os.WriteFile(users, []byte(benchUser+"\n"), 0o644); err != nil {
		return nil, err
	}
	s.pamPath = "/etc/pam.d/" + pamName
	pam := "# camftpd scripts/bench: only " + benchUser + ", while the bench runs (removed at exit)\n" +
		"auth required pam_listfile.so item=user sense=allow file=" + users + " onerr=fail\n" +
		"auth required pam_permit.so\naccount required pam_permit.so\nsession required pam_permit.so\n"
	if err := os.WriteFile(s.pamPath, []byte(pam), 0o644); err != nil {
		return nil, fmt.Errorf("writing PAM service file: %w", err)
	}
	if s.Port, err = freePort(); err != nil {
		s.Close()
		return nil, err
	}
	if s.PasvLo, s.PasvHi, err = freePortRange(pasvPortNum, linkIP); err != nil {
		s.Close()
		return nil, err
	}
	lines := []string{
		"listen=YES", "listen_ipv6=NO", "listen_address=127.0.0.1", "listen_port=" + strconv.Itoa(s.Port),
		"background=NO", "seccomp_sandbox=NO", "secure_chroot_dir=" + empty, "pam_service_name=" + pamName,
		"anonymous_enable=NO", "local_enable=YES", "write_enable=YES", "local_umask=022",
		"chroot_local_user=YES", "allow_writeable_chroot=YES", "local_root=" + s.Root,
		"pasv_min_port=" + strconv.Itoa(s.PasvLo), "pasv_max_port=" + strconv.Itoa(s.PasvHi),
		"ssl_enable=YES", "rsa_cert_file=" + cert, "rsa_private_key_file=" + key,
	}
	if protocolLog {
		lines = append(lines, "xferlog_enable=YES", "log_ftp_protocol=YES", "vsftpd_log_file="+filepath.Join(dir, "vsftpd.log"))
	}
	s.confText = strings.Join(lines, "\n") + "\n"
	conf := filepath.Join(dir, "vsftpd.conf")
	if err := os.WriteFile(conf, []byte(s.confText), 0o600); err != nil {
		s.Close()
		return nil, err
	}
	s.cmd = exec.Command(bin, conf)
	s.cmd.Stdout = &s.stderr
	s.cmd.Stderr = &s.stderr
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		s.Close()
		return nil, fmt.Errorf("starting vsftpd: %w", err)
	}
	if err := s.wait220(5 * time.Second); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// greeted says whether the server at addr sends its 220 greeting within 2 s.
func greeted(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return false // the read below could wait for ever
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "220")
}

func (s *server) wait220(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if greeted(s.Addr()) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vsftpd did not greet on %s within %v: %s", s.Addr(), limit, strings.TrimSpace(s.stderr.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

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

// Close stops vsftpd (its process group: the listener and its sessions) and
// removes the PAM service file.
func (s *server) Close() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	if s.pamPath != "" {
		_ = os.Remove(s.pamPath)
	}
}

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
		w.Close()
		r.Close()
		return "?"
	}
	w.Close()
	_, _ = out.ReadFrom(r)
	r.Close()
	_ = cmd.Wait()
	v := strings.TrimSpace(out.String())
	v = strings.TrimPrefix(v, "vsftpd: version ")
	if v == "" {
		return "?"
	}
	return v
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freePortRange finds n consecutive ports free on 127.0.0.1 (vsftpd) and on
// the emulator's address, below the ephemeral range.
func freePortRange(n int, other net.IP) (int, int, error) {
	for range 100 {
		lo := 20000 + rand.IntN(12000)
		var ls []net.Listener
		ok := true
		for p := lo; p < lo+n && ok; p++ {
			for _, ip := range []string{"127.0.0.1", other.String()} {
				l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p)))
				if err != nil {
					ok = false
					break
				}
				ls = append(ls, l)
			}
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return lo, lo + n - 1, nil
		}
	}
	return 0, 0, errors.New("no free range of passive ports between 20000 and 32000")
}
