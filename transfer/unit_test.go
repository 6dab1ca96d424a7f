package transfer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
)

func TestCheckPath(t *testing.T) {
	ok := []string{"a.jpg", "2026-11-25/DCIM/IMG_0001.JPG", "/abs/dir/x.raw", "with space.jpg", "ümlaut/é.jpg", "..a/b..c"}
	for _, p := range ok {
		if err := CheckPath(p); err != nil {
			t.Errorf("CheckPath(%q) = %v, want nil", p, err)
		}
	}
	bad := map[string]string{
		"":                        "empty",
		"a\r\nDELE b.jpg":         "carriage return",
		"a\nb":                    "line feed",
		"a\x00b":                  "NUL",
		"a\tb":                    "U+0009",
		"a\x7fb":                  "U+007F",
		"a\u0085b":                "U+0085",
		"a/../b":                  `".."`,
		"..":                      `".."`,
		string([]byte{0xff, 'a'}): "UTF-8",
	}
	for p, want := range bad {
		err := CheckPath(p)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckPath(%q) = %v, want error mentioning %q", p, err, want)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\r\n\x00") {
			t.Errorf("CheckPath(%q) error is not one line: %q", p, err)
		}
	}
}

func TestRenderRemote(t *testing.T) {
	at := time.Date(2026, 11, 5, 23, 59, 0, 0, time.UTC)
	cases := []struct{ tmpl, rel, want string }{
		{"{date}/{dir}/{name}", "DCIM/100CANON/IMG_0001.JPG", "2026-11-05/DCIM/100CANON/IMG_0001.JPG"},
		{"{date}/{dir}/{name}", "IMG_0001.JPG", "2026-11-05/IMG_0001.JPG"},
		{"{yyyy}/{mm}/{dd}/{base}.{ext}", "a/b.c.jpg", "2026/11/05/b.c.jpg"},
		{"/upload/{base}_{yyyy}{mm}{dd}.{ext}", "x.raw", "/upload/x_20261105.raw"},
		{"", "d/x.jpg", "x.jpg"},
		{"{dir}/{name}", "/lead/x.jpg", "lead/x.jpg"},
		{"{base}", ".hidden", ".hidden"},
		{"{dir}//{name}", "x.jpg", "x.jpg"},
	}
	for _, c := range cases {
		got, err := RenderRemote(c.tmpl, c.rel, at)
		if err != nil || got != c.want {
			t.Errorf("RenderRemote(%q, %q) = %q, %v; want %q", c.tmpl, c.rel, got, err, c.want)
		}
	}
	bad := []struct{ tmpl, rel, want string }{
		{"{nope}/{name}", "x.jpg", "unknown placeholder {nope}"},
		{"{name", "x.jpg", "unclosed"},
		{"a}/{name}", "x.jpg", "unbalanced"},
		{"{dir}/", "x.jpg", "must end in a file name"},
		{"{name}", "evil\r\nDELE x", "carriage return"},
		{"{name}", "", "empty"},
	}
	for _, c := range bad {
		got, err := RenderRemote(c.tmpl, c.rel, at)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("RenderRemote(%q, %q) = %q, %v; want error with %q", c.tmpl, c.rel, got, err, c.want)
		}
	}
}

func FuzzRenderRemote(f *testing.F) {
	f.Add("{date}/{dir}/{name}", "DCIM/IMG_1.JPG")
	f.Add("{base}-{yyyy}.{ext}", "a\r\nb.jpg")
	f.Add("{", "x")
	f.Fuzz(func(t *testing.T, tmpl, rel string) {
		out, err := RenderRemote(tmpl, rel, time.Unix(0, 0).UTC())
		if err != nil {
			return
		}
		if CheckPath(out) != nil {
			t.Fatalf("RenderRemote(%q, %q) = %q, which CheckPath refuses", tmpl, rel, out)
		}
		if strings.HasSuffix(out, "/") || out == "" {
			t.Fatalf("RenderRemote(%q, %q) = %q: no file name", tmpl, rel, out)
		}
	})
}

func FuzzCheckPath(f *testing.F) {
	f.Add("a/b.jpg")
	f.Add("a\rb")
	f.Fuzz(func(t *testing.T, p string) {
		if CheckPath(p) == nil && strings.ContainsAny(p, "\r\n\x00") {
			t.Fatalf("CheckPath accepted %q", p)
		}
	})
}

func TestParsePassive(t *testing.T) {
	if p, err := parseEPSV("Entering Extended Passive Mode (|||6446|)"); err != nil || p != 6446 {
		t.Errorf("EPSV: %d %v", p, err)
	}
	if p, err := parsePASV("Entering Passive Mode (127,0,0,1,200,10)."); err != nil || p != 200*256+10 {
		t.Errorf("PASV: %d %v", p, err)
	}
	if p, err := parsePASV("Entering Passive Mode 127,0,0,1,0,21"); err != nil || p != 21 {
		t.Errorf("PASV without parentheses: %d %v", p, err)
	}
	for _, m := range []string{"", "(", "(|||x|)", "(|||0|)", "(|||70000|)", "()"} {
		if _, err := parseEPSV(m); err == nil {
			t.Errorf("parseEPSV(%q) accepted", m)
		}
	}
	for _, m := range []string{"", "(1,2,3)", "(1,2,3,4,256,1)", "(1,2,3,4,0,0)", "(a,b,c,d,e,f)"} {
		if _, err := parsePASV(m); err == nil {
			t.Errorf("parsePASV(%q) accepted", m)
		}
	}
}

func FuzzParsePassive(f *testing.F) {
	f.Add("Entering Extended Passive Mode (|||6446|)")
	f.Add("Entering Passive Mode (127,0,0,1,200,10).")
	f.Fuzz(func(t *testing.T, m string) {
		if p, err := parseEPSV(m); err == nil && (p <= 0 || p > 65535) {
			t.Fatalf("parseEPSV(%q) = %d", m, p)
		}
		if p, err := parsePASV(m); err == nil && (p <= 0 || p > 65535) {
			t.Fatalf("parsePASV(%q) = %d", m, p)
		}
	})
}

func TestParseHashReply(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	cases := []struct{ msg, alg, name, want string }{
		{"Computing SHA-256 digest\nSHA-256 0-49 " + sha + " .camftpd-x.part", "sha256", "SHA-256", sha},
		{"SHA-256 0-49 " + strings.ToUpper(sha) + " name", "sha256", "SHA-256", sha},
		{"Computing SHA-256 digest\n" + sha, "sha256", "SHA-256", sha},
		{sha, "sha256", "SHA-256", sha},
		{"21b0f382", "crc32", "CRC32", "21b0f382"},
		{"1b0f382", "crc32", "CRC32", "1b0f382"},
		{"nothing here", "md5", "MD5", ""},
	}
	for _, c := range cases {
		if got := parseHashReply(c.msg, c.alg, c.name); got != c.want {
			t.Errorf("parseHashReply(%q) = %q, want %q", c.msg, got, c.want)
		}
	}
	if !hashEqual("crc32", "1b0f382", "01b0f382") || hashEqual("crc32", "1", "2") {
		t.Error("hashEqual crc32")
	}
}

func FuzzParseHashReply(f *testing.F) {
	f.Add("SHA-256 0-49 abcd name")
	f.Fuzz(func(t *testing.T, m string) {
		for _, a := range [][2]string{{"sha256", "SHA-256"}, {"md5", "MD5"}, {"crc32", "CRC32"}} {
			if got := parseHashReply(m, a[0], a[1]); got != "" && !isHex(got) {
				t.Fatalf("parseHashReply(%q) = %q", m, got)
			}
		}
	})
}

func TestSuffixName(t *testing.T) {
	cases := map[string]string{
		"a/b/IMG_1.JPG": "a/b/IMG_1-3.JPG",
		"x":             "x-3",
		".hidden":       ".hidden-3",
		"d.x/y":         "d.x/y-3",
		"a.tar.gz":      "a.tar-3.gz",
	}
	for in, want := range cases {
		if got := suffixName(in, 3); got != want {
			t.Errorf("suffixName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSanitizeID(t *testing.T) {
	if got := sanitizeID("01J/../x\r\n"); got != "01J____x__" {
		t.Errorf("sanitizeID = %q", got)
	}
	if got := sanitizeID(strings.Repeat("a", 100)); len(got) != 64 {
		t.Errorf("sanitizeID length %d", len(got))
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err  error
		want Class
	}{
		{&replyError{421, "bye"}, Transient},
		{&replyError{425, "x"}, Transient},
		{&replyError{426, "x"}, Transient},
		{&replyError{450, "x"}, Transient},
		{&replyError{451, "x"}, Transient},
		{&replyError{452, "x"}, Transient},
		{&replyError{550, "x"}, Permanent},
		{&replyError{553, "x"}, Permanent},
		{&replyError{501, "x"}, Permanent},
		{&replyError{530, "x"}, Auth},
		{&replyError{522, "x"}, TLSPolicy},
		{context.Canceled, Transient},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), Transient},
		{syscall.ECONNREFUSED, Transient},
		{io.EOF, Transient},
		{x509.UnknownAuthorityError{}, Certificate},
		{x509.HostnameError{Certificate: &x509.Certificate{}, Host: "x"}, Certificate},
		{&tlspolicy.Error{Kind: tlspolicy.KindPolicy, Msg: "no suite"}, TLSPolicy},
		{&tlspolicy.Error{Kind: tlspolicy.KindCertificate, Msg: "pin"}, Certificate},
		{&tlspolicy.Error{Kind: tlspolicy.KindClock, Msg: "clock"}, Transient},
		// A handshake glitch the policy did not explain retries (issue 18).
		{&net.OpError{Op: "remote error", Err: tls.AlertError(80)}, Transient},
		{tls.AlertError(80), Transient},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, Transient},
		{fmt.Errorf("handshake: %w", syscall.ECONNRESET), Transient},
		{&fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist}, Local},
		{&Error{Class: Local, Msg: "x"}, Local},
	}
	for _, c := range cases {
		if got := ClassOf(c.err); got != c.want {
			t.Errorf("ClassOf(%v) = %v, want %v", c.err, got, c.want)
		}
		e := classify("op", c.err)
		if s := e.Error(); strings.ContainsAny(s, "\r\n") || s == "" {
			t.Errorf("classify(%v).Error() = %q: not one line", c.err, s)
		}
	}
	for c, s := range map[Class]string{Transient: "transient", Permanent: "permanent", Auth: "auth", TLSPolicy: "tls-policy", Certificate: "certificate", Local: "local"} {
		if c.String() != s {
			t.Errorf("%d.String() = %q", int(c), c.String())
		}
	}
	var pe *tlspolicy.Error
	if e := classify("op", &tlspolicy.Error{Kind: tlspolicy.KindPolicy, Msg: "m"}); !errors.As(e, &pe) {
		t.Error("classify lost the *tlspolicy.Error")
	}
}

func TestConfigErrors(t *testing.T) {
	c := New(Config{Host: "127.0.0.1"})
	defer c.Close()
	_, err := c.Upload(context.Background(), Job{LocalPath: "/nonexistent", Remote: "a.jpg"})
	if ClassOf(err) != TLSPolicy || !strings.Contains(err.Error(), "never plain FTP") {
		t.Fatalf("no TLS config: %v (%v)", err, ClassOf(err))
	}
}

// TestPolicyErrorKeepsItsFix: a TLS policy error is the policy's own
// one-line message, with its fix at the end: classify keeps it whole
// (server text is cut at 240 bytes, this is not).
func TestPolicyErrorKeepsItsFix(t *testing.T) {
	msg := `server 127.0.0.1 certificate is signed by an unknown authority (issuer "` + strings.Repeat("CN=a long issuer name,", 10) +
		`"): no certificate is imported and the system roots do not know it: import the server's CA certificate into the camera (camftpd trust -import FILE), then retry`
	e := classify("connect", &tlspolicy.Error{Kind: tlspolicy.KindCertificate, Msg: msg})
	if e.Class != Certificate || !strings.HasSuffix(e.Msg, "(camftpd trust -import FILE), then retry") || len(e.Msg) < 300 {
		t.Fatalf("class %v, message (%d bytes) %q", e.Class, len(e.Msg), e.Msg)
	}
}
