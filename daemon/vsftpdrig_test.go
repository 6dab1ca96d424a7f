package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// vsftpdRig is a real vsftpd and a daemon config that uploads to it.
type vsftpdRig struct {
	r       *ftpstest.Real
	media   string // the watched folder
	cfgPath string
	cfg     *Config
}

// vsftpdDaemonConfig starts a real vsftpd with ro and writes and loads a
// daemon config for it: a media folder and a state folder in a
// temp dir, the status socket there, no storage mount or interface, a
// 50 ms settle and 0.2-1 s retries, and one [[server]] "vsftpd" with the
// server's login, CA and "{dir}/{name}" names. globals and server are more
// TOML lines for the top level and the [[server]] table (workers, backlog,
// tls_mode, timeouts: what a test varies); a key of the base config must
// not be repeated there. A missing vsftpd fails the test (never a skip).
func vsftpdDaemonConfig(t *testing.T, ro ftpstest.RealOptions, globals, server string) vsftpdRig {
	t.Helper()
	r, err := ftpstest.StartVsftpd(ro)
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
retry_min = "200ms"
retry_max = "1s"
%s
[[server]]
name = "vsftpd"
host = "127.0.0.1"
port = %d
user = %q
password = %q
ca_files = [%q]
remote_template = "{dir}/{name}"
%s
`, media, state, filepath.Join(dir, "s.sock"), globals, r.Port, r.User, r.Password, r.CAFile, server)
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	return vsftpdRig{r: r, media: media, cfgPath: cfgPath, cfg: cfg}
}
