package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// openPTY opens a real pseudo-terminal: the master to type on, the slave
// to give camftpd trust as its stdin.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the pty's slave: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestTrustAsksOnTerminal: on a terminal, trust asks y/N: "n" (or just
// Enter) trusts nothing and exits 1, "y" pins.
func TestTrustAsksOnTerminal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfgPath := trustConfig(t, dir, 2121, "u", "pw", "")
	nas, err := ftpstest.SelfSigned(ftpstest.CertOptions{ECDSA: true, DNSNames: []string{}, CommonName: "nas"}, false)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "nas.pem")
	if err := os.WriteFile(file, nas.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	store := tlspolicy.OpenTrustStore(filepath.Join(dir, "state", tlspolicy.TrustStoreFile))
	for _, c := range []struct {
		typed string
		code  int
		pins  int
	}{{"n\n", 1, 0}, {"\n", 1, 0}, {"y\n", 0, 1}} {
		m, s := openPTY(t)
		if _, err := m.WriteString(c.typed); err != nil {
			t.Fatal(err)
		}
		code, out, errs := runTrust(t, s, "-config", cfgPath, "-import", file)
		if code != c.code || !strings.Contains(out, "[y/N] ") {
			t.Errorf("typed %q: exit %d, want %d\n%s%s", c.typed, code, c.code, out, errs)
		}
		entries, err := store.Entries()
		if err != nil {
			t.Fatal(err)
		}
		if n := len(entries["127.0.0.1"].Pins); n != c.pins {
			t.Errorf("typed %q: %d pins stored, want %d", c.typed, n, c.pins)
		}
	}
}
