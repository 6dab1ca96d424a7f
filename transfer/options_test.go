package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// recorder is a slog.Handler that keeps every record's level, message and
// "cmd" attribute (the FTP commands the session sent, logged at debug),
// and passes records to the test log at Info and above.
type recorder struct {
	mu   sync.Mutex
	recs []rec
	next slog.Handler
}

type rec struct {
	level slog.Level
	msg   string
	cmd   string
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelDebug }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler           { return r }
func (r *recorder) WithGroup(string) slog.Handler                { return r }
func (r *recorder) Handle(ctx context.Context, x slog.Record) error {
	c := rec{level: x.Level, msg: x.Message}
	x.Attrs(func(a slog.Attr) bool {
		if a.Key == "cmd" {
			c.cmd = a.Value.String()
		}
		return true
	})
	r.mu.Lock()
	r.recs = append(r.recs, c)
	r.mu.Unlock()
	if x.Level >= slog.LevelInfo {
		return r.next.Handle(ctx, x)
	}
	return nil
}

// count returns how many records match: level and msg when msg != "",
// cmd when cmd != "".
func (r *recorder) count(level slog.Level, msg, cmd string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.recs {
		if (msg == "" || c.level == level && c.msg == msg) && (cmd == "" || c.cmd == cmd) {
			n++
		}
	}
	return n
}

func recordLogger(t testing.TB) (*slog.Logger, *recorder) {
	r := &recorder{next: testLogger(t).Handler()}
	return slog.New(r), r
}

// startOptTarget starts a real server with RealOptions o.
func startOptTarget(t testing.TB, name string, o ftpstest.RealOptions) *target {
	t.Helper()
	return startTargetWith(t, name, ftpstest.Options{}, o)
}

// plainConfig is tg's configuration for plain FTP (secure = false).
func plainConfig(t testing.TB, tg *target, log *slog.Logger) Config {
	return Config{Host: tg.host, Port: tg.port, User: tg.user, Password: tg.pass, Plain: true,
		Timeout: 5 * time.Second, ConnectTimeout: 5 * time.Second, Logger: log}
}

// TestPlainFTP: with Plain (secure = false) a file reaches vsftpd, ProFTPD
// and Pure-FTPd running plain FTP only, in passive and in active mode,
// with the warning logged once per control connection (three Clients:
// three warnings) and no AUTH TLS sent; the same servers with TLS
// required by the client (Plain false) get no login and no file: never a
// fallback to plain FTP.
func TestPlainFTP(t *testing.T) {
	// Every server is started (forked) before any upload: a child between
	// fork and exec holds the test's open files, and a local file still
	// open for writing elsewhere is not sent (ErrStillWriting).
	tgs := map[string]*target{}
	for _, server := range ftpstest.RealServers() {
		tgs[server] = startOptTarget(t, server, ftpstest.RealOptions{Plain: true, Active: true})
	}
	for _, server := range ftpstest.RealServers() {
		tg := tgs[server]
		t.Run(server, func(t *testing.T) {
			t.Parallel()
			for _, active := range []bool{false, true} {
				mode := map[bool]string{false: "passive", true: "active"}[active]
				t.Run(mode, func(t *testing.T) {
					log, rec := recordLogger(t)
					cfg := plainConfig(t, tg, log)
					cfg.Active = active
					caseUpload(t, tg, cfg, "plain/"+mode)
					caseRenameIntent(t, tg, cfg, "plain/"+mode+"/intent")
					caseSameShot(t, tg, cfg, "plain/"+mode+"/same")
					if !active { // the login's error, not "refused AUTH TLS" (logged apart: it makes no TYPE)
						auth := cfg
						auth.Logger = testLogger(t)
						caseAuth(t, tg, auth, "plain/auth")
					}
					conns := rec.count(slog.LevelDebug, "", "TYPE") // one TYPE I per control connection
					if w := rec.count(slog.LevelWarn, PlainWarning, ""); w != conns || w < 3 {
						t.Fatalf("%d plain FTP warnings for %d control connections", w, conns)
					}
					if n := rec.count(slog.LevelDebug, "", "EPRT") + rec.count(slog.LevelDebug, "", "PORT"); active != (n > 0) {
						t.Fatalf("active %v, %d EPRT/PORT commands sent", active, n)
					}
				})
			}
			t.Run("one-client", func(t *testing.T) { plainOneClient(t, tg) })
			t.Run("no-fallback", func(t *testing.T) {
				// Pure-FTPd logs only transfers; the others log every command.
				m := map[string]string{"vsftpd": `"USER `, "proftpd": `cmd="USER `}[tg.name]
				users := strings.Count(tg.real.LogText(), m)
				p, _ := localFile(t, 1000)
				cfg := tg.config(t, false)
				_, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: "nofallback/IMG.JPG"})
				if ClassOf(err) != TLSPolicy || !strings.Contains(err.Error(), "AUTH TLS") {
					t.Fatalf("secure upload to a plain-only server: %v (class %v), want a tls-policy error naming AUTH TLS", err, ClassOf(err))
				}
				if exists(tg, "nofallback/IMG.JPG") {
					t.Fatal("file uploaded without TLS")
				}
				if m != "" && strings.Count(tg.real.LogText(), m) != users {
					t.Fatal("the login was sent to a server that refused AUTH TLS")
				}
				t.Log(err)
			})
		})
	}
}

// activeCases are the conformance cases run in active mode against vsftpd
// (every case a real server can run); the other servers run activeFew.
var activeFew = map[string]bool{"upload": true, "resume-restart": true, "rename-intent": true, "same-shot": true}

// TestActiveFTPES: with Active (passive = false) uploads to vsftpd,
// ProFTPD and Pure-FTPd over FTPES announce the data connection with EPRT
// and never ask for a passive one (except endRetr's probe after a cut
// download), the data connections resume the control session (vsftpd and
// ProFTPD require it: the uploads would fail), and the exactly-once cases
// (intent, same shot read back with RETR, resume) pass as in passive mode.
func TestActiveFTPES(t *testing.T) {
	// Every server is started (forked) before any upload: a child between
	// fork and exec holds the test's open files, and a local file still
	// open for writing elsewhere is not sent (ErrStillWriting).
	tgs := map[string]*target{}
	for _, server := range ftpstest.RealServers() {
		tgs[server] = startOptTarget(t, server, ftpstest.RealOptions{Active: true})
	}
	for _, server := range ftpstest.RealServers() {
		tg := tgs[server]
		t.Run(server, func(t *testing.T) {
			t.Parallel()
			for _, cc := range confCases {
				if cc.inproc || server != "vsftpd" && !activeFew[cc.name] {
					continue
				}
				t.Run(cc.name, func(t *testing.T) {
					log, rec := recordLogger(t)
					cfg := tg.config(t, false)
					var checked atomic.Int64 // handshakes that passed the policy
					cfg.TLS = tg.tlsConfigFunc(t, false, func(tlspolicy.Negotiated) { checked.Add(1) })
					cfg.Logger, cfg.Active = log, true
					cc.run(t, tg, cfg, "active/"+cc.name)
					eprt := rec.count(slog.LevelDebug, "", "EPRT")
					pasv := rec.count(slog.LevelDebug, "", "EPSV") + rec.count(slog.LevelDebug, "", "PASV")
					logins := rec.count(slog.LevelDebug, "", "TYPE")
					if cc.name == "upload" && (eprt == 0 || pasv != 0 || checked.Load() != int64(logins+eprt)) {
						t.Fatalf("%d EPRT, %d EPSV/PASV in active mode; %d handshakes checked by the policy for %d control and %d data connections",
							eprt, pasv, checked.Load(), logins, eprt)
					}
				})
			}
		})
	}
}

// TestActivePorts: in active mode with ActivePorts, the port announced is
// in the range (vsftpd's protocol log shows the EPRT line); a port range
// outside 1024-65535 is refused at New.
func TestActivePorts(t *testing.T) {
	tg := startOptTarget(t, "vsftpd", ftpstest.RealOptions{Active: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := tg.config(t, false)
	cfg.Active, cfg.ActivePorts = true, [2]int{port, port}
	p, data := localFile(t, 70<<10)
	if _, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: "ports/IMG.JPG"}); err != nil {
		t.Fatal(err)
	}
	wantFile(t, tg, "ports/IMG.JPG", data)
	if log := tg.real.LogText(); !strings.Contains(log, "EPRT |1|127.0.0.1|"+strconv.Itoa(port)+"|") {
		t.Fatalf("no EPRT with port %d in vsftpd's log", port)
	}
	for _, r := range [][2]int{{80, 90}, {5000, 4000}, {60000, 70000}} {
		cfg.ActivePorts = r
		if _, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: "ports/bad.JPG"}); ClassOf(err) != Permanent || !strings.Contains(err.Error(), "active ports") {
			t.Fatalf("ports %v: %v", r, err)
		}
	}
}

// TestPlainWithTLS: Plain and a TLS config together are a configuration
// error (which of the two was meant?).
func TestPlainWithTLS(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	cfg := tg.config(t, false)
	cfg.Plain = true
	p, _ := localFile(t, 10)
	if _, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: "x.jpg"}); ClassOf(err) != Permanent || !strings.Contains(err.Error(), "plain FTP with a TLS") {
		t.Fatalf("%v", err)
	}
	if n := len(tg.inproc.Commands()); n != 0 {
		t.Fatalf("%d commands sent with a refused configuration", n)
	}
}

// TestActiveAcceptOnlyServer: in active mode a connection to the data
// listener from another address than the server's is closed unread, and
// the server's is taken.
func TestActiveAcceptOnlyServer(t *testing.T) {
	c := New(Config{Host: "127.0.0.1", TLS: nil, Plain: true, Timeout: 5 * time.Second, Logger: testLogger(t)})
	s := &session{c: c, ip: "127.0.0.1", local: net.IPv4(127, 0, 0, 1)}
	ln, err := s.listenActive()
	if err != nil {
		t.Fatal(err)
	}
	dc := &dataConn{ln: ln}
	defer s.abortData(dc)
	addr := ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- s.acceptData(context.Background(), dc) }()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	intruder, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	if err := intruder.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := intruder.Read(make([]byte, 1)); !isClosedErr(err) {
		t.Fatalf("connection from 127.0.0.2 not closed: %v", err)
	}
	srv, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if dc.raw.RemoteAddr().String() != srv.LocalAddr().String() {
		t.Fatalf("took %s, want the server's %s", dc.raw.RemoteAddr(), srv.LocalAddr())
	}
}

// TestActiveNoConnectBack: a server that never connects back (its
// connection to the camera is blocked) fails the upload within about
// Timeout with a transient error that says so and names passive mode.
func TestActiveNoConnectBack(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	tg.inproc.SetFaults(ftpstest.Faults{Replies: map[string]string{"EPRT": "200 EPRT ok (but never connects)", "STOR": "150 go ahead"}})
	cfg := tg.config(t, false)
	cfg.Active, cfg.Timeout = true, 2*time.Second
	p, _ := localFile(t, 1000)
	start := time.Now()
	_, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: "x.jpg", Fresh: true})
	if ClassOf(err) != Transient || !strings.Contains(err.Error(), "did not connect back") || !strings.Contains(err.Error(), "passive = true") {
		t.Fatalf("%v (class %v)", err, ClassOf(err))
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Fatalf("took %s", el)
	}
	t.Log(err)
}

// plainOneClient: two uploads at once on one Client open two control
// connections, and each logs the warning (not once per Client).
func plainOneClient(t *testing.T, tg *target) {
	log, rec := recordLogger(t)
	c := New(plainConfig(t, tg, log))
	defer c.Close()
	var both sync.WaitGroup
	both.Add(2)
	errs := make(chan error, 2)
	for i := range 2 {
		p, _ := localFile(t, 256<<10)
		remote := fmt.Sprintf("plain/one-client/IMG_%d.JPG", i)
		started := false
		go func() {
			_, err := c.Upload(context.Background(), Job{LocalPath: p, Remote: remote, Progress: func(int64, int64) {
				if !started { // hold the first bytes until the other upload has its own connection
					started = true
					both.Done()
					both.Wait()
				}
			}})
			if !started { // failed before sending: do not hold the other one
				both.Done()
			}
			if err == nil && !exists(tg, remote) {
				err = fmt.Errorf("%s not on the server", remote)
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if w, conns := rec.count(slog.LevelWarn, PlainWarning, ""), rec.count(slog.LevelDebug, "", "TYPE"); w != 2 || conns != 2 {
		t.Fatalf("%d plain FTP warnings for %d control connections of one Client; want 2 and 2", w, conns)
	}
}

// TestActivePortFallback: a server that refuses EPRT (ProFTPD with
// <Limit EPRT> DenyAll) gets PORT, from then on without trying EPRT again,
// and uploads with their read-back (same-shot) work over the connections
// it opens to the client.
func TestActivePortFallback(t *testing.T) {
	tg := startOptTarget(t, "proftpd", ftpstest.RealOptions{Active: true, Extra: []string{"<Limit EPRT>", "DenyAll", "</Limit>"}})
	log, rec := recordLogger(t)
	cfg := tg.config(t, false)
	cfg.Logger, cfg.Active, cfg.SameName = log, true, Skip
	c := New(cfg)
	defer c.Close()
	p, data := localFile(t, 200<<10)
	for i := range 2 {
		res, err := c.Upload(context.Background(), Job{LocalPath: p, Remote: "port/IMG.JPG", TempID: fmt.Sprint("pf", i)})
		if err != nil || res.Existing != (i == 1) {
			t.Fatalf("upload %d: %+v, %v", i, res, err)
		}
		wantFile(t, tg, "port/IMG.JPG", data)
	}
	if e, p := rec.count(slog.LevelDebug, "", "EPRT"), rec.count(slog.LevelDebug, "", "PORT"); e != 1 || p < 2 {
		t.Fatalf("%d EPRT, %d PORT: want EPRT once, then PORT for each data connection", e, p)
	}
}

// BenchmarkDataMode uploads a 256 KiB file over FTPES to vsftpd, on one
// warm Client per mode, in passive and in active mode side by side: what
// the server connecting back (EPRT, accept) costs per file against EPSV.
func BenchmarkDataMode(b *testing.B) {
	tg := startOptTarget(b, "vsftpd", ftpstest.RealOptions{Active: true, NoLog: true, AnyPassword: true})
	p, _ := localFile(b, 256<<10)
	for _, active := range []bool{false, true} {
		b.Run(map[bool]string{false: "passive", true: "active"}[active], func(b *testing.B) {
			cfg := tg.config(b, false)
			cfg.Active, cfg.Logger = active, slog.New(slog.DiscardHandler)
			c := New(cfg)
			defer c.Close()
			for i := 0; b.Loop(); i++ {
				if _, err := c.Upload(context.Background(), Job{LocalPath: p, Remote: "bench/IMG.JPG", TempID: fmt.Sprint("b", i), Fresh: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPlainConfigChecked: Plain skips only the TLS configuration's check:
// a missing host, a bad port or an unknown same-name policy is still a
// configuration error.
func TestPlainConfigChecked(t *testing.T) {
	p, _ := localFile(t, 10)
	for _, cfg := range []Config{
		{Plain: true},
		{Plain: true, Host: "127.0.0.1", Port: 70000},
		{Plain: true, Host: "127.0.0.1", SameName: "replace"},
		{Plain: true, Host: "127.0.0.1", Active: true, ActivePorts: [2]int{100, 200}},
	} {
		_, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: "x.jpg"})
		var e *Error
		if !errors.As(err, &e) || e.Op != "config" || e.Class != Permanent {
			t.Fatalf("%+v: %v, want a configuration error", cfg, err)
		}
		t.Log(err)
	}
}

// TestActiveCancel: canceling while the session waits for the server to
// connect back ends the upload at once (the listener is closed), not
// after Timeout.
func TestActiveCancel(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	tg.inproc.SetFaults(ftpstest.Faults{Replies: map[string]string{"EPRT": "200 EPRT ok (but never connects)", "STOR": "150 go ahead"}})
	cfg := tg.config(t, false)
	cfg.Active, cfg.Timeout = true, 30*time.Second
	p, _ := localFile(t, 1000)
	c := New(cfg)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Upload(ctx, Job{LocalPath: p, Remote: "x.jpg", Fresh: true})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v, want the context's error", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("returned %s after the cancel, want at once", el)
	}
}
