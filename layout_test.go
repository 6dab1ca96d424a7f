// Tests that keep the repository's layout true: the package table of
// DESIGN.md (one job, one doc comment, imports in one direction) and the
// cross build of Dockerfile.cross in step with the Makefile.
package layout_test

import (
	"bytes"
	"encoding/json"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const mod = "github.com/camftpd/camftpd"

// rule is one row of DESIGN.md's package table.
type rule struct {
	project    []string // project packages it may import
	thirdParty []string // module path prefixes it may import
}

var rules = map[string]rule{
	// The one date before which the device clock is not believed: board
	// waits for it at boot and tlspolicy does not judge certificates
	// against an earlier clock. Neither may import the other, so the
	// threshold sits below both, in a package that imports nothing.
	"internal/wallclock": {},
	"tlspolicy":          {project: []string{"internal/wallclock"}},
	"queue":              {thirdParty: []string{"go.etcd.io/bbolt"}},
	"board":              {project: []string{"internal/wallclock"}, thirdParty: []string{"golang.org/x/sys"}},
	// transfer opens captures with openat(O_NOFOLLOW) per folder and asks
	// the kernel for a read lease (F_SETLEASE): neither is in package syscall
	// for every GOOS, so it uses x/sys/unix as board does.
	// transfer/ossl: the openssl build only (engine_openssl.go).
	"transfer": {project: []string{"tlspolicy", "transfer/ossl"}, thirdParty: []string{"github.com/secsy/goftp", "golang.org/x/sys"}},
	// Shared by the tests of every package; no firmware code imports it.
	"internal/testtime": {},
	// The link emulator of the benchmarks and of the daemon's link tests.
	"internal/linkemu": {},
	// The OpenSSL engine of the `openssl` build (cgo, libssl): standard
	// library only; every file carries the build tag.
	"transfer/ossl":       {},
	"transfer/ftpstest":   {project: []string{"tlspolicy"}, thirdParty: []string{"github.com/fclairamb/ftpserverlib", "github.com/spf13/afero"}},
	"daemon":              {project: []string{"tlspolicy", "queue", "board", "transfer"}, thirdParty: []string{"github.com/fsnotify/fsnotify", "github.com/BurntSushi/toml", "golang.org/x/sys"}},
	"cmd/camftpd":         {project: []string{"daemon"}},
	"cmd/camftpd-demo":    {project: []string{"daemon", "tlspolicy", "transfer/ftpstest"}},
	"scripts/qemu/driver": {project: []string{"tlspolicy", "transfer/ftpstest"}},
	"scripts/benchkit":    {project: []string{"internal/linkemu", "tlspolicy", "transfer", "transfer/ftpstest"}, thirdParty: []string{"gonum.org/v1/plot"}},
	// The naive goftp baseline of the benchmarks: a peer, not part of camftpd.
	"scripts/benchkit/naive": {thirdParty: []string{"github.com/secsy/goftp"}},
	// The emulated camera's timed shutter, run in the QEMU guest (steady
	// scenario): standard library only.
	"scripts/qemu/shutter": {},
}

// owner says which package alone may import a third-party module.
var owner = map[string]string{
	"go.etcd.io/bbolt":                  "queue",
	"github.com/secsy/goftp":            "transfer",
	"github.com/fsnotify/fsnotify":      "daemon",
	"github.com/fclairamb/ftpserverlib": "transfer/ftpstest",
}

type listed struct {
	ImportPath string
	Dir        string
	Standard   bool
	Imports    []string
	Deps       []string
	GoFiles    []string
}

func goList(t *testing.T, args ...string) []listed {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr.String())
	}
	var pkgs []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func rel(importPath string) (string, bool) {
	if importPath == mod {
		return "", true
	}
	r, ok := strings.CutPrefix(importPath, mod+"/")
	return r, ok
}

func hasPrefix(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestImportDirection keeps DESIGN.md's table true for the non-test code.
func TestImportDirection(t *testing.T) {
	pkgs := goList(t, "./...")
	std := map[string]bool{}
	for _, p := range goList(t, "std") {
		std[p.ImportPath] = true
	}
	seen := map[string]bool{}
	for _, p := range pkgs {
		if len(p.GoFiles) == 0 {
			continue // test-only directory, like this one
		}
		name, _ := rel(p.ImportPath)
		seen[name] = true
		r, known := rules[name]
		if !known {
			t.Errorf("package %q is not in DESIGN.md's table (layout_test.go rules): add a row or move the code", name)
			continue
		}
		for _, imp := range p.Imports {
			if std[imp] {
				continue
			}
			if dep, ok := rel(imp); ok {
				if !contains(r.project, dep) {
					t.Errorf("%s imports %s: not allowed by DESIGN.md", name, dep)
				}
				continue
			}
			if !hasPrefix(imp, r.thirdParty) {
				t.Errorf("%s imports third-party %s: not allowed by DESIGN.md", name, imp)
			}
			for modPath, own := range owner {
				if hasPrefix(imp, []string{modPath}) && own != name && name != "scripts/benchkit/naive" {
					t.Errorf("%s imports %s, which only %s may import", name, imp, own)
				}
			}
		}
	}
	for _, want := range []string{"tlspolicy", "queue", "board", "transfer", "transfer/ftpstest", "daemon", "cmd/camftpd"} {
		if !seen[want] {
			t.Errorf("package %s of the design card is missing", want)
		}
	}
}

// TestFirmwareLinksNoServer: the firmware binary must not link an FTP server
// nor the test helpers.
func TestFirmwareLinksNoServer(t *testing.T) {
	p := goList(t, mod+"/cmd/camftpd")[0]
	for _, d := range p.Deps {
		if strings.HasPrefix(d, "github.com/fclairamb/ftpserverlib") || d == mod+"/transfer/ftpstest" || d == "testing" {
			t.Errorf("cmd/camftpd links %s: the firmware must not carry an FTP server or test code", d)
		}
	}
}

// TestPackageDocs: every package has exactly one doc comment, on one file.
func TestPackageDocs(t *testing.T) {
	for _, p := range goList(t, "./...") {
		if len(p.GoFiles) == 0 {
			continue
		}
		name, _ := rel(p.ImportPath)
		var withDoc []string
		fset := token.NewFileSet()
		for _, f := range p.GoFiles {
			af, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatalf("parse %s: %v", f, err)
			}
			if af.Doc != nil && strings.TrimSpace(af.Doc.Text()) != "" {
				withDoc = append(withDoc, f)
			}
		}
		switch len(withDoc) {
		case 0:
			t.Errorf("package %s has no doc comment stating its one job (add doc.go)", name)
		case 1:
		default:
			t.Errorf("package %s has doc comments on %v: keep exactly one", name, withDoc)
		}
	}
}

// submatch is re's first group in src, trimmed; the test fails naming
// what when re does not match.
func submatch(t *testing.T, src, re, what string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(src)
	if m == nil {
		t.Fatalf("cannot find %s", what)
	}
	return strings.TrimSpace(m[1])
}

// TestDockerfileInStep: Dockerfile.cross builds with the Makefile's Go
// version and flags, for the same targets.
func TestDockerfileInStep(t *testing.T) {
	mk := read(t, "Makefile")
	df := read(t, "Dockerfile.cross")
	get := func(src, re, what string) string { return submatch(t, src, re, what) }
	mkGo := get(mk, `(?m)^GO_VERSION\s*:=\s*(\S+)`, "GO_VERSION in Makefile")
	dfGo := get(df, `(?m)^ARG GO_VERSION=(\S+)`, "ARG GO_VERSION in Dockerfile.cross")
	if mkGo != dfGo {
		t.Errorf("Go version: Makefile %s, Dockerfile.cross %s", mkGo, dfGo)
	}
	goMod := get(read(t, "go.mod"), `(?m)^go (\d+\.\d+)`, "go directive in go.mod")
	if !strings.HasPrefix(mkGo, goMod+".") {
		t.Errorf("Makefile GO_VERSION %s is not a release of go.mod's go %s", mkGo, goMod)
	}
	pkg := get(mk, `(?m)^PKG\s*:=\s*(\S+)`, "PKG in Makefile")
	ld := get(mk, `(?m)^LDFLAGS\s*:=\s*(.+)$`, "LDFLAGS in Makefile")
	ld = strings.ReplaceAll(strings.ReplaceAll(ld, "$(PKG)", pkg), "$(VERSION)", "${VERSION}")
	flags := get(mk, `(?m)^CROSS_FLAGS\s*:=\s*(.+)$`, "CROSS_FLAGS in Makefile")
	for _, target := range []string{"GOARCH=arm64 ", "GOARCH=arm GOARM=7 "} {
		want := target + "go build " + flags + ` -ldflags "` + ld + `"`
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile.cross lacks %q (in step with make cross)", want)
		}
		mkWant := "GOOS=linux " + target + "$(GO) build $(CROSS_FLAGS) -ldflags \"$(LDFLAGS)\""
		if !strings.Contains(mk, mkWant) {
			t.Errorf("Makefile cross lacks %q", mkWant)
		}
	}
	if !strings.Contains(df, "CGO_ENABLED=0") || !strings.Contains(mk, "CGO_ENABLED=0 GOOS=linux GOARCH=arm64") {
		t.Errorf("both builds must be static (CGO_ENABLED=0)")
	}
}

// TestPinnedModules: go.mod pins the design card's modules exactly.
func TestPinnedModules(t *testing.T) {
	gm := read(t, "go.mod")
	for _, want := range []string{
		"github.com/secsy/goftp v0.0.0-20200609142545-aa2de14babf4",
		"go.etcd.io/bbolt v1.5.0",
		"github.com/fsnotify/fsnotify v1.10.1",
	} {
		if !strings.Contains(gm, want) {
			t.Errorf("go.mod does not pin %s", want)
		}
	}
	if _, err := os.Stat("go.sum"); err != nil {
		t.Errorf("go.sum missing: %v", err)
	}
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
