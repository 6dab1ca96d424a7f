package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camftpd/camftpd/transfer"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// TestConnOptionsConfig: secure and passive default to true; secure =
// false with a TLS-only key, active_ports with passive = true, and a bad
// range are each an error at their line with a fix; passive = false and
// secure = false alone are accepted.
func TestConnOptionsConfig(t *testing.T) {
	head := "media_dir = \"/m\"\nstate_dir = \"/s\"\n[[server]]\nhost = \"h\"\nuser = \"u\"\npassword = \"p\"\n"
	cfg, err := ParseConfig("d.toml", head)
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Servers[0]; !s.Secure || !s.Passive || s.ActivePorts != [2]int{} {
		t.Fatalf("defaults: %+v", s)
	}
	cfg, err = ParseConfig("d.toml", head+"secure = false\npassive = false\nactive_ports = \"50000-50009\"\n")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Servers[0]
	if s.Secure || s.Passive || s.ActivePorts != [2]int{50000, 50009} || s.Security() != transfer.PlainWarning {
		t.Fatalf("secure = false, passive = false: %+v", s)
	}
	var tc transfer.Config
	s.applyConnOptions(&tc)
	if !tc.Plain || tc.TLS != nil || !tc.Active || tc.ActivePorts != [2]int{50000, 50009} {
		t.Fatalf("transfer options %+v", tc)
	}
	bad := []struct{ lines, key string }{
		{"secure = false\npins = [\"sha256/AAAA\"]\n", "server[0].pins"},
		{"secure = false\ntls_mode = \"recommended\"\n", "server[0].tls_mode"},
		{"secure = false\nmax_tls12 = true\n", "server[0].max_tls12"},
		{"secure = false\nca_files = []\n", "server[0].ca_files"},
		{"active_ports = \"50000-50009\"\n", "server[0].active_ports"},
		{"passive = false\nactive_ports = \"80-90\"\n", "server[0].active_ports"},
		{"passive = false\nactive_ports = \"50009-50000\"\n", "server[0].active_ports"},
		{"passive = false\nactive_ports = \"50000\"\n", "server[0].active_ports"},
	}
	for _, b := range bad {
		_, err := ParseConfig("d.toml", head+b.lines)
		var ces ConfigErrors
		if !errors.As(err, &ces) {
			t.Fatalf("%q: want a config error, got %v", b.lines, err)
		}
		found := false
		for _, e := range ces {
			if e.Key == b.key && e.Line == strings.Count(head, "\n")+strings.Count(b.lines, "\n") && e.Fix != "" {
				found = true
			}
		}
		if !found {
			t.Fatalf("%q: no error for %s at its line: %v", b.lines, b.key, err)
		}
		t.Log(err)
	}
}

// logRecorder keeps the message and "cmd" attribute of every record and
// passes them on to the test log.
type logRecorder struct {
	mu   *sync.Mutex
	recs *[][2]string
	next slog.Handler
}

func (r logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r logRecorder) WithAttrs(a []slog.Attr) slog.Handler {
	r.next = r.next.WithAttrs(a)
	return r
}
func (r logRecorder) WithGroup(g string) slog.Handler { r.next = r.next.WithGroup(g); return r }
func (r logRecorder) Handle(ctx context.Context, x slog.Record) error {
	cmd := ""
	x.Attrs(func(a slog.Attr) bool {
		if a.Key == "cmd" {
			cmd = a.Value.String()
		}
		return true
	})
	r.mu.Lock()
	*r.recs = append(*r.recs, [2]string{x.Message, cmd})
	r.mu.Unlock()
	return r.next.Handle(ctx, x)
}

func (r logRecorder) count(msg, cmd string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range *r.recs {
		if (msg == "" || x[0] == msg) && (cmd == "" || x[1] == cmd) {
			n++
		}
	}
	return n
}

// TestPlainActiveDaemon: a daemon with secure = false and passive = false
// sends every capture to vsftpd running plain FTP only, over active data
// connections; the plain FTP warning is logged on every control connection
// (as many warnings as logins), status says it (GET /status's security
// field and `camftpd status`), and `camftpd check` warns (exit 1).
func TestPlainActiveDaemon(t *testing.T) {
	srv, err := ftpstest.StartVsftpd(ftpstest.RealOptions{Plain: true, Active: true})
	if err != nil {
		t.Fatalf("start vsftpd: %v (install the servers with `scripts/ftpservers install`)", err)
	}
	defer srv.Close()
	dir := t.TempDir()
	media := filepath.Join(dir, "media", "DCIM")
	if err := os.MkdirAll(media, 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "camftpd.toml")
	src := fmt.Sprintf(`media_dir = %q
state_dir = %q
status_socket = %q
storage_mount = ""
interface = ""
settle = "200ms"
workers = 2
[[server]]
name = "plain"
host = "127.0.0.1"
port = %d
user = %q
password = %q
secure = false
passive = false
timeout = "5s"
connect_timeout = "3s"
`, media, filepath.Join(dir, "state"), filepath.Join(dir, "s.sock"), srv.Port, srv.User, srv.Password)
	if err := os.WriteFile(cfgPath, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rec := logRecorder{mu: &sync.Mutex{}, recs: &[][2]string{}, next: testLogger(t).Handler()}
	d, _, _ := startDaemon(t, cfg, slog.New(rec))
	burst(t, media, 6, 20, nil)
	waitAllDone(t, d, 6, within(60*time.Second))
	verifyArrived(t, media, srv.Root)
	logins := rec.count("", "TYPE") // one TYPE I per control connection
	if w := rec.count(transfer.PlainWarning, ""); w != logins || w == 0 {
		t.Fatalf("%d plain FTP warnings for %d control connections", w, logins)
	}
	if rec.count("", "EPRT") == 0 || rec.count("", "EPSV")+rec.count("", "PASV") != 0 {
		t.Fatalf("active mode: %d EPRT, %d EPSV/PASV", rec.count("", "EPRT"), rec.count("", "EPSV")+rec.count("", "PASV"))
	}
	st := d.Status()
	if st.Security != transfer.PlainWarning || !strings.HasPrefix(st.DataMode, "active") {
		t.Fatalf("status security %q, data mode %q", st.Security, st.DataMode)
	}
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"status", "-config", cfgPath}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "security:   "+transfer.PlainWarning) {
		t.Fatalf("camftpd status: %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	if code := Main(context.Background(), []string{"check", "-config", cfgPath}, &out, &errb); code != 1 ||
		!strings.Contains(out.String(), "WARN: "+transfer.PlainWarning) ||
		!regexp.MustCompile(`(?m)^  data +warn +active \(EPRT\), plain FTP`).MatchString(out.String()) {
		t.Fatalf("camftpd check: %d\n%s%s", code, out.String(), errb.String())
	}
	t.Log(out.String())
}
