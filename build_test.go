package layout_test

import (
	"regexp"
	"strings"
	"testing"
)

// TestOpensslBuildInStep: the openssl build of Dockerfile.cross is the
// Makefile's cross-openssl (the cross flags with the openssl tag added, cgo
// with Debian's cross gcc, the same ldflags, both architectures), and the
// Dockerfile installs its packages with the CI machine's script.
func TestOpensslBuildInStep(t *testing.T) {
	mk := read(t, "Makefile")
	df := read(t, "Dockerfile.cross")
	get := func(src, re, what string) string { return submatch(t, src, re, what) }
	flags := get(mk, `(?m)^CROSS_FLAGS\s*:=\s*(.+)$`, "CROSS_FLAGS in Makefile")
	if !strings.Contains(flags, "-tags ") {
		t.Fatalf("CROSS_FLAGS %q has no -tags: OPENSSL_FLAGS adds openssl to it", flags)
	}
	ossl := strings.Replace(flags, "-tags ", "-tags openssl,", 1)
	pkg := get(mk, `(?m)^PKG\s*:=\s*(\S+)`, "PKG in Makefile")
	ld := get(mk, `(?m)^LDFLAGS\s*:=\s*(.+)$`, "LDFLAGS in Makefile")
	ld = strings.ReplaceAll(strings.ReplaceAll(ld, "$(PKG)", pkg), "$(VERSION)", "${VERSION}")
	for _, target := range []struct{ cc, arch, out string }{
		{"aarch64-linux-gnu-gcc", "GOARCH=arm64", "camftpd-openssl-linux-arm64"},
		{"arm-linux-gnueabihf-gcc", "GOARCH=arm GOARM=7", "camftpd-openssl-linux-armv7"},
	} {
		want := "CGO_ENABLED=1 CC=" + target.cc + " " + target.arch + " go build " + ossl + ` -ldflags "` + ld + `" -o /out/` + target.out + " ./cmd/camftpd"
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile.cross lacks %q (in step with make cross-openssl)", want)
		}
		cc := map[string]string{"aarch64-linux-gnu-gcc": "$(CC_ARM64)", "arm-linux-gnueabihf-gcc": "$(CC_ARMV7)"}[target.cc]
		mkWant := "CGO_ENABLED=1 CC=" + cc + " GOOS=linux " + target.arch + ` $(GO) build $(OPENSSL_FLAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/` + target.out + " ./cmd/camftpd"
		if !strings.Contains(mk, mkWant) {
			t.Errorf("Makefile cross-openssl lacks %q", mkWant)
		}
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(cc[2:len(cc)-1]) + `\s*:=\s*` + regexp.QuoteMeta(target.cc) + `$`).MatchString(mk) {
			t.Errorf("Makefile does not set %s to %s", cc, target.cc)
		}
	}
	if !strings.Contains(mk, "OPENSSL_FLAGS := $(subst -tags ,-tags openssl$(comma),$(CROSS_FLAGS))") {
		t.Errorf("Makefile OPENSSL_FLAGS is not CROSS_FLAGS with the openssl tag")
	}
	if !strings.Contains(df, "COPY scripts/openssl/setup ") {
		t.Errorf("Dockerfile.cross does not install the openssl build's packages with scripts/openssl/setup")
	}
}
