package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer"
)

// checkSample is the capture whose remote path the connection test
// renders from the template: at the card's root, so {dir} is empty and
// the folder is the template's dated one, which uploads create anyway.
const checkSample = "CHECK0001.JPG"

// checkBudget bounds the connection test of server s: the connect, and a
// Timeout for each of its (about a dozen) steps, which are bounded each.
func checkBudget(s Server) time.Duration {
	return s.ConnectTimeout + 12*s.Timeout
}

// checkTargets returns the servers to test: name "" the active one,
// "all" every one, else the one of that name.
func checkTargets(cfg *Config, name string) ([]int, error) {
	switch name {
	case "":
		return []int{cfg.ActiveIndex()}, nil
	case "all":
		idx := make([]int, len(cfg.Servers))
		for i := range idx {
			idx[i] = i
		}
		return idx, nil
	}
	for i, s := range cfg.Servers {
		if s.Name == name {
			return []int{i}, nil
		}
	}
	return nil, fmt.Errorf("no [[server]] named %q in %s (use a server's name or all)", name, cfg.Path)
}

// connTest runs the connection test on server idx of cfg, on a
// connection of its own (uploads in flight are not touched; they share
// the server's bandwidth limit), with the TLS policy and transfer settings
// the uploads use. report gets each step as it ends.
func (d *Daemon) connTest(ctx context.Context, cfg *Config, idx int, report func(transfer.StepResult)) []transfer.StepResult {
	s := cfg.Servers[idx]
	ctx, cancel := context.WithTimeout(ctx, checkBudget(s))
	defer cancel()
	// The policy as the workers build it (on a throwaway daemon: a
	// refused policy must not block this one again).
	tmp := New(cfg, nil)
	tmp.wallClock = d.wallClock
	pol := tmp.policies(cfg)[idx]
	if pol == nil {
		_, err := tlspolicy.New(serverTLS(cfg, s))
		r := transfer.StepResult{Step: transfer.StepConfig, Verdict: transfer.StepFail, Detail: fmt.Sprintf("TLS settings refused: %v", err),
			Fix: "fix tls_mode, ca_files or pins of this server", Err: &transfer.Error{Class: transfer.TLSPolicy, Msg: fmt.Sprint(err)}}
		report(r)
		return []transfer.StepResult{r}
	}
	now := time.Now
	if d.wallClock != nil {
		now = d.wallClock
	}
	remote, err := transfer.RenderRemote(s.RemoteTemplate, checkSample, now())
	if err != nil {
		remote = "" // the test's mkd step reports it
	}
	return transfer.Test(ctx, d.clientConfig(cfg, idx, pol, "check"), transfer.TestOptions{
		Remote: remote, CertWarnDays: serverTLS(cfg, s).CertWarnDays,
		Pinned: func() bool { n, ok := pol.Last(); return ok && n.Pinned }, Now: now, Report: report,
	})
}

// checkVerdict is the worst verdict of a test's steps: 0 pass, 1 warn,
// 2 fail (the exit status of camftpd check).
func checkVerdict(rs []transfer.StepResult) int {
	v := 0
	for _, r := range rs {
		switch r.Verdict {
		case transfer.StepFail:
			return 2
		case transfer.StepWarn:
			v = 1
		}
	}
	return v
}

var verdictWords = [...]string{"pass", "warn", "fail"}

// serveCheck is POST /check[?server=NAME|all]: the connection test,
// streamed as events (newline-delimited JSON, the format of GET /events):
// one "check" event per step, then one "check-done" per server and a last
// "check-done" without a server with the worst result. The events are also
// published to /events subscribers. One test runs at a time: a second
// POST /check meanwhile gets 409.
func (d *Daemon) serveCheck(w http.ResponseWriter, r *http.Request) {
	cfg := d.config()
	idxs, err := checkTargets(cfg, r.FormValue("server"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !d.checking.CompareAndSwap(false, true) {
		http.Error(w, "a connection test is running already: wait for its check-done event, then try again", http.StatusConflict)
		return
	}
	defer d.checking.Store(false)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	send := func(e Event) {
		e.Time = time.Now()
		d.hub.publish(e)
		// A client that went away ends the test through r.Context().
		_ = rc.SetWriteDeadline(time.Now().Add(eventsWriteTimeout))
		if enc.Encode(e) == nil {
			_ = rc.Flush()
		}
	}
	worst := 0
	for _, idx := range idxs {
		name := cfg.Servers[idx].Name
		rs := d.connTest(r.Context(), cfg, idx, func(s transfer.StepResult) { send(stepEvent(name, s)) })
		v := checkVerdict(rs)
		worst = max(worst, v)
		send(Event{Type: "check-done", Server: name, Result: verdictWords[v]})
	}
	send(Event{Type: "check-done", Result: verdictWords[worst], Detail: fmt.Sprintf("%d server(s) tested", len(idxs))})
}

// stepEvent is the event of one step of the connection test.
func stepEvent(server string, s transfer.StepResult) Event {
	e := Event{Type: "check", Server: server, Step: s.Step, Result: s.Verdict.String(), Detail: s.Detail, Fix: s.Fix}
	if s.Err != nil {
		e.Class = transfer.ClassOf(s.Err).String()
	}
	return e
}

func hostPort(s Server) string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }
