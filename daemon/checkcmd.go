package daemon

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer"
)

// camftpd check's printing of the connection test (conntest.go runs it).

// printStep writes one step of the test as a line of camftpd check, and
// its fix on the next.
func printStep(w io.Writer, r transfer.StepResult) {
	fmt.Fprintf(w, "  %-12s %-7s %s\n", r.Step, r.Verdict, escName(r.Detail))
	if r.Fix != "" && (r.Verdict == transfer.StepFail || r.Verdict == transfer.StepWarn) {
		fmt.Fprintf(w, "  %-12s %-7s fix: %s\n", "", "", escName(r.Fix))
	}
}

// checkServerCLI runs camftpd check on server idx: the walk, then the
// suite probes of tlspolicy.Check when the walk got as far as TLS. It
// returns the exit status.
func checkServerCLI(ctx context.Context, cfg *Config, idx int, stdout, stderr io.Writer) int {
	s := cfg.Servers[idx]
	fmt.Fprintf(stdout, "server %q: %s port %d, tls_mode %s\n", s.Name, s.Host, s.Port, s.TLSMode)
	plain := checkConnOptions(stdout, s)
	d := New(cfg, nil)
	rs := d.connTest(ctx, cfg, idx, func(r transfer.StepResult) { printStep(stdout, r) })
	st := checkVerdict(rs)
	if plain {
		st = max(st, 1) // plain FTP is a warning on every check
	}
	failed := ""
	for _, r := range rs {
		if r.Verdict == transfer.StepFail && failed == "" {
			failed = r.Step
		}
	}
	switch {
	case plain:
		fmt.Fprintf(stdout, "  suite probes: skipped, secure = false (plain FTP)\n")
	case failed == transfer.StepConfig, failed == transfer.StepResolve, failed == transfer.StepTCP, failed == transfer.StepGreeting, failed == transfer.StepAuthTLS:
		fmt.Fprintf(stdout, "  suite probes: skipped, the %s step failed\n", failed)
	default:
		fmt.Fprintf(stdout, "  suite probes (one connection per suite):\n")
		cctx, cancel := context.WithTimeout(ctx, s.ConnectTimeout+s.Timeout)
		tst, err := tlspolicy.Check(cctx, hostPort(s), serverTLS(cfg, s), &indent{w: stdout})
		cancel()
		if err != nil && failed == "" {
			fmt.Fprintln(stderr, "camftpd check:", err)
		}
		st = max(st, int(tst))
	}
	line := "result: " + strings.ToUpper(verdictWords[st])
	if failed != "" {
		line += " at the " + failed + " step"
	} else if warned := warnedSteps(rs); st == 1 && warned != "" {
		line += ": " + warned
	}
	fmt.Fprintln(stdout, line)
	return st
}

// indent writes what it is given with every line indented by four
// spaces (tlspolicy.Check's report, written in pieces by a tabwriter).
type indent struct {
	w       io.Writer
	midLine bool
}

func (i *indent) Write(p []byte) (int, error) {
	var b strings.Builder
	for _, c := range p {
		if !i.midLine {
			b.WriteString("    ")
		}
		b.WriteByte(c)
		i.midLine = c != '\n'
	}
	if _, err := io.WriteString(i.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// warnedSteps names the steps that warned, comma separated.
func warnedSteps(rs []transfer.StepResult) string {
	var w []string
	for _, r := range rs {
		if r.Verdict == transfer.StepWarn {
			w = append(w, r.Step)
		}
	}
	return strings.Join(w, ", ")
}
