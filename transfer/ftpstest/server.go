package ftpstest

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

// Options configure the in-process server. The zero value works: a temp
// root, user "camftpd" with password "secret", RSA certificate.
type Options struct {
	Root     string // served directory; a new temp dir when empty
	User     string // default "camftpd"
	Password string // default "secret"
	ECDSA    bool   // ECDSA P-256 certificate and CA instead of RSA
	MaxTLS12 bool   // refuse TLS 1.3
	// RequireReuse refuses data connections whose TLS session does not
	// resume the control connection's session (like vsftpd's default).
	RequireReuse bool
	// NoHash hides HASH/XSHA256/... (FEAT) and refuses them with 502.
	NoHash bool
	// CA and Cert override the generated ones (for expired or wrong-name
	// certificates). When Cert is set without CA, CAPEM is empty.
	CA     *CA
	Cert   *Cert
	Faults *Faults // initial faults; change them later with SetFaults
	Logger *slog.Logger
}

// Faults are injected failures. Change them while the server runs with
// Server.SetFaults or Server.UpdateFaults (never by writing a shared value).
type Faults struct {
	// CutAfterBytes > 0: the next STOR/APPE data connection is closed by the
	// server after that many bytes were written to the file; the STOR reply
	// is then "426". Only once unless CutEvery.
	CutAfterBytes int64
	CutEvery      bool
	// CutDropsControl: a cut also closes the control connection without a
	// reply (the link went down), instead of answering 426.
	CutDropsControl bool
	// Reply421OnConnect: a new control connection gets "421" and is closed.
	Reply421OnConnect bool
	// Reply452OnStor: STOR/APPE get "452 Insufficient storage space".
	Reply452OnStor bool
	// Delay sleeps before the greeting and before each command is handled
	// (slow server).
	Delay time.Duration
	// DataRate > 0 throttles uploads to about that many bytes per second.
	DataRate int64
	// Stall: once StallAfterBytes bytes of a STOR are written, the server
	// stops reading the data connection until Stall is cleared (or the
	// connection or server closes).
	Stall           bool
	StallAfterBytes int64
	// StallNew limits Stall to the STORs opened while it is set: an upload
	// already under way when the faults are set goes on (a test holds the
	// next file on the server without touching the current one).
	StallNew bool
	// Replies maps a command verb (upper case, e.g. "REST", "MKD") to a full
	// reply line sent instead of handling the command, e.g. "502 no REST".
	Replies map[string]string
	// HideFeatures removes FEAT lines containing any of these strings
	// (e.g. "REST STREAM", "HASH").
	HideFeatures []string
	// HandshakeFault replaces the next HandshakeFaults control TLS
	// handshakes (after 234 to AUTH TLS) with a fault; see tlsfaults.go.
	HandshakeFault  HandshakeFault
	HandshakeFaults int
}

func (f Faults) clone() Faults {
	if f.Replies != nil {
		m := make(map[string]string, len(f.Replies))
		for k, v := range f.Replies {
			m[strings.ToUpper(k)] = v
		}
		f.Replies = m
	}
	f.HideFeatures = append([]string(nil), f.HideFeatures...)
	return f
}

// Stats count what the server saw, for assertions.
type Stats struct {
	Connections   int   // control connections accepted
	Logins        int   // successful logins
	Stors         int   // STOR and APPE commands received
	BytesReceived int64 // bytes written to files by uploads
	Cuts          int   // data connections cut by CutAfterBytes
	Resumed       int   // data connections whose TLS session resumed
	DataConns     int   // TLS data connections completed
	// HandshakeFaults counts control handshakes replaced by a fault.
	HandshakeFaults int
	// Commands is every command line received, in order, with the PASS
	// argument replaced by "****".
	Commands []string
	// StorsTo maps a file path (as clients see it: "/" is Root, cleaned) to
	// the number of STOR/APPE commands whose data was delivered there:
	// written to it, or written to a file that RNFR/RNTO later moved there
	// (the count moves with the file). Counts add up when a path is
	// overwritten, so a capture sent again shows 2 at its final name under
	// any same-name policy; a DELE drops the count of the deleted file. A
	// capture sent once in one piece has 1 at its final name (plus one per
	// resume, REST+STOR or APPE).
	StorsTo map[string]int
	// RenamesTo counts successful renames (RNTO) onto each path.
	RenamesTo map[string]int
}

// Server is a running in-process FTPS (explicit TLS) server.
type Server struct {
	Addr  string // "127.0.0.1:port"
	Host  string // "127.0.0.1"
	Port  int
	CAPEM []byte // CA that signed the server certificate (localhost, 127.0.0.1)
	Root  string
	// ServerName is the name in the certificate to verify against.
	ServerName string

	opts    Options
	tempDir string
	log     *slog.Logger
	ctlCfg  *tls.Config
	dataCfg *tls.Config
	ln      net.Listener
	backend *ftpserver.FtpServer
	bAddr   string

	backendSettings *ftpserver.Settings

	mu       sync.Mutex
	faults   Faults
	stats    Stats
	sessions map[string]*session // by backend-side local address
	closed   bool
	done     chan struct{}
	wg       sync.WaitGroup
}

// Start runs a server on 127.0.0.1 with a random port.
//
// The listener in front is a small FTP proxy owned by this package: it
// terminates explicit TLS (AUTH TLS), enforces TLS before login, logs
// commands and injects faults; it forwards commands in clear over loopback
// to ftpserverlib, which serves opts.Root. Data connections go straight to
// ftpserverlib's passive listener over TLS (PROT P), with the same session
// ticket keys, so clients can resume the control session.
func Start(opts Options) (*Server, error) {
	if opts.User == "" {
		opts.User = "camftpd"
	}
	if opts.Password == "" {
		opts.Password = "secret"
	}
	s := &Server{opts: opts, sessions: map[string]*session{}, done: make(chan struct{}), ServerName: "localhost"}
	s.log = opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.Faults != nil {
		s.faults = opts.Faults.clone()
	}
	if opts.Root == "" {
		d, err := os.MkdirTemp("", "ftpstest-")
		if err != nil {
			return nil, fmt.Errorf("ftpstest: creating root: %w", err)
		}
		s.tempDir = d
		opts.Root = d
	}
	s.Root = opts.Root
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	cert := opts.Cert
	ca := opts.CA
	if cert == nil {
		if ca == nil {
			var err error
			if ca, err = NewCA(opts.ECDSA); err != nil {
				return nil, err
			}
		}
		var err error
		if cert, err = ca.IssueCert(CertOptions{ECDSA: opts.ECDSA}); err != nil {
			return nil, err
		}
	}
	if ca != nil {
		s.CAPEM = ca.PEM
	}
	base := &tls.Config{
		Certificates: []tls.Certificate{cert.TLS},
		MinVersion:   tls.VersionTLS12,
	}
	if opts.MaxTLS12 {
		base.MaxVersion = tls.VersionTLS12
	}
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	base.SetSessionTicketKeys([][32]byte{key})
	s.ctlCfg = base.Clone()
	s.dataCfg = base.Clone()
	s.dataCfg.VerifyConnection = func(cs tls.ConnectionState) error {
		s.mu.Lock()
		s.stats.DataConns++
		if cs.DidResume {
			s.stats.Resumed++
		}
		s.mu.Unlock()
		if opts.RequireReuse && !cs.DidResume {
			return errors.New("ftpstest: data connection did not resume the control TLS session (session reuse required)")
		}
		return nil
	}

	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ftpstest: listen: %w", err)
	}
	s.bAddr = bl.Addr().String()
	s.backend = ftpserver.NewFtpServer(&driver{s: s})
	s.backend.Logger = s.log
	s.backendSettings = &ftpserver.Settings{
		Listener:                 bl,
		PublicHost:               "127.0.0.1",
		Banner:                   "camftpd ftpstest",
		TLSRequired:              ftpserver.ClearOrEncrypted, // enforced by the front proxy
		EnableHASH:               !opts.NoHash,
		DisableActiveMode:        true,
		DefaultTransferType:      ftpserver.TransferTypeBinary,
		DisableASCIIConversion:   true,
		ConnectionTimeout:        10,
		IdleTimeout:              300,
		PasvConnectionsCheck:     ftpserver.IPMatchRequired,
		PassiveTransferPortRange: nil,
	}
	if err := s.backend.Listen(); err != nil {
		bl.Close()
		return nil, fmt.Errorf("ftpstest: %w", err)
	}
	s.wg.Go(func() { _ = s.backend.Serve() })

	s.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ftpstest: listen: %w", err)
	}
	s.Addr = s.ln.Addr().String()
	s.Host = "127.0.0.1"
	s.Port = s.ln.Addr().(*net.TCPAddr).Port
	s.wg.Go(s.acceptLoop)
	ok = true
	return s, nil
}

// Close stops the server, cuts every connection and removes a temp root.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	sess := make([]*session, 0, len(s.sessions))
	for _, x := range s.sessions {
		sess = append(sess, x)
	}
	s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
	}
	for _, x := range sess {
		x.close()
	}
	if s.backend != nil {
		_ = s.backend.Stop()
	}
	s.wg.Wait()
	if s.tempDir != "" {
		os.RemoveAll(s.tempDir)
	}
	return nil
}

// DropSessions closes every open control connection at once, the way a
// server's idle timeout or a restart drops the clients' idle connections.
func (s *Server) DropSessions() {
	s.mu.Lock()
	sess := make([]*session, 0, len(s.sessions))
	for _, x := range s.sessions {
		sess = append(sess, x)
	}
	s.mu.Unlock()
	for _, x := range sess {
		x.close()
	}
}

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f.clone()
	s.mu.Unlock()
}

// UpdateFaults changes the injected faults under the server's lock.
func (s *Server) UpdateFaults(fn func(*Faults)) {
	s.mu.Lock()
	f := s.faults.clone()
	fn(&f)
	s.faults = f.clone()
	s.mu.Unlock()
}

// Faults returns a copy of the current faults.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.clone()
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Commands = append([]string(nil), s.stats.Commands...)
	st.StorsTo = make(map[string]int, len(s.stats.StorsTo))
	for k, v := range s.stats.StorsTo {
		st.StorsTo[k] = v
	}
	st.RenamesTo = make(map[string]int, len(s.stats.RenamesTo))
	for k, v := range s.stats.RenamesTo {
		st.RenamesTo[k] = v
	}
	return st
}

// Commands returns the command log (PASS redacted).
func (s *Server) Commands() []string { return s.Stats().Commands }

// ResetStats zeroes the counters and the command log.
func (s *Server) ResetStats() {
	s.mu.Lock()
	s.stats = Stats{}
	s.mu.Unlock()
}

// Path returns the local path of a remote path (relative to Root).
func (s *Server) Path(remote string) string {
	return s.Root + "/" + strings.TrimLeft(remote, "/")
}

func (s *Server) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.wg.Go(func() { s.serve(c) })
	}
}

// session is one client: the front (client side) and the clear control
// connection to ftpserverlib.
type session struct {
	s       *Server
	raw     net.Conn
	backend net.Conn

	wmu sync.Mutex // guards cw and writes to the client
	cw  io.Writer

	cut       atomic.Bool  // a data connection of this session was cut
	cutBytes  atomic.Int64 // where
	closeOnce sync.Once
	gone      chan struct{}
}

func (x *session) close() {
	x.closeOnce.Do(func() {
		close(x.gone)
		x.raw.Close()
		if x.backend != nil {
			x.backend.Close()
		}
	})
}

func (x *session) reply(line string) {
	x.wmu.Lock()
	defer x.wmu.Unlock()
	if _, err := io.WriteString(x.cw, line+"\r\n"); err != nil {
		x.s.log.Debug("ftpstest: write to client", "err", err)
	}
}

func (s *Server) serve(raw net.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		raw.Close()
		return
	}
	s.stats.Connections++
	f := s.faults
	s.mu.Unlock()

	x := &session{s: s, raw: raw, cw: raw, gone: make(chan struct{})}
	defer x.close()
	if f.Delay > 0 {
		if !x.sleep(f.Delay) {
			return
		}
	}
	if f.Reply421OnConnect {
		x.reply("421 Service not available, closing control connection (ftpstest fault)")
		return
	}
	b, err := net.Dial("tcp", s.bAddr)
	if err != nil {
		x.reply("421 Service not available: " + err.Error())
		return
	}
	x.backend = b
	key := b.LocalAddr().String()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		b.Close()
		return
	}
	s.sessions[key] = x
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, key)
		s.mu.Unlock()
	}()

	// Backend replies to the client.
	var pump sync.WaitGroup
	pump.Go(func() {
		defer x.close()
		x.pumpReplies(bufio.NewReader(b))
	})
	x.commands()
	x.close()
	pump.Wait()
}

// sleep waits d unless the session or server ends first.
func (x *session) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-x.gone:
		return false
	case <-x.s.done:
		return false
	}
}

var transferCmds = map[string]bool{"STOR": true, "APPE": true, "RETR": true, "LIST": true, "NLST": true, "MLSD": true, "STOU": true}

func (x *session) commands() {
	s := x.s
	r := bufio.NewReader(x.raw)
	tlsOn, protP, loggedIn := false, false, false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		logged := line
		if verb == "PASS" {
			logged = "PASS ****"
		}
		s.mu.Lock()
		s.stats.Commands = append(s.stats.Commands, logged)
		if verb == "STOR" || verb == "APPE" {
			s.stats.Stors++
		}
		f := s.faults
		s.mu.Unlock()
		if f.Delay > 0 && !x.sleep(f.Delay) {
			return
		}
		if rep, ok := f.Replies[verb]; ok {
			x.reply(rep)
			continue
		}
		switch {
		case verb == "AUTH":
			a := strings.ToUpper(strings.TrimSpace(arg))
			if tlsOn {
				x.reply("503 TLS already active")
				continue
			}
			if a != "TLS" && a != "SSL" && a != "TLS-C" {
				x.reply("504 Unknown AUTH type")
				continue
			}
			x.reply("234 Proceed with negotiation.")
			if hf := s.takeHandshakeFault(); hf != NoHandshakeFault {
				x.failHandshake(hf)
				return
			}
			tc := tls.Server(x.raw, s.ctlCfg)
			_ = x.raw.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tc.Handshake(); err != nil {
				s.log.Debug("ftpstest: control TLS handshake", "err", err)
				return
			}
			_ = x.raw.SetDeadline(time.Time{})
			x.wmu.Lock()
			x.cw = tc
			x.wmu.Unlock()
			r = bufio.NewReader(tc)
			tlsOn = true
			continue
		case !tlsOn && (verb == "USER" || verb == "PASS"):
			x.reply("530 Non-anonymous sessions must use encryption (AUTH TLS first).")
			continue
		case verb == "PROT":
			switch strings.ToUpper(strings.TrimSpace(arg)) {
			case "P":
				protP = true
			case "C":
				x.reply("534 PROT C refused: data connections must be encrypted.")
				continue
			}
		case transferCmds[verb] && !protP && loggedIn:
			x.reply("522 Data connections must be encrypted (PROT P).")
			continue
		case (verb == "STOR" || verb == "APPE") && f.Reply452OnStor && loggedIn:
			x.reply("452 Insufficient storage space in system (ftpstest fault).")
			continue
		case s.opts.NoHash && isHashCmd(verb):
			x.reply("502 Command not implemented.")
			continue
		case verb == "PASS":
			loggedIn = true // tentatively; the backend answers 530 otherwise
		}
		if _, err := io.WriteString(x.backend, line+"\r\n"); err != nil {
			return
		}
	}
}

func isHashCmd(v string) bool {
	switch v {
	case "HASH", "XCRC", "MD5", "XMD5", "XSHA", "XSHA1", "XSHA256", "XSHA512":
		return true
	}
	return false
}

// pumpReplies forwards backend replies, rewriting FEAT (HASH line,
// hidden features) and the final reply of a cut transfer (426).
func (x *session) pumpReplies(br *bufio.Reader) {
	inFeat := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		code := 0
		final := false
		if len(line) >= 4 && line[3] == ' ' || len(line) == 3 {
			code, _ = strconv.Atoi(line[:3])
			final = code > 0
		}
		if len(line) >= 4 && line[3] == '-' {
			if c, err := strconv.Atoi(line[:3]); err == nil && c == 211 {
				inFeat = true
			}
		}
		if inFeat && !final && strings.HasPrefix(line, " ") {
			feat := strings.TrimSpace(line)
			if strings.Contains(feat, "SHA-256") && !strings.HasPrefix(feat, "HASH ") {
				// ftpserverlib omits the "HASH " keyword (RFC draft-bryan-ftpext-hash).
				feat = "HASH " + strings.TrimSuffix(feat, ";")
			}
			if x.s.opts.NoHash && (strings.HasPrefix(feat, "HASH") || isHashCmd(feat)) {
				continue
			}
			if strings.HasPrefix(feat, "AUTH TLS") {
				feat = "AUTH TLS"
			}
			hidden := false
			for _, h := range x.s.Faults().HideFeatures {
				if h != "" && strings.Contains(feat, h) {
					hidden = true
				}
			}
			if hidden {
				continue
			}
			line = " " + feat
		}
		if final {
			inFeat = false
			if code >= 200 && x.cut.Swap(false) {
				line = fmt.Sprintf("426 Connection closed; transfer aborted after %d bytes (ftpstest fault).", x.cutBytes.Load())
			}
		}
		x.reply(line)
		if code == 221 {
			return
		}
	}
}

// driver is ftpserverlib's MainDriver.
type driver struct{ s *Server }

func (d *driver) GetSettings() (*ftpserver.Settings, error) { return d.s.backendSettings, nil }
func (d *driver) ClientConnected(cc ftpserver.ClientContext) (string, error) {
	return "camftpd ftpstest ready", nil
}
func (d *driver) ClientDisconnected(cc ftpserver.ClientContext) {}
func (d *driver) GetTLSConfig() (*tls.Config, error)            { return d.s.dataCfg, nil }

func (d *driver) AuthUser(cc ftpserver.ClientContext, user, pass string) (ftpserver.ClientDriver, error) {
	s := d.s
	if user != s.opts.User || pass != s.opts.Password {
		return nil, errors.New("login incorrect")
	}
	s.mu.Lock()
	x := s.sessions[cc.RemoteAddr().String()]
	s.stats.Logins++
	s.mu.Unlock()
	if x == nil {
		return nil, errors.New("unknown session")
	}
	return &fsys{Fs: afero.NewBasePathFs(afero.NewOsFs(), s.Root), x: x}, nil
}

// WrapPassiveListener refuses data connections from anywhere but loopback.
func (d *driver) WrapPassiveListener(l net.Listener) (net.Listener, error) {
	return loopbackOnly{l}, nil
}

type loopbackOnly struct{ net.Listener }

func (l loopbackOnly) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if a, ok := c.RemoteAddr().(*net.TCPAddr); ok && a.IP.IsLoopback() {
			return c, nil
		}
		c.Close()
	}
}

// fsys is the per-client file system: the OS directory, with uploads
// counted and faults applied.
type fsys struct {
	afero.Fs
	x *session
}

func (f *fsys) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	file, err := f.Fs.OpenFile(name, flag, perm)
	if err != nil || flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return file, err
	}
	// ftpserverlib opens a file for writing for STOR and APPE only.
	s := f.x.s
	s.mu.Lock()
	if s.stats.StorsTo == nil {
		s.stats.StorsTo = map[string]int{}
	}
	s.stats.StorsTo[cleanPath(name)]++
	stallNew := s.faults.Stall && s.faults.StallNew
	s.mu.Unlock()
	return &upload{File: file, x: f.x, stallNew: stallNew}, nil
}

// Rename moves the STOR count of the file with it (Stats.StorsTo).
func (f *fsys) Rename(oldname, newname string) error {
	if err := f.Fs.Rename(oldname, newname); err != nil {
		return err
	}
	s := f.x.s
	from, to := cleanPath(oldname), cleanPath(newname)
	s.mu.Lock()
	if s.stats.StorsTo == nil {
		s.stats.StorsTo = map[string]int{}
	}
	if s.stats.RenamesTo == nil {
		s.stats.RenamesTo = map[string]int{}
	}
	if n, ok := s.stats.StorsTo[from]; ok {
		s.stats.StorsTo[to] += n
		delete(s.stats.StorsTo, from)
	}
	s.stats.RenamesTo[to]++
	s.mu.Unlock()
	return nil
}

// Remove drops the STOR count of the deleted file (Stats.StorsTo).
func (f *fsys) Remove(name string) error {
	if err := f.Fs.Remove(name); err != nil {
		return err
	}
	s := f.x.s
	s.mu.Lock()
	delete(s.stats.StorsTo, cleanPath(name))
	s.mu.Unlock()
	return nil
}

func cleanPath(p string) string { return path.Clean("/" + filepath.ToSlash(p)) }

func (f *fsys) Create(name string) (afero.File, error) {
	return f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// upload counts bytes and applies CutAfterBytes, Stall and DataRate.
type upload struct {
	afero.File
	x       *session
	written int64
	cutAt   int64 // decided at first write: -1 none
	decided bool
	// stallNew: opened while Faults.StallNew and Stall were set.
	stallNew bool
}

var errCut = errors.New("ftpstest: data connection cut (CutAfterBytes fault)")

func (u *upload) Write(p []byte) (int, error) {
	s := u.x.s
	if !u.decided {
		u.decided = true
		u.cutAt = -1
		s.mu.Lock()
		if s.faults.CutAfterBytes > 0 {
			u.cutAt = s.faults.CutAfterBytes
			if !s.faults.CutEvery {
				s.faults.CutAfterBytes = 0
			}
		}
		s.mu.Unlock()
	}
	total := 0
	for len(p) > 0 {
		f := s.Faults()
		f.Stall = f.Stall && (!f.StallNew || u.stallNew)
		if f.Stall && u.written >= f.StallAfterBytes {
			if !u.x.sleep(5 * time.Millisecond) {
				return total, errors.New("ftpstest: stalled connection closed")
			}
			continue
		}
		chunk := p
		if f.Stall && int64(len(chunk)) > f.StallAfterBytes-u.written {
			chunk = chunk[:f.StallAfterBytes-u.written]
		}
		if u.cutAt >= 0 && int64(len(chunk)) > u.cutAt-u.written {
			chunk = chunk[:u.cutAt-u.written]
		}
		if f.DataRate > 0 {
			if len(chunk) > 16384 {
				chunk = chunk[:16384]
			}
			if !u.x.sleep(time.Duration(int64(len(chunk)) * int64(time.Second) / f.DataRate)) {
				return total, errors.New("ftpstest: throttled connection closed")
			}
		}
		n, err := u.File.Write(chunk)
		u.written += int64(n)
		total += n
		s.mu.Lock()
		s.stats.BytesReceived += int64(n)
		s.mu.Unlock()
		p = p[n:]
		if err != nil {
			return total, err
		}
		if u.cutAt >= 0 && u.written >= u.cutAt {
			s.mu.Lock()
			s.stats.Cuts++
			s.mu.Unlock()
			u.x.cutBytes.Store(u.written)
			u.x.cut.Store(true)
			if f.CutDropsControl {
				u.x.close()
			}
			return total, errCut
		}
	}
	return total, nil
}
