package transfer

import (
	"strings"
	"testing"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// TestHandshakeGlitch: an internal_error alert, or a connection closed
// mid-handshake, on the connection and on the redo that learns the error's
// type is a transient error (retry with backoff), not a tls-policy error
// that blocks uploads until a reload; once the server behaves, the next
// upload goes through.
func TestHandshakeGlitch(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault ftpstest.HandshakeFault
		want  string
	}{
		{"alert", ftpstest.AlertInternalError, "internal error"},
		{"close", ftpstest.CloseMidHandshake, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg := startTarget(t, "inproc", false)
			// Two: the connection, and the handshake Upload redoes to learn
			// the error's type (goftp loses it).
			tg.inproc.SetFaults(ftpstest.Faults{HandshakeFault: c.fault, HandshakeFaults: 2})
			p, _ := localFile(t, 1000)
			cfg := tg.config(t, false)
			_, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: "x.jpg"})
			if err == nil || ClassOf(err) != Transient || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v (class %v), want a transient error mentioning %q", err, ClassOf(err), c.want)
			}
			t.Log(err)
			if n := tg.inproc.Stats().HandshakeFaults; n != 2 {
				t.Fatalf("%d handshakes faulted, want 2 (the test did not test)", n)
			}
			if _, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: "x.jpg"}); err != nil {
				t.Fatalf("upload after the glitch: %v", err)
			}
		})
	}
}
