package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// The time-to-desk goals of issue 14, for single shots on loopback.
const (
	goalStartP50    = 10 * time.Millisecond  // file closed -> upload start, p50
	goalStartP99    = 50 * time.Millisecond  // file closed -> upload start, p99
	goalCompleteP50 = 100 * time.Millisecond // file closed -> complete on the server, p50
	goalCurlShare   = 0.5                    // ... and below this share of curl's p50
	shotChunk       = 1 << 20                // the camera writes a shot in 1 MiB chunks
)

// latencyResult is one tool's single shots: for each shot, from the file
// closed in the watched folder to its upload starting on the server (the
// file the upload writes created there, whatever its name) and to the file
// complete on the server under its final name.
type latencyResult struct {
	Tool    string
	Start   []time.Duration // closed -> upload start
	Samples []time.Duration // closed -> complete
}

// latencyRun writes single shots at a fixed interval, as a camera in
// single-shot mode does (create, 1 MiB writes, close), and measures each
// one from the moment close() returned. The curl peer gets an ideal
// watcher: curl starts the moment the file is closed, one at a time.
func (e *env) latencyRun(ctx context.Context, tool string, shots []srcFile, interval time.Duration) (latencyResult, error) {
	res := latencyResult{Tool: tool}
	names, want, err := e.freshShots(shots)
	if err != nil {
		return res, err
	}
	arr, err := watchArrivals(e.srv.Root, want)
	if err != nil {
		return res, err
	}
	defer arr.Close()
	var exited <-chan error
	var queue chan<- string
	endQueue := func(bool) {}
	if tool == toolCamftpd {
		d, err := startDaemon(e.camftpd, filepath.Join(e.work, "camftpd"), camftpdConfig(filepath.Join(e.work, "camftpd"), e.drop, e.srv, "127.0.0.1", e.camExtra))
		if err != nil {
			return res, err
		}
		defer d.Stop()
		exited = d.Exited()
	} else {
		queue, exited, endQueue = e.peerWatcher(ctx, tool, len(shots))
		defer endQueue(true)
	}
	closed := make([]time.Time, len(shots))
	buf := make([]byte, shotChunk)
	start := time.Now()
	for i, s := range shots {
		if w := time.Until(start.Add(time.Duration(i) * interval)); w > 0 {
			select {
			case <-time.After(w):
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
		p := filepath.Join(e.drop, names[i])
		if closed[i], err = writeShot(s.Path, p, buf); err != nil {
			return res, err
		}
		if queue != nil {
			queue <- p
		}
	}
	endQueue(false)
	if err := arr.Wait(2*time.Minute, exited); err != nil {
		return res, fmt.Errorf("%s latency: %w", tool, err)
	}
	got, started := arr.Times(), arr.Starts()
	for i, n := range names {
		st, ok := started[n]
		if !ok {
			return res, fmt.Errorf("%s latency: %s arrived but no upload of it was seen starting on the server", tool, n)
		}
		res.Start = append(res.Start, st.Sub(closed[i]))
		res.Samples = append(res.Samples, got[n].Sub(closed[i]))
	}
	return res, nil
}

// peerWatcher runs the peer once per path sent on queue (buffered for n),
// in order, as an ideal shell watcher would. end closes queue (once; the
// watcher then finishes the paths sent) and, with wait, waits for the
// watcher; exited reports its end: the first failure, or nil.
func (e *env) peerWatcher(ctx context.Context, tool string, n int) (queue chan<- string, exited <-chan error, end func(wait bool)) {
	q := make(chan string, n)
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for p := range q {
			if _, err := runTree(ctx, e.peerArgs(tool, false, []string{p})); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var once sync.Once
	return q, done, func(wait bool) {
		once.Do(func() { close(q) })
		if wait {
			<-finished
		}
	}
}

// writeShot writes dst the way a camera writes a capture: create, the
// content in 1 MiB writes, close. It returns the time close() returned.
func writeShot(src, dst string, buf []byte) (time.Time, error) {
	in, err := os.Open(src)
	if err != nil {
		return time.Time{}, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return time.Time{}, err
	}
	for {
		n, rerr := io.ReadFull(in, buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				out.Close()
				return time.Time{}, err
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			out.Close()
			return time.Time{}, rerr
		}
	}
	if err := out.Close(); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}

// goal is one time-to-desk goal judged on camftpd's figures, with curl's
// beside it.
type goal struct {
	What     string // the goal
	Camftpd  string // camftpd's figure
	Curl     string // curl's same figure
	Verdict  string // "met", "missed", or why it was not judged
	Met      bool
	Judged   bool
	Measured time.Duration
}

func (r *results) latencyOf(tool string) *latencyResult {
	for i := range r.Latency {
		if r.Latency[i].Tool == tool {
			return &r.Latency[i]
		}
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
func sec(d time.Duration) string {
	return fmt.Sprintf("%.3f s", d.Seconds())
}

// latencyGoals judges issue 14's goals on camftpd's single shots, each
// against the limit and beside curl's figure from the same run.
func (r *results) latencyGoals() []goal {
	cam, curl := r.latencyOf(toolCamftpd), r.latencyOf(toolCurl)
	fig := func(l *latencyResult, start bool, p float64, format func(time.Duration) string) (string, time.Duration, bool) {
		if l == nil || len(l.Samples) == 0 {
			return "no run", 0, false
		}
		v := l.Samples
		if start {
			v = l.Start
		}
		d := percentile(v, p)
		return format(d), d, true
	}
	var out []goal
	judge := func(what string, start bool, p float64, limit time.Duration, format func(time.Duration) string) {
		g := goal{What: what}
		var ok bool
		g.Camftpd, g.Measured, ok = fig(cam, start, p, format)
		g.Curl, _, _ = fig(curl, start, p, format)
		g.Judged = ok
		g.Met = ok && g.Measured <= limit
		out = append(out, g)
	}
	judge("closed -> upload start, p50 <= 10 ms", true, 50, goalStartP50, ms)
	judge("closed -> upload start, p99 <= 50 ms", true, 99, goalStartP99, ms)
	judge("closed -> complete on the server, p50 <= 0.1 s", false, 50, goalCompleteP50, sec)
	g := goal{What: "closed -> complete p50 below half of curl's (camftpd ÷ curl < 0.50)"}
	_, c, okc := fig(cam, false, 50, sec)
	_, k, okk := fig(curl, false, 50, sec)
	switch {
	case !okc:
		g.Camftpd, g.Curl = "no run", "-"
	case !okk || k == 0:
		g.Camftpd, g.Curl = fmt.Sprintf("%.3f s", c.Seconds()), "no run"
	default:
		g.Camftpd, g.Curl = fmt.Sprintf("÷ curl %.2f", float64(c)/float64(k)), "1.00"
		g.Judged, g.Met = true, float64(c) < goalCurlShare*float64(k)
	}
	out = append(out, g)
	for i := range out {
		switch {
		case !out[i].Judged:
			out[i].Verdict = "not judged (no run)"
		case out[i].Met:
			out[i].Verdict = "met"
		default:
			out[i].Verdict = "missed"
		}
	}
	return out
}

// latencyTitle says what the single-shot figures are.
func (r *results) latencyTitle() string {
	n := 0
	if len(r.Latency) > 0 {
		n = len(r.Latency[0].Samples)
	}
	return fmt.Sprintf("Time to the desk: %d single shots at 1 shot/s, %s-%s, each written into the watched folder in 1 MiB writes and closed; "+
		"start = file closed -> the file its upload writes is created on the server (any name); complete = file closed -> complete on the server under its final name",
		n, human(r.Sizes.BurstMin), human(r.Sizes.BurstMax))
}

var latencyHeader = []string{"tool", "shots", "start p50 ms", "start p99 ms", "start max ms", "complete p50 s", "complete p99 s", "complete max s", "complete p50 ÷ curl"}

func (r *results) latencyRows() [][]string {
	curl := r.latencyOf(toolCurl)
	var out [][]string
	for _, l := range r.Latency {
		c50 := percentile(l.Samples, 50)
		ratio := "-"
		if curl != nil && len(curl.Samples) > 0 && percentile(curl.Samples, 50) > 0 {
			ratio = fmt.Sprintf("%.2f", float64(c50)/float64(percentile(curl.Samples, 50)))
		}
		out = append(out, []string{l.Tool, fmt.Sprint(len(l.Samples)),
			fmt.Sprintf("%.1f", float64(percentile(l.Start, 50))/1e6), fmt.Sprintf("%.1f", float64(percentile(l.Start, 99))/1e6),
			fmt.Sprintf("%.1f", float64(percentile(l.Start, 100))/1e6),
			fmt.Sprintf("%.3f", c50.Seconds()), fmt.Sprintf("%.3f", percentile(l.Samples, 99).Seconds()),
			fmt.Sprintf("%.3f", percentile(l.Samples, 100).Seconds()), ratio})
	}
	return out
}

// latencyText is the single-shot part of the text report.
func (r *results) latencyText() string {
	if len(r.Latency) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n" + r.latencyTitle() + ":\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  "+strings.Join(latencyHeader, "\t"))
	for _, row := range r.latencyRows() {
		fmt.Fprintln(tw, "  "+strings.Join(row, "\t"))
	}
	tw.Flush()
	b.WriteString("goals (issue 14), camftpd [curl beside it]:\n")
	for _, g := range r.latencyGoals() {
		fmt.Fprintf(&b, "  %-68s %-16s [curl %s]  %s\n", g.What, g.Camftpd, g.Curl, strings.ToUpper(g.Verdict))
	}
	return b.String()
}

// latencyMarkdown is the single-shot part of BENCHMARKS.md's results.
func (r *results) latencyMarkdown() string {
	if len(r.Latency) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n" + r.latencyTitle() + ":\n\n")
	b.WriteString("| " + strings.Join(latencyHeader, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat(" --- |", len(latencyHeader)) + "\n")
	for _, row := range r.latencyRows() {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	b.WriteString("\n| goal (issue 14) | camftpd | curl | |\n| --- | --- | --- | --- |\n")
	for _, g := range r.latencyGoals() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", g.What, g.Camftpd, g.Curl, g.Verdict)
	}
	return b.String()
}

// freshShots empties the server's folder and the drop folder for a run and
// names its shots SHOT_0001.JPG on: the names in order, and each name's
// size (what watchArrivals waits for).
func (e *env) freshShots(shots []srcFile) (names []string, want map[string]int64, err error) {
	if err := e.srv.Clear(); err != nil {
		return nil, nil, err
	}
	if err := clearDir(e.drop); err != nil {
		return nil, nil, err
	}
	want = map[string]int64{}
	names = make([]string, len(shots))
	for i, s := range shots {
		names[i] = fmt.Sprintf("SHOT_%04d.JPG", i+1)
		want[names[i]] = s.Size
	}
	return names, want, nil
}
