//go:build openssl

package daemon

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// TestEngineCapture: the openssl build against a vsftpd that accepts only
// TLS_RSA_WITH_AES_256_CBC_SHA256 (TLS 1.2; crypto/tls lacks it): the
// daemon uploads the capture once, through OpenSSL, and status says so.
func TestEngineCapture(t *testing.T) {
	rig := vsftpdDaemonConfig(t, ftpstest.RealOptions{MaxTLS12: true, Ciphers: "AES256-SHA256", AnyPassword: true},
		"backlog = \"all\"\nworkers = 1", "timeout = \"20s\"\nconnect_timeout = \"20s\"")
	r, media, cfg := rig.r, rig.media, rig.cfg
	d, _, _ := startDaemon(t, cfg, testLogger(t))
	l := recordEvents(t, d)
	writeCapture(t, filepath.Join(media, "100TEST", "DSC00001.JPG"), 300<<10, 1)
	waitAllDone(t, d, 1, within(60*time.Second))
	verifyArrived(t, media, r.Root)
	st := d.Status()
	if st.TLS == nil || st.TLS.Engine != "openssl" || st.TLS.Suite != "TLS_RSA_WITH_AES_256_CBC_SHA256" {
		t.Fatalf("status tls %+v; want TLS_RSA_WITH_AES_256_CBC_SHA256 through openssl", st.TLS)
	}
	var b strings.Builder
	printStatus(&b, st)
	if !strings.Contains(b.String(), "through OpenSSL") {
		t.Errorf("camftpd status does not name the engine:\n%s", b.String())
	}
	if n := strings.Count(r.LogText(), `"STOR `); n != 1 {
		t.Errorf("%d STOR in the server's log, want 1", n)
	}
	l.mu.Lock()
	for _, e := range l.evs {
		if e.Type == "retry" || e.Type == "blocked" {
			t.Errorf("%s event: %+v", e.Type, e)
		}
	}
	l.mu.Unlock()

	// camftpd check: the walk goes through OpenSSL too, and the suite
	// probes (tlspolicy.Check with transfer.Engine) find the suite.
	var out, errb strings.Builder
	code := Main(context.Background(), []string{"check", "-config", rig.cfgPath}, &out, &errb)
	t.Logf("camftpd check: exit %d\n%s%s", code, out.String(), errb.String())
	if code == 2 || !strings.Contains(out.String(), "through OpenSSL") || !strings.Contains(out.String(), "TLS_RSA_WITH_AES_256_CBC_SHA256") {
		t.Errorf("camftpd check: exit %d, want a pass or warning (deprecated suite) naming the engine", code)
	}
}
