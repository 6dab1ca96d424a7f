package tlspolicy

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"
)

// LoginRefusal is the reply that refused a step of an FTPES login: the
// command (PASS without its argument) and the server's reply.
type LoginRefusal struct {
	Cmd  string // "USER", "PASS", "PBSZ 0" or "PROT P"
	Code int
	Text string // the reply's text, control bytes replaced
}

// WalkLogin connects to addr (host:port), upgrades with AUTH TLS, runs one
// handshake with cfg and sends USER, PASS, PBSZ 0 and PROT P one by one,
// as goftp does, then QUIT. It returns the first reply that refused a
// step (ok true), or ok false when every step was accepted. The password
// is sent only once the handshake, and cfg's verification, succeeded.
// It is the FTPES client transfer uses to learn which login command a
// refusal answered: goftp returns the reply without its command. timeout
// bounds each step (0 means 10 s).
func WalkLogin(ctx context.Context, addr string, cfg *tls.Config, timeout time.Duration, user, pass string) (LoginRefusal, bool, error) {
	s, err := dialAuthTLS(ctx, addr, cfg, timeout)
	if err != nil {
		return LoginRefusal{}, false, err
	}
	defer s.quit()
	steps := []struct{ cmd, line string }{
		{"USER", "USER " + user}, {"PASS", "PASS " + pass}, {"PBSZ 0", "PBSZ 0"}, {"PROT P", "PROT P"},
	}
	for i := 0; i < len(steps); i++ {
		st := steps[i]
		if err := s.deadline(); err != nil {
			return LoginRefusal{}, false, err
		}
		if _, err := s.tc.Write([]byte(st.line + "\r\n")); err != nil {
			return LoginRefusal{}, false, s.wrap(st.cmd, err)
		}
		r, err := readReply(s.br)
		if err != nil {
			return LoginRefusal{}, false, s.wrap(st.cmd, err)
		}
		switch {
		case st.cmd == "USER" && r.Code/100 == 2:
			i++ // logged in without a password
		case st.cmd == "USER" && r.Code == 331, r.Code/100 == 2:
		default:
			return LoginRefusal{Cmd: st.cmd, Code: r.Code, Text: r.Text}, true, nil
		}
	}
	return LoginRefusal{}, false, nil
}

// String is "PROT P: 536 text".
func (r LoginRefusal) String() string { return fmt.Sprintf("%s: %d %s", r.Cmd, r.Code, r.Text) }
