package daemon

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// TestTLS13ChaCha20Status: a vsftpd that chooses ChaCha20 in TLS 1.3 (as
// a default vsftpd does for an armv7 camera). tls_mode compatible uploads
// over it and status shows the suite as non-NIST with the warning;
// tls_mode recommended does not block: it uploads over TLS 1.2 with a
// recommended suite, with no failed attempt, and status says why.
func TestTLS13ChaCha20Status(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ mode, version, class, warn string }{
		{"compatible", "TLS 1.3", "non-NIST", "NIST SP 800-52r2 does not list"},
		{"recommended", "TLS 1.2", "recommended", "refused in mode recommended: using TLS 1.2"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			rig := vsftpdDaemonConfig(t, ftpstest.RealOptions{TLS13Suites: "TLS_CHACHA20_POLY1305_SHA256", AnyPassword: true},
				"backlog = \"all\"\nworkers = 2", fmt.Sprintf("tls_mode = %q\ntimeout = \"5s\"\nconnect_timeout = \"3s\"", tc.mode))
			r, media, cfg := rig.r, rig.media, rig.cfg
			d, _, _ := startDaemon(t, cfg, testLogger(t))
			l := recordEvents(t, d)
			for i := range 3 {
				writeCapture(t, filepath.Join(media, "100TEST", fmt.Sprintf("DSC%05d.JPG", i+1)), 100<<10, uint64(i))
			}
			waitAllDone(t, d, 3, within(30*time.Second))
			verifyArrived(t, media, r.Root)
			st := d.Status()
			if st.TLS == nil || st.TLS.Version != tc.version || st.TLS.Class != tc.class || !strings.Contains(st.TLS.Warning, tc.warn) || strings.HasPrefix(st.State, "blocked") {
				t.Fatalf("state %q, status tls %+v; want %s, class %s, a warning with %q", st.State, st.TLS, tc.version, tc.class, tc.warn)
			}
			var b strings.Builder
			printStatus(&b, st)
			if !strings.Contains(b.String(), "tls warning: "+st.TLS.Warning) || !strings.Contains(b.String(), "("+tc.class+")") {
				t.Errorf("camftpd status:\n%s", b.String())
			}
			// The refusal costs no failed attempt: transfer connects again
			// at once with TLS 1.2 (without that, each worker's first
			// attempt failed and was retried after retry_min).
			l.mu.Lock()
			for _, e := range l.evs {
				if e.Type == "retry" || e.Type == "blocked" {
					t.Errorf("%s event: %+v", e.Type, e)
				}
			}
			l.mu.Unlock()
			t.Logf("%s: state %s, tls %s %s (%s), warning %q", tc.mode, st.State, st.TLS.Version, st.TLS.Suite, st.TLS.Class, st.TLS.Warning)
		})
	}
}
