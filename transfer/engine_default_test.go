//go:build !openssl

package transfer

import (
	"context"
	"strings"
	"testing"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// TestNoEngineSuiteMessage: the default build against a server that has
// only AES256-SHA256 (crypto/tls lacks it), client at TLS 1.2: the upload
// fails with one line naming the suites and the openssl build.
func TestNoEngineSuiteMessage(t *testing.T) {
	if Engine() != nil {
		t.Fatal("the default build has an engine")
	}
	tg := startTargetWith(t, "vsftpd", ftpstest.Options{}, ftpstest.RealOptions{MaxTLS12: true, Ciphers: "AES256-SHA256"})
	c := New(tg.config(t, true))
	defer c.Close()
	local, _ := localFile(t, 1000)
	_, err := c.Upload(context.Background(), Job{LocalPath: local, Remote: "n.jpg"})
	if ClassOf(err) != TLSPolicy {
		t.Fatalf("got %v (%v), want a tls-policy error", err, ClassOf(err))
	}
	msg := err.Error()
	for _, want := range []string{"TLS_RSA_WITH_AES_256_CBC_SHA256", "openssl build"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("message is not one line: %q", msg)
	}
	if strings.Contains(tg.real.LogText(), "USER") {
		t.Error("the server saw USER")
	}
	t.Logf("error: %s", msg)
}

// TestCheckEverySuiteServer: `camftpd check` of the default build names
// the 7 suites it cannot negotiate, against each suite's server (see
// checkEverySuite).
func TestCheckEverySuiteServer(t *testing.T) { checkEverySuite(t) }
