package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// minimalConfig is a valid config for one server with the given password
// lines.
func minimalConfig(dir, passwordLines string) string {
	return fmt.Sprintf(`media_dir = %q
state_dir = %q
storage_mount = ""
interface = ""

[[server]]
name = "studio"
host = "127.0.0.1"
user = "cam"
%s
`, filepath.Join(dir, "media"), filepath.Join(dir, "state"), passwordLines)
}

// TestPasswordFilesMustBePrivate: a password_file, or a config holding a
// password, that group or others can read is refused with the chmod that
// fixes it; mode 0600 is accepted.
func TestPasswordFilesMustBePrivate(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "a.toml")
	if err := os.WriteFile(cfg, []byte(minimalConfig(dir, fmt.Sprintf("password_file = %q", pw))), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(cfg)
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+pw) || !strings.Contains(err.Error(), "mode 0644") {
		t.Fatalf("world-readable password_file: %v", err)
	}
	if err := os.Chmod(pw, 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadConfig(cfg); err != nil || c.Servers[0].Password.reveal() != "secret" {
		t.Fatalf("password_file 0600 (config 0644 holds no password): %v", err)
	}

	inline := filepath.Join(dir, "b.toml")
	if err := os.WriteFile(inline, []byte(minimalConfig(dir, `password = "secret"`)), 0o640); err != nil {
		t.Fatal(err)
	}
	_, err = LoadConfig(inline)
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+inline) || strings.Contains(err.Error(), "secret\"") {
		t.Fatalf("group-readable config with a password: %v", err)
	}
	if err := os.Chmod(inline, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(inline); err != nil {
		t.Fatalf("config 0600 with a password: %v", err)
	}
}

// TestStatusSocketReplacesOnlyASocket: a regular file (or a directory) at
// the status socket's path is not deleted: the daemon refuses to start and
// says why; a stale socket of a killed daemon is replaced.
func TestStatusSocketReplacesOnlyASocket(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(e.sock, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := New(e.writeConfig("1s", 1), testLogger(t))
	err := d.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "is not a socket (a regular file)") {
		t.Fatalf("start with a regular file at status_socket: %v", err)
	}
	if b, _ := os.ReadFile(e.sock); string(b) != "keep me" {
		t.Fatal("the file at status_socket was replaced")
	}
	os.Remove(e.sock)
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: e.sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close() // a socket file nobody listens on: what a killed daemon leaves
	startDaemon(t, e.writeConfig("1s", 1), testLogger(t))
	if st, err := os.Lstat(e.sock); err != nil || st.Mode().Type() != os.ModeSocket {
		t.Fatalf("stale socket not replaced: %v", err)
	}
}
