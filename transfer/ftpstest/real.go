package ftpstest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// RealOptions configure a real FTPS server (vsftpd, ProFTPD, Pure-FTPd)
// started on 127.0.0.1 for a test.
type RealOptions struct {
	// Root is the directory served to the test user ("/" after login; every
	// server chroots). A temp dir when empty. It is chowned to the test
	// user, and its temp-dir ancestors get o+x so the user can reach it.
	Root string
	// User and Password of the test login. Defaults: TestUser /
	// TestPassword. vsftpd authenticates through PAM, so for vsftpd User is
	// a system account (created if missing, password set with chpasswd).
	User, Password string
	ECDSA          bool // ECDSA P-256 certificate (and CA) instead of RSA 2048
	MaxTLS12       bool // the server refuses TLS 1.3
	// Ciphers is an OpenSSL cipher string (TLS 1.2 and below): vsftpd
	// ssl_ciphers, ProFTPD TLSCipherSuite, Pure-FTPd -J. "" = the server's
	// default (see DefaultCiphers for vsftpd with ECDSA).
	Ciphers string
	// TLS13Suites, when set, is OpenSSL's TLS 1.3 Ciphersuites list for the
	// server (e.g. "TLS_CHACHA20_POLY1305_SHA256"), set with server
	// preference through OPENSSL_CONF's system_default: none of the three
	// servers has a TLS 1.3 suite setting of its own that all share.
	TLS13Suites string
	// RequireReuse: nil = the server's default (vsftpd and ProFTPD require
	// TLS session reuse on data connections; Pure-FTPd has no such check).
	RequireReuse *bool
	Port         int // control port; 0 = pick a free one
	// Hash loads ProFTPD's mod_digest (HASH, XSHA256, XSHA1, XMD5, XCRC;
	// not loaded by Debian's default modules.conf). vsftpd and Pure-FTPd
	// have no hash commands: ignored there.
	Hash bool
	// CA and Cert override the generated pair (e.g. a certificate that also
	// names 10.0.2.2, the host as a QEMU guest sees it). When Cert is set
	// without CA, CAPEM is empty. Cert's key type must agree with ECDSA
	// (vsftpd's default cipher choice depends on it).
	CA   *CA
	Cert *Cert
	// PasvAddress is the address in PASV replies (vsftpd pasv_address,
	// ProFTPD MasqueradeAddress, Pure-FTPd -P); default 127.0.0.1. The
	// servers still listen on 127.0.0.1 only.
	PasvAddress string
	// PasvCount is the number of passive ports (default 8).
	PasvCount int
	// PasvFreeOn lists more addresses on which the passive ports must be
	// free: a proxy in front of the server that listens on another
	// loopback address with the same ports (scripts/benchkit's link
	// emulator on 127.0.0.2).
	PasvFreeOn []string
	// Dir holds the configuration, certificates and logs; created if
	// missing and kept at Close. Default: a temp dir removed at Close.
	Dir string
	// NoLog turns off the protocol, transfer and TLS logs (LogPath is
	// then empty): vsftpd's log_ftp_protocol and debug_ssl cost time on
	// every command, which a benchmark would measure.
	NoLog bool
	// AnyPassword (vsftpd only) logs User in through a PAM service that
	// lets that user alone in with any password, instead of pam_unix: its
	// yescrypt check (83 ms measured on a 2-core machine under load 12)
	// would be measured by a benchmark of tools that log in once per file.
	AnyPassword bool
	// Plain turns TLS off: the server speaks plain FTP only and refuses
	// AUTH TLS (vsftpd ssl_enable=NO, ProFTPD TLSEngine off, Pure-FTPd
	// -Y 0). A certificate is still written (CAPEM is set).
	Plain bool
	// Active lets clients use active mode (EPRT/PORT) as well as passive
	// (vsftpd port_enable=YES; ProFTPD and Pure-FTPd allow it by default).
	Active bool
	// Extra is appended to the configuration: vsftpd.conf lines (a later
	// line overrides an earlier one, e.g. "isolate=YES" restores vsftpd's
	// default), proftpd.conf lines, or Pure-FTPd arguments.
	Extra []string
}

// Default test login for real servers.
const (
	TestUser     = "camftpd-test"
	TestPassword = "camftpd-test-pw"
)

// VsftpdECDSACiphers is used as vsftpd's ssl_ciphers when ECDSA is set and
// Ciphers is empty: vsftpd 3.0.3's built-in default is
// "ECDHE-RSA-AES256-GCM-SHA384" alone, which cannot work with an ECDSA key
// in TLS 1.2.
const VsftpdECDSACiphers = "ECDHE-ECDSA-AES256-GCM-SHA384"

// Real is a running real server.
type Real struct {
	Name    string // "vsftpd", "proftpd", "pureftpd"
	Addr    string // "127.0.0.1:port"
	Host    string
	Port    int
	CAPEM   []byte
	Root    string
	LogPath string // protocol/transfer log (see LogText for all logs)
	// ServerName is the certificate name to verify.
	ServerName string
	User       string
	Password   string
	UID, GID   int    // owner of files the server writes
	Dir        string // config, certificates, logs
	CAFile     string // CAPEM written in Dir, for clients that take a file
	PasvPorts  [2]int
	keepDir    bool // Dir is the caller's (RealOptions.Dir): not removed at Close

	cmd       *exec.Cmd
	exited    chan struct{}
	waitErr   error
	closeOnce sync.Once
}

// FTPDRoot is where scripts/ftpservers installs the servers.
func FTPDRoot() string {
	if r := os.Getenv("CAMFTPD_FTPD_ROOT"); r != "" {
		return r
	}
	return "/opt/camftpd-ftpd"
}

var binPaths = map[string]string{
	"vsftpd":   "vsftpd/usr/sbin/vsftpd",
	"proftpd":  "proftpd/usr/sbin/proftpd",
	"pureftpd": "pureftpd/usr/sbin/pure-ftpd",
}

// Binary returns the path of an installed server ("vsftpd", "proftpd",
// "pureftpd") or an error naming the install script.
func Binary(name string) (string, error) {
	p := filepath.Join(FTPDRoot(), binPaths[name])
	if st, err := os.Stat(p); err != nil || st.IsDir() {
		return "", fmt.Errorf("ftpstest: %s not found at %s: run `scripts/ftpservers install` as root (CAMFTPD_FTPD_ROOT=%s)", name, p, FTPDRoot())
	}
	return p, nil
}

// StartVsftpd starts vsftpd 3.0.3 with explicit TLS required.
func StartVsftpd(o RealOptions) (*Real, error) { return startReal("vsftpd", o) }

// StartProFTPD starts ProFTPD with mod_tls, TLSRequired on.
func StartProFTPD(o RealOptions) (*Real, error) { return startReal("proftpd", o) }

// StartPureFTPd starts Pure-FTPd with -Y 3 (TLS only) and a PureDB user.
func StartPureFTPd(o RealOptions) (*Real, error) { return startReal("pureftpd", o) }

// StartReal starts a server by name: "vsftpd", "proftpd" or "pureftpd".
func StartReal(name string, o RealOptions) (*Real, error) {
	if _, ok := binPaths[name]; !ok {
		return nil, fmt.Errorf("ftpstest: unknown server %q (want vsftpd, proftpd or pureftpd)", name)
	}
	return startReal(name, o)
}

// RealServers lists the names StartReal accepts.
func RealServers() []string { return []string{"vsftpd", "proftpd", "pureftpd"} }

func startReal(name string, o RealOptions) (*Real, error) {
	bin, err := Binary(name)
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("ftpstest: starting %s needs root (it switches to the test user); run the tests as root", name)
	}
	if o.User == "" {
		o.User = TestUser
	}
	if o.Password == "" {
		o.Password = TestPassword
	}
	uid, gid, err := ensureUser(TestUser)
	if err != nil {
		return nil, err
	}
	dir, err := realDir(name, o.Dir)
	if err != nil {
		return nil, err
	}
	r := &Real{Name: name, Host: "127.0.0.1", ServerName: "localhost", User: o.User, Password: o.Password,
		UID: uid, GID: gid, Dir: dir, keepDir: o.Dir != "", exited: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			r.Close()
		}
	}()
	if err := os.Chmod(dir, 0o711); err != nil {
		return nil, err
	}
	if o.Root == "" {
		o.Root = filepath.Join(dir, "root")
		if err := os.Mkdir(o.Root, 0o755); err != nil {
			return nil, err
		}
	}
	if o.Root, err = filepath.Abs(o.Root); err != nil {
		return nil, err
	}
	r.Root = o.Root
	if err := prepareRoot(o.Root, uid, gid); err != nil {
		return nil, err
	}

	cert, certPath, keyPath, err := r.writeCerts(o)
	if err != nil {
		return nil, err
	}
	if o.PasvAddress == "" {
		o.PasvAddress = "127.0.0.1"
	} else if net.ParseIP(o.PasvAddress).To4() == nil {
		return nil, fmt.Errorf("ftpstest: PasvAddress %q is not an IPv4 address", o.PasvAddress)
	}

	if o.PasvCount <= 0 {
		o.PasvCount = 8
	}
	port, lo, hi, err := listenPorts(o)
	if err != nil {
		return nil, err
	}
	r.Port, r.Addr, r.PasvPorts = port, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), [2]int{lo, hi}

	env := append(os.Environ(), "LC_ALL=C")
	if sys := opensslSystemDefault(o); sys != "" {
		// vsftpd 3.0.3 has no TLS 1.3 switch and Pure-FTPd none at all: cap
		// the protocol (and set the TLS 1.3 suites) through OpenSSL's
		// system_default section.
		conf := filepath.Join(dir, "openssl.cnf")
		txt := "openssl_conf = camftpd_conf\n[camftpd_conf]\nssl_conf = camftpd_ssl\n[camftpd_ssl]\nsystem_default = camftpd_sys\n[camftpd_sys]\n" + sys
		if err := os.WriteFile(conf, []byte(txt), 0o644); err != nil {
			return nil, err
		}
		env = append(env, "OPENSSL_CONF="+conf)
	}

	var args []string
	switch name {
	case "vsftpd":
		pam, err := vsftpdPAM(o)
		if err != nil {
			return nil, err
		}
		conf, err := vsftpdConf(r, o, pam, certPath, keyPath)
		if err != nil {
			return nil, err
		}
		args = []string{conf}
	case "proftpd":
		conf, err := proftpdConf(r, o, certPath, keyPath)
		if err != nil {
			return nil, err
		}
		args = []string{"-n", "-c", conf}
	case "pureftpd":
		args, err = pureArgs(r, o, cert)
		if err != nil {
			return nil, err
		}
	}

	stderr, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		return nil, err
	}
	r.cmd = exec.Command(bin, args...)
	r.cmd.Dir = dir
	r.cmd.Env = env
	r.cmd.Stdout = stderr
	r.cmd.Stderr = stderr
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		stderr.Close()
		return nil, fmt.Errorf("ftpstest: starting %s: %w", name, err)
	}
	go func() {
		r.waitErr = r.cmd.Wait()
		stderr.Close()
		close(r.exited)
	}()
	if err := r.wait220(15 * time.Second); err != nil {
		return nil, err
	}
	ok = true
	return r, nil
}

// realDir makes the server's folder: the caller's dir, or a temp dir.
func realDir(name, dir string) (string, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "camftpd-"+name+"-")
		if err != nil {
			return "", fmt.Errorf("ftpstest: %w", err)
		}
		return d, nil
	}
	d, err := filepath.Abs(dir)
	if err == nil {
		err = os.MkdirAll(d, 0o711)
	}
	if err != nil {
		return "", fmt.Errorf("ftpstest: server folder: %w", err)
	}
	return d, nil
}

// writeCerts writes the server's certificate and key (o.Cert, or a fresh
// pair of o.ECDSA's type) and the CA file into Dir.
func (r *Real) writeCerts(o RealOptions) (cert *Cert, certPath, keyPath string, err error) {
	ca, cert := o.CA, o.Cert
	if cert == nil {
		if ca, cert, err = newPair(o.ECDSA); err != nil {
			return nil, "", "", err
		}
	}
	if ca != nil {
		r.CAPEM = ca.PEM
	}
	certPath, keyPath, r.CAFile = filepath.Join(r.Dir, "cert.pem"), filepath.Join(r.Dir, "key.pem"), filepath.Join(r.Dir, "ca.pem")
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{certPath, cert.CertPEM, 0o644}, {keyPath, cert.KeyPEM, 0o600}, {r.CAFile, r.CAPEM, 0o644}} {
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return nil, "", "", fmt.Errorf("ftpstest: %w", err)
		}
	}
	return cert, certPath, keyPath, nil
}

func (r *Real) wait220(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	last := errors.New("not tried")
	for time.Now().Before(deadline) {
		select {
		case <-r.exited:
			if r.waitErr == nil {
				return fmt.Errorf("ftpstest: %s exited at start (status 0): %s", r.Name, logTail(r.LogText()))
			}
			return fmt.Errorf("ftpstest: %s exited at start (%w): %s", r.Name, r.waitErr, logTail(r.LogText()))
		default:
		}
		c, err := net.DialTimeout("tcp", r.Addr, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			line, err2 := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err2 == nil && strings.HasPrefix(line, "220") {
				return nil
			}
			if err2 != nil {
				last = fmt.Errorf("greeting %q: %w", strings.TrimSpace(line), err2)
			} else {
				last = fmt.Errorf("greeting %q is not 220", strings.TrimSpace(line))
			}
		} else {
			last = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("ftpstest: %s did not answer 220 on %s within %v (%w): %s", r.Name, r.Addr, limit, last, logTail(r.LogText()))
}

// logTail is the end of a server's log on one line, for an error message.
// It does not use tlspolicy.OneLine: tlspolicy's tests import this package.
func logTail(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const max = 600
	if len(s) > max {
		s = "..." + s[len(s)-max:]
	}
	return s
}

// Close kills the server (its whole process group) and removes its
// directory (and Root when it was a temp dir inside it), unless the
// directory was RealOptions.Dir.
func (r *Real) Close() error {
	r.closeOnce.Do(func() {
		if r.cmd != nil && r.cmd.Process != nil {
			_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-r.exited:
			case <-time.After(5 * time.Second):
			}
		}
		if r.Dir != "" && !r.keepDir {
			os.RemoveAll(r.Dir)
		}
	})
	return nil
}

// LogText returns every log the server wrote (stderr, protocol, transfer
// and TLS logs), each headed by its file name.
func (r *Real) LogText() string {
	var b strings.Builder
	ents, _ := os.ReadDir(r.Dir)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".log") && e.Name() != "xferlog" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(r.Dir, e.Name()))
		if err != nil || len(data) == 0 {
			continue
		}
		fmt.Fprintf(&b, "== %s\n%s\n", e.Name(), data)
	}
	return b.String()
}

// LogHasReply reports whether the protocol log records a reply with this
// code (vsftpd: vsftpd.log with log_ftp_protocol; ProFTPD: commands.log).
// Pure-FTPd logs replies only to syslog, so it always reports false there.
func (r *Real) LogHasReply(code int) bool {
	if r.Name == "pureftpd" {
		return false
	}
	data, _ := os.ReadFile(r.LogPath)
	return bytes.Contains(data, []byte(`"`+strconv.Itoa(code)+" "))
}

// Path returns the local path of a remote path.
func (r *Real) Path(remote string) string {
	return filepath.Join(r.Root, filepath.FromSlash(strings.TrimLeft(remote, "/")))
}

// WriteFile creates a file under Root (remote path rel) owned by the
// server's user, creating parent directories, so the server can append
// to it or rename it (e.g. a stale partial upload for resume tests).
func (r *Real) WriteFile(rel string, data []byte) error {
	p := r.Path(rel)
	if err := r.MkdirAll(filepath.ToSlash(filepath.Dir(strings.TrimPrefix(p, r.Root)))); err != nil {
		return err
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return err
	}
	return os.Chown(p, r.UID, r.GID)
}

// MkdirAll creates remote directories under Root owned by the server user.
func (r *Real) MkdirAll(rel string) error {
	p := r.Root
	for _, part := range strings.Split(strings.Trim(rel, "/"), "/") {
		if part == "" || part == "." {
			continue
		}
		p = filepath.Join(p, part)
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		if err := os.Chown(p, r.UID, r.GID); err != nil {
			return err
		}
	}
	return nil
}

var userMu sync.Mutex

// ensureUser creates a system account if missing (idempotent, also
// across processes: a concurrent useradd that lost the race is fine).
func ensureUser(name string) (int, int, error) {
	userMu.Lock()
	defer userMu.Unlock()
	u, err := user.Lookup(name)
	if err != nil {
		out, err2 := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
		if u, err = user.Lookup(name); err != nil {
			if err2 == nil { // useradd said nothing wrong: the lookup's error says more
				err2 = err
			}
			return 0, 0, fmt.Errorf("ftpstest: creating system user %s: %w: %s", name, err2, bytes.TrimSpace(out))
		}
	}
	if st, err := os.Stat(u.HomeDir); err != nil || !st.IsDir() {
		// vsftpd chdirs to the home directory before local_root.
		if out, err := exec.Command("usermod", "--home", "/", name).CombinedOutput(); err != nil {
			return 0, 0, fmt.Errorf("ftpstest: usermod --home / %s: %w: %s", name, err, bytes.TrimSpace(out))
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid, nil
}

func setPassword(name, pw string) error {
	if strings.ContainsAny(name+pw, ":\n") {
		return fmt.Errorf("ftpstest: user name or password contains ':' or a newline")
	}
	var last error
	for range 20 {
		cmd := exec.Command("chpasswd")
		cmd.Stdin = strings.NewReader(name + ":" + pw + "\n")
		out, err := cmd.CombinedOutput()
		if err == nil {
			return nil
		}
		last = fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
		time.Sleep(time.Duration(50+rand.IntN(100)) * time.Millisecond) // /etc/shadow locked by a parallel test
	}
	return fmt.Errorf("ftpstest: setting the password of %s with chpasswd: %w", name, last)
}

const pamService = "camftpd-test"

const pamText = `# camftpd tests (transfer/ftpstest): vsftpd logins of local test users.
auth     required pam_unix.so nodelay
account  required pam_unix.so
session  required pam_unix.so
`

// pamAnyText lets one user (%[1]s) in with any password: no hashing.
const pamAnyText = `# camftpd transfer/ftpstest (RealOptions.AnyPassword): vsftpd logins of %[1]s
# with any password; nobody else.
auth     required pam_succeed_if.so quiet user = %[1]s
auth     required pam_permit.so
account  required pam_permit.so
session  required pam_permit.so
`

// vsftpdPAM prepares vsftpd's login of o.User and returns the PAM service
// that checks it: pam_unix with the password set by chpasswd, or with
// AnyPassword a service that lets that user alone in with any password.
func vsftpdPAM(o RealOptions) (string, error) {
	if strings.ContainsAny(o.User, " \t\n:") {
		return "", fmt.Errorf("ftpstest: bad user name %q", o.User)
	}
	if o.User != TestUser {
		if _, _, err := ensureUser(o.User); err != nil {
			return "", err
		}
	}
	if o.AnyPassword {
		svc := pamService + "-any-" + o.User
		return svc, ensurePAM(svc, fmt.Sprintf(pamAnyText, o.User))
	}
	if err := setPassword(o.User, o.Password); err != nil {
		return "", err
	}
	return pamService, ensurePAM(pamService, pamText)
}

// ensurePAM writes /etc/pam.d/<service> unless it already holds text.
func ensurePAM(service, text string) error {
	p := "/etc/pam.d/" + service
	if b, err := os.ReadFile(p); err == nil && string(b) == text {
		return nil
	}
	tmp := p + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return fmt.Errorf("ftpstest: writing PAM service file: %w", err)
	}
	return os.Rename(tmp, p)
}

// prepareRoot chowns root (recursively) to the test user and gives o+x to
// ancestors inside the temp dir (t.TempDir makes 0700 parents).
func prepareRoot(root string, uid, gid int) error {
	st, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("ftpstest: root: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("ftpstest: root %s is not a directory", root)
	}
	err = filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("ftpstest: chown root: %w", err)
	}
	tmp, _ := filepath.Abs(os.TempDir())
	for d := filepath.Dir(root); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			if !strings.HasPrefix(d, tmp+string(filepath.Separator)) {
				return fmt.Errorf("ftpstest: %s is not searchable by the test user (mode %v): use a root under %s", d, st.Mode().Perm(), tmp)
			}
			if err := os.Chmod(d, st.Mode().Perm()|0o001); err != nil {
				return err
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// listenPorts picks the server's control port (o.Port, or a free one) and
// a passive range that does not hold it. A free control port comes from
// freeRange, below the ephemeral range: a port the kernel handed out (":0")
// and that was closed again can be taken by any outgoing connection before
// the server binds it (Pure-FTPd: "Address already in use", seen once in a
// clean-clone CI run while other packages' tests connected).
func listenPorts(o RealOptions) (port, lo, hi int, err error) {
	port = o.Port
	if port == 0 {
		if port, _, err = freeRange(1, nil); err != nil {
			return 0, 0, 0, err
		}
	}
	for range 10 {
		if lo, hi, err = freeRange(o.PasvCount, o.PasvFreeOn); err != nil || port < lo || port > hi {
			return port, lo, hi, err
		}
	}
	return 0, 0, 0, fmt.Errorf("ftpstest: every passive range found holds the control port %d", port)
}

// freeRange finds n consecutive ports for passive mode, free on 127.0.0.1
// and on each of also, between 20000 and 32000: below Linux's ephemeral
// range (32768-60999), so that no outgoing connection takes one of them
// after the check.
func freeRange(n int, also []string) (int, int, error) {
	addrs := append([]string{"127.0.0.1"}, also...)
	for range 100 {
		lo := 20000 + rand.IntN(12000-n)
		var ls []net.Listener
		okAll := true
		for p := lo; p < lo+n && okAll; p++ {
			for _, a := range addrs {
				l, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(p)))
				if err != nil {
					okAll = false
					break
				}
				ls = append(ls, l)
			}
		}
		for _, l := range ls {
			l.Close()
		}
		if okAll {
			return lo, lo + n - 1, nil
		}
	}
	return 0, 0, fmt.Errorf("ftpstest: no %d free passive ports in a row between 20000 and 32000 on %s", n, strings.Join(addrs, ", "))
}

func writeConf(r *Real, name string, lines []string) (string, error) {
	p := filepath.Join(r.Dir, name)
	return p, os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
}

// opensslSystemDefault is the body of the servers' OpenSSL system_default
// section for o ("" when o needs none).
func opensslSystemDefault(o RealOptions) string {
	var b strings.Builder
	if o.MaxTLS12 {
		b.WriteString("MaxProtocol = TLSv1.2\n")
	}
	if o.TLS13Suites != "" {
		b.WriteString("Ciphersuites = " + o.TLS13Suites + "\nOptions = ServerPreference\n")
	}
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}

func vsftpdConf(r *Real, o RealOptions, pam, certPath, keyPath string) (string, error) {
	empty := filepath.Join(r.Dir, "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		return "", err
	}
	lines := []string{
		"listen=YES", "listen_ipv6=NO", "listen_address=127.0.0.1", "listen_port=" + strconv.Itoa(r.Port),
		"background=NO", "seccomp_sandbox=NO", "isolate=NO", "isolate_network=NO",
		"secure_chroot_dir=" + empty, "pam_service_name=" + pam,
		"anonymous_enable=NO", "local_enable=YES", "write_enable=YES", "local_umask=022", "file_open_mode=0644",
		"chroot_local_user=YES", "allow_writeable_chroot=YES", "local_root=" + r.Root,
		"userlist_enable=NO", "connect_from_port_20=NO", "port_enable=" + yesNo(o.Active),
		"pasv_enable=YES", "pasv_address=" + o.PasvAddress,
		"pasv_min_port=" + strconv.Itoa(r.PasvPorts[0]), "pasv_max_port=" + strconv.Itoa(r.PasvPorts[1]),
	}
	if o.Plain {
		lines = append(lines, "ssl_enable=NO")
	} else {
		lines = append(lines, "ssl_enable=YES", "rsa_cert_file="+certPath, "rsa_private_key_file="+keyPath,
			"allow_anon_ssl=NO", "force_local_logins_ssl=YES", "force_local_data_ssl=YES",
			"ssl_sslv2=NO", "ssl_sslv3=NO", "ssl_tlsv1=YES")
	}
	if !o.NoLog {
		r.LogPath = filepath.Join(r.Dir, "vsftpd.log")
		lines = append(lines, "xferlog_enable=YES", "xferlog_std_format=NO", "log_ftp_protocol=YES", "debug_ssl=YES",
			"vsftpd_log_file="+r.LogPath, "dual_log_enable=YES", "xferlog_file="+filepath.Join(r.Dir, "xferlog"))
	}
	if o.RequireReuse != nil {
		lines = append(lines, "require_ssl_reuse="+yesNo(*o.RequireReuse))
	}
	switch {
	case o.Ciphers != "":
		lines = append(lines, "ssl_ciphers="+o.Ciphers)
	case o.ECDSA:
		lines = append(lines, "ssl_ciphers="+VsftpdECDSACiphers)
	}
	return writeConf(r, "vsftpd.conf", append(lines, o.Extra...))
}

func cryptSHA512(pw string) (string, error) {
	cmd := exec.Command("openssl", "passwd", "-6", "-stdin")
	cmd.Stdin = strings.NewReader(pw + "\n")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("ftpstest: `openssl passwd` failed (%w): install openssl (scripts/ftpservers install does)", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func proftpdConf(r *Real, o RealOptions, certPath, keyPath string) (string, error) {
	if strings.ContainsAny(o.User, ":\n ") {
		return "", fmt.Errorf("ftpstest: bad user name %q", o.User)
	}
	hash, err := cryptSHA512(o.Password)
	if err != nil {
		return "", err
	}
	passwd := fmt.Sprintf("%s:%s:%d:%d::%s:/bin/sh\n", o.User, hash, r.UID, r.GID, r.Root)
	if err := os.WriteFile(filepath.Join(r.Dir, "passwd"), []byte(passwd), 0o600); err != nil {
		return "", err
	}
	group := fmt.Sprintf("%s:x:%d:%s\n", TestUser, r.GID, o.User)
	if err := os.WriteFile(filepath.Join(r.Dir, "group"), []byte(group), 0o600); err != nil {
		return "", err
	}
	certKind := "RSA"
	if o.ECDSA {
		certKind = "EC"
	}
	proto := "TLSv1.2 TLSv1.3"
	if o.MaxTLS12 {
		proto = "TLSv1.2"
	}
	lines := []string{
		`ServerName "camftpd ftpstest"`, "ServerType standalone", "DefaultServer on",
		"Port " + strconv.Itoa(r.Port), "DefaultAddress 127.0.0.1", "SocketBindTight on", "UseIPv6 off",
		"User " + TestUser, "Group " + TestUser,
		"PidFile " + filepath.Join(r.Dir, "proftpd.pid"),
		"ScoreboardFile " + filepath.Join(r.Dir, "proftpd.scoreboard"),
		"DelayEngine off", "WtmpLog off", "UseReverseDNS off",
		"<IfModule mod_ctrls.c>", "ControlsEngine off", "</IfModule>",
		"ModulePath " + filepath.Join(FTPDRoot(), "proftpd/usr/lib/proftpd"),
		"LoadModule mod_tls.c",
		"LoadModule mod_digest.c",
		"SystemLog " + filepath.Join(r.Dir, "proftpd.log"),
		"AuthOrder mod_auth_file.c",
		"AuthUserFile " + filepath.Join(r.Dir, "passwd"),
		"AuthGroupFile " + filepath.Join(r.Dir, "group"),
		"<IfModule mod_auth_pam.c>", "AuthPAM off", "</IfModule>",
		"RequireValidShell off", "DefaultRoot ~",
		fmt.Sprintf("PassivePorts %d %d", r.PasvPorts[0], r.PasvPorts[1]),
		"MasqueradeAddress " + o.PasvAddress,
		"AllowOverwrite on", "AllowStoreRestart on", "AllowRetrieveRestart on", "Umask 022",
		"TLSEngine " + map[bool]string{false: "on", true: "off"}[o.Plain],
		"TLSProtocol " + proto,
		"TLS" + certKind + "CertificateFile " + certPath,
		"TLS" + certKind + "CertificateKeyFile " + keyPath,
		"TLSRequired " + map[bool]string{false: "on", true: "off"}[o.Plain], "TLSVerifyClient off",
		// Go clients resume TLS 1.2 sessions only from tickets, and ProFTPD
		// requires reuse on data connections by default but issues no
		// tickets unless told to.
		"TLSSessionTickets on",
	}
	if o.Hash {
		lines = append(lines, "DigestEngine on")
	} else {
		lines = append(lines, "DigestEngine off")
	}
	if o.RequireReuse != nil && !*o.RequireReuse {
		lines = append(lines, "TLSOptions NoSessionReuseRequired")
	}
	if o.Ciphers != "" {
		lines = append(lines, "TLSCipherSuite "+o.Ciphers)
	}
	if !o.NoLog {
		r.LogPath = filepath.Join(r.Dir, "commands.log")
		lines = append(lines, "TransferLog "+filepath.Join(r.Dir, "xferlog"),
			`LogFormat camftpd "%t %a cmd=\"%r\" reply=\"%s %S\""`, "ExtendedLog "+r.LogPath+" ALL camftpd",
			"TLSLog "+filepath.Join(r.Dir, "tls.log"))
	}
	return writeConf(r, "proftpd.conf", append(lines, o.Extra...))
}

func pureArgs(r *Real, o RealOptions, cert *Cert) ([]string, error) {
	if strings.ContainsAny(o.User, ":\n ") {
		return nil, fmt.Errorf("ftpstest: bad user name %q", o.User)
	}
	pem := filepath.Join(r.Dir, "pure-ftpd.pem")
	if err := os.WriteFile(pem, append(append([]byte{}, cert.KeyPEM...), cert.CertPEM...), 0o600); err != nil {
		return nil, err
	}
	pwFile, pdb := filepath.Join(r.Dir, "pureftpd.passwd"), filepath.Join(r.Dir, "pureftpd.pdb")
	purePw := filepath.Join(FTPDRoot(), "pureftpd/usr/bin/pure-pw")
	// pure-pw useradd hashes with argon2id at a cost of ~3 s per login;
	// PureDB takes any crypt(3) hash, so write the line with SHA-512 crypt.
	hash, err := cryptSHA512(o.Password)
	if err != nil {
		return nil, err
	}
	line := fmt.Sprintf("%s:%s:%d:%d::%s/./::::::::::::\n", o.User, hash, r.UID, r.GID, r.Root)
	if err := os.WriteFile(pwFile, []byte(line), 0o600); err != nil {
		return nil, err
	}
	if out, err := exec.Command(purePw, "mkdb", pdb, "-f", pwFile).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ftpstest: pure-pw mkdb: %w: %s", err, bytes.TrimSpace(out))
	}
	args := []string{
		"-S", "127.0.0.1," + strconv.Itoa(r.Port),
		"-l", "puredb:" + pdb,
		"-E", "-A", "-H", "-4",
		"-u", "1",
		"-p", fmt.Sprintf("%d:%d", r.PasvPorts[0], r.PasvPorts[1]),
		"-P", o.PasvAddress,
		"-Y", map[bool]string{false: "3", true: "0"}[o.Plain], "-2", pem,
		"-g", filepath.Join(r.Dir, "pure-ftpd.pid"),
	}
	if !o.NoLog {
		r.LogPath = filepath.Join(r.Dir, "xferlog")
		args = append(args, "-O", "clf:"+r.LogPath)
	}
	if o.Ciphers != "" {
		args = append(args, "-J", o.Ciphers)
	}
	return append(args, o.Extra...), nil
}
