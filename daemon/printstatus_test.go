package daemon

import (
	"strings"
	"testing"
)

// TestPrintStatusLines: while blocked with shots parked, `camftpd status`
// prints the attention line once, without its own prefix twice, and the
// link speed line reads as a sentence whether measured or not.
func TestPrintStatusLines(t *testing.T) {
	st := Status{
		State:     "blocked: certificate: server \"nas\": ...; once fixed: camftpd queue retry (or POST /resume)",
		Attention: "attention: 1 shot parked (first: 100TEST/A.JPG: why): fix the cause, then camftpd queue retry",
		Power:     PowerStatus{SlowLinkBps: 2_000_000},
	}
	var b strings.Builder
	printStatus(&b, st)
	out := b.String()
	if n := strings.Count(out, "attention:"); n != 1 || !strings.Contains(out, "\nattention:  1 shot parked (first: 100TEST/A.JPG: why)") {
		t.Errorf("attention printed %d times:\n%s", n, out)
	}
	if !strings.Contains(out, "link speed: not measured yet (slow_link 2 MB/s)\n") {
		t.Errorf("link speed line, not measured:\n%s", out)
	}
	b.Reset()
	st.Power.LinkBps = 12_500_000
	printStatus(&b, st)
	if !strings.Contains(b.String(), "link speed: 12.5 MB/s measured (slow_link 2 MB/s)\n") {
		t.Errorf("link speed line, measured:\n%s", b.String())
	}
}
