package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigReportsEveryErrorWithLineAndFix(t *testing.T) {
	src := `board = "generic"
media_dir = "relative/DCIM"
settle = "soon"
workers = "2"
raw_jpeg = "tiff"
log_format = "xml"
mediadir = "/x"
active = "nope"

[[server]]
name = "a"
host = "ftp.example.com"
port = 99999
user = "cam"
password = "pw"
password_file = "/nonexistent/pw"
tls_mode = "strict"
remote_template = "{when}/{name}"
pins = ["sha256/notbase64!!"]
bandwidth_limit = "fast"
colour = "red"

[[server]]
name = "a"
password = "x"
`
	_, err := ParseConfig("cam.toml", src)
	var ces ConfigErrors
	if !errors.As(err, &ces) {
		t.Fatalf("want ConfigErrors, got %v", err)
	}
	for _, e := range ces {
		t.Log(e.Error())
	}
	want := []struct {
		line int
		key  string
	}{
		{2, "media_dir"}, {3, "settle"}, {4, "workers"}, {5, "raw_jpeg"}, {6, "log_format"}, {7, "mediadir"},
		{8, "active"}, {13, "server[0].port"}, {16, "server[0].password_file"}, {17, "server[0].tls_mode"},
		{18, "server[0].remote_template"}, {19, "server[0].pins"}, {20, "server[0].bandwidth_limit"},
		{21, "server[0].colour"}, {23, "server[1]"}, {24, "server[1].name"},
	}
	for _, w := range want {
		found := false
		for _, e := range ces {
			if e.Line == w.line && e.Key == w.key {
				found = true
				if e.Fix == "" || !strings.HasPrefix(e.Error(), "cam.toml:") {
					t.Errorf("error without fix or file:line: %q", e.Error())
				}
			}
		}
		if !found {
			t.Errorf("no error for %s at line %d", w.key, w.line)
		}
	}
	// Errors come in file order.
	for i := 1; i < len(ces); i++ {
		if ces[i].Line != 0 && ces[i].Line < ces[i-1].Line {
			t.Errorf("errors out of order: %d after %d", ces[i].Line, ces[i-1].Line)
		}
	}
	if !strings.Contains(err.Error(), `did you mean "media_dir"?`) {
		t.Errorf("unknown key should suggest the right one:\n%v", err)
	}
	if strings.Contains(err.Error(), "pw") && strings.Contains(err.Error(), `"pw"`) {
		t.Errorf("an error shows the password:\n%v", err)
	}
}

func TestConfigSyntaxErrorHasLine(t *testing.T) {
	_, err := ParseConfig("x.toml", "board = \"generic\"\nmedia_dir = /no/quotes\n")
	var ces ConfigErrors
	if !errors.As(err, &ces) || len(ces) != 1 || ces[0].Line != 2 {
		t.Fatalf("want one error at line 2, got %v", err)
	}
}

func TestConfigExampleIsValidAndComplete(t *testing.T) {
	b, err := os.ReadFile("../camftpd.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := strings.ReplaceAll(string(b), "/etc/camftpd.password", pw)
	src = strings.ReplaceAll(src, "/etc/camftpd-backup.password", pw)
	cfg, err := ParseConfig("camftpd.example.toml", src)
	if err != nil {
		t.Fatalf("example config does not validate:\n%v", err)
	}
	if cfg.Servers[0].Password.reveal() != "s3cret" || len(cfg.Servers) != 2 || cfg.Active != "studio" {
		t.Fatalf("unexpected parse: %+v", cfg)
	}
	// Every key the parser knows is documented in the example.
	for _, k := range append(append(append([]string{}, topKeys...), powerKeys...), serverKeys...) {
		if !strings.Contains(string(b), "\n"+k+" =") && !strings.Contains(string(b), "# "+k+" =") && k != "server" {
			t.Errorf("key %q is not documented in camftpd.example.toml", k)
		}
	}
}

func TestConfigDefaultsAndSecret(t *testing.T) {
	cfg, err := ParseConfig("d.toml", `media_dir = "/m"
state_dir = "/s"
[[server]]
host = "h"
user = "u"
password = "topsecret"
bandwidth_limit = "2MB/s"
`)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Workers != 2 || cfg.Settle != time.Second || cfg.RawJPEG != "both" || cfg.Servers[0].Port != 21 ||
		cfg.Servers[0].BandwidthLimit != 2_000_000 || cfg.Active != "server1" || !cfg.Servers[0].Passive {
		t.Fatalf("defaults: %+v %+v", cfg, cfg.Servers[0])
	}
	var sb strings.Builder
	NewLogger(cfg, &sb).Info("cfg", "server", cfg.Servers[0], "pw", cfg.Servers[0].Password)
	if strings.Contains(sb.String(), "topsecret") {
		t.Fatalf("password logged: %s", sb.String())
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add("board = \"generic\"\n[[server]]\nhost=\"h\"\nuser=\"u\"\n")
	f.Add("a = '''\nx = 1\n'''\n[t]\nk = [1,\n2]\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseConfig("f.toml", s)
		_ = locateKeys(s)
	})
}
