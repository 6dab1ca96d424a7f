package board

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestInitScript runs board/init/camftpd.init for real (start, status,
// stop) with start-stop-daemon, against a stand-in daemon that records its
// arguments and exits on SIGTERM.
func TestInitScript(t *testing.T) {
	if _, err := exec.LookPath("start-stop-daemon"); err != nil {
		t.Fatal("start-stop-daemon is missing: install dpkg (Debian) or busybox; the init script test runs it")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "camftpd")
	args := filepath.Join(dir, "args")
	cfg := filepath.Join(dir, "camftpd.toml")
	defaults := filepath.Join(dir, "defaults")
	for _, f := range []struct {
		path, text string
		mode       os.FileMode
	}{
		{fake, "#!/bin/sh\necho \"$@\" > " + args + "\ntrap 'echo stopped; exit 0' TERM\nwhile :; do sleep 0.05; done\n", 0o755},
		{cfg, "# test\n", 0o600},
		{defaults, "DAEMON=" + fake + "\nCONFIG=" + cfg + "\nPIDFILE=" + dir + "/pid\nLOGFILE=" + dir + "/log\n", 0o644},
	} {
		if err := os.WriteFile(f.path, []byte(f.text), f.mode); err != nil {
			t.Fatal(err)
		}
	}

	run := func(action string) (string, int) {
		cmd := exec.Command("sh", "init/camftpd.init", action)
		cmd.Env = append(os.Environ(), "CAMFTPD_DEFAULTS="+defaults)
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	if out, code := run("status"); code != 3 {
		t.Fatalf("status before start: %d %s", code, out)
	}
	if out, code := run("start"); code != 0 {
		t.Fatalf("start: %d %s", code, out)
	}
	deadline := time.Now().Add(within(5 * time.Second))
	for {
		b, _ := os.ReadFile(args)
		if strings.TrimSpace(string(b)) == "run -config "+cfg {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not started with run -config: args %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, code := run("status"); code != 0 || !strings.Contains(out, "running") {
		t.Fatalf("status after start: %d %s", code, out)
	}
	if out, code := run("start"); code != 0 || !strings.Contains(out, "already running") {
		t.Fatalf("second start: %d %s", code, out)
	}
	if out, code := run("stop"); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("stop: %d %s", code, out)
	}
	if log, _ := os.ReadFile(filepath.Join(dir, "log")); !strings.Contains(string(log), "stopped") {
		t.Fatalf("daemon did not get SIGTERM (log %q)", log)
	}
	if out, code := run("status"); code != 3 {
		t.Fatalf("status after stop: %d %s", code, out)
	}
}

func TestServiceUnit(t *testing.T) {
	b, err := os.ReadFile("init/camftpd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/bin/camftpd run -config /etc/camftpd.toml", "Restart=on-failure", "WantedBy=multi-user.target", "StateDirectory=camftpd"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("camftpd.service lacks %q", want)
		}
	}
}
