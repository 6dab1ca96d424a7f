package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// TestTLS13ChaCha20Status: a vsftpd that chooses ChaCha20 in TLS 1.3 (as
// a default vsftpd does for an armv7 camera). tls_mode compatible uploads
// over it and status shows the suite as non-NIST with the warning;
// tls_mode recommended does not block: it uploads over TLS 1.2 with a
// recommended suite, with no failed attempt, and status says why.
func TestTLS13ChaCha20Status(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ mode, version, class, warn string }{
		{"compatible", "TLS 1.3", "non-NIST", "NIST SP 800-52r2 does not list"},
		{"recommended", "TLS 1.2", "recommended", "refused in mode recommended: using TLS 1.2"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			r, err := ftpstest.StartVsftpd(ftpstest.RealOptions{TLS13Suites: "TLS_CHACHA20_POLY1305_SHA256", AnyPassword: true})
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
workers = 2
retry_min = "200ms"
retry_max = "1s"
[[server]]
name = "vsftpd"
host = "127.0.0.1"
port = %d
user = %q
password = %q
ca_files = [%q]
tls_mode = %q
remote_template = "{dir}/{name}"
timeout = "5s"
connect_timeout = "3s"
`, media, state, filepath.Join(dir, "s.sock"), r.Port, r.User, r.Password, r.CAFile, tc.mode)
			if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadConfig(cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			d, _, _ := startDaemon(t, cfg, testLogger(t))
			l := recordEvents(t, d)
			for i := range 3 {
				writeCapture(t, filepath.Join(media, "100TEST", fmt.Sprintf("DSC%05d.JPG", i+1)), 100<<10, uint64(i))
			}
			waitAllDone(t, d, 3, within(30*time.Second))
			verifyArrived(t, media, r.Root)
			st := d.Status()
			if st.TLS == nil || st.TLS.Version != tc.version || st.TLS.Class != tc.class || !strings.Contains(st.TLS.Warning, tc.warn) || strings.HasPrefix(st.State, "blocked") {
				t.Fatalf("state %q, status tls %+v; want %s, class %s, a warning with %q", st.State, st.TLS, tc.version, tc.class, tc.warn)
			}
			var b strings.Builder
			printStatus(&b, st)
			if !strings.Contains(b.String(), "tls warning: "+st.TLS.Warning) || !strings.Contains(b.String(), "("+tc.class+")") {
				t.Errorf("camftpd status:\n%s", b.String())
			}
			// The refusal costs no failed attempt: transfer connects again
			// at once with TLS 1.2 (without that, each worker's first
			// attempt failed and was retried after retry_min).
			l.mu.Lock()
			for _, e := range l.evs {
				if e.Type == "retry" || e.Type == "blocked" {
					t.Errorf("%s event: %+v", e.Type, e)
				}
			}
			l.mu.Unlock()
			t.Logf("%s: state %s, tls %s %s (%s), warning %q", tc.mode, st.State, st.TLS.Version, st.TLS.Suite, st.TLS.Class, st.TLS.Warning)
		})
	}
}
