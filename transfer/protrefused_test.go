package transfer

import (
	"strings"
	"testing"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// TestPROTRefused: a server that refuses PROT P (536; 534, 504 or 502 on
// PROT alone, told apart from the other login steps by a step-by-step
// walk) gives a tls-policy error naming PROT P and the server setting to
// change; nothing is stored. A 502 on PBSZ says PBSZ, and a 502 on PASS
// is a refused login (auth: it blocks, never parks a capture).
func TestPROTRefused(t *testing.T) {
	cases := []struct {
		verb, reply, want string
		class             Class
	}{
		{"PROT", "536 PROT P not supported by mechanism", "refuses PROT P", TLSPolicy},
		{"PROT", "534 PROT P refused by policy", "refuses PROT P", TLSPolicy},
		{"PROT", "504 PROT P not implemented", "refuses PROT P", TLSPolicy},
		{"PROT", "502 PROT not implemented", "refuses PROT P", TLSPolicy},
		{"PBSZ", "502 PBSZ not implemented", "refuses PBSZ 0", TLSPolicy},
		{"PASS", "502 PASS not implemented", "refused the login at PASS", Auth},
	}
	for _, tc := range cases {
		t.Run(tc.verb+tc.reply[:3], func(t *testing.T) {
			tg := startTarget(t, "inproc", false)
			tg.inproc.SetFaults(ftpstest.Faults{Replies: map[string]string{tc.verb: tc.reply}})
			p, _ := localFile(t, 10)
			_, err := uploadOnce(t, tg.config(t, false), Job{LocalPath: p, Remote: "x.jpg"})
			if ClassOf(err) != tc.class || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.reply[:3]) {
				t.Fatalf("%v (%v): want %v with %q", err, ClassOf(err), tc.class, tc.want)
			}
			if tc.class == TLSPolicy && !strings.Contains(err.Error(), "force_local_data_ssl") {
				t.Fatalf("%v: no fix", err)
			}
			if n := tg.inproc.Stats().Stors; n != 0 {
				t.Fatalf("%d STOR", n)
			}
			t.Log(err)
		})
	}
}
