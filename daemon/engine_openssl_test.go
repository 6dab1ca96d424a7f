//go:build openssl

package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// TestEngineCapture: the openssl build against a vsftpd that accepts only
// TLS_RSA_WITH_AES_256_CBC_SHA256 (TLS 1.2; crypto/tls lacks it): the
// daemon uploads the capture once, through OpenSSL, and status says so.
func TestEngineCapture(t *testing.T) {
	r, err := ftpstest.StartVsftpd(ftpstest.RealOptions{MaxTLS12: true, Ciphers: "AES256-SHA256", AnyPassword: true})
	if err != nil {
		t.Fatal(err) // no skip: a missing vsftpd fails (scripts/ftpservers install)
	}
	t.Cleanup(func() { _ = r.Close() })
	dir := t.TempDir()
	media, state := filepath.Join(dir, "media", "DCIM"), filepath.Join(dir, "state")
	for _, p := range []string{media, state} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "camftpd.toml")
	text := fmt.Sprintf(`media_dir = %q
state_dir = %q
status_socket = %q
storage_mount = ""
interface = ""
settle = "50ms"
backlog = "all"
workers = 1
retry_min = "200ms"
retry_max = "1s"
[[server]]
name = "vsftpd"
host = "127.0.0.1"
port = %d
user = %q
password = %q
ca_files = [%q]
remote_template = "{dir}/{name}"
timeout = "20s"
connect_timeout = "20s"
`, media, state, filepath.Join(dir, "s.sock"), r.Port, r.User, r.Password, r.CAFile)
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d, _, _ := startDaemon(t, cfg, testLogger(t))
	l := recordEvents(t, d)
	writeCapture(t, filepath.Join(media, "100TEST", "DSC00001.JPG"), 300<<10, 1)
	waitAllDone(t, d, 1, within(60*time.Second))
	verifyArrived(t, media, r.Root)
	st := d.Status()
	if st.TLS == nil || st.TLS.Engine != "openssl" || st.TLS.Suite != "TLS_RSA_WITH_AES_256_CBC_SHA256" {
		t.Fatalf("status tls %+v; want TLS_RSA_WITH_AES_256_CBC_SHA256 through openssl", st.TLS)
	}
	var b strings.Builder
	printStatus(&b, st)
	if !strings.Contains(b.String(), "through OpenSSL") {
		t.Errorf("camftpd status does not name the engine:\n%s", b.String())
	}
	if n := strings.Count(r.LogText(), `"STOR `); n != 1 {
		t.Errorf("%d STOR in the server's log, want 1", n)
	}
	l.mu.Lock()
	for _, e := range l.evs {
		if e.Type == "retry" || e.Type == "blocked" {
			t.Errorf("%s event: %+v", e.Type, e)
		}
	}
	l.mu.Unlock()

	// camftpd check: the walk goes through OpenSSL too, and the suite
	// probes (tlspolicy.Check with transfer.Engine) find the suite.
	var out, errb strings.Builder
	code := Main(context.Background(), []string{"check", "-config", cfgPath}, &out, &errb)
	t.Logf("camftpd check: exit %d\n%s%s", code, out.String(), errb.String())
	if code == 2 || !strings.Contains(out.String(), "through OpenSSL") || !strings.Contains(out.String(), "TLS_RSA_WITH_AES_256_CBC_SHA256") {
		t.Errorf("camftpd check: exit %d, want a pass or warning (deprecated suite) naming the engine", code)
	}
}
