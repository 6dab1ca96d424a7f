package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Workload "ot" (overtaking, issue 14 item 3): a movie uploading while
// OTShots JPEG shots arrive at OTRate per second. Three runs per camftpd
// setting, each with a fresh daemon: the shots alone, the movie alone, and
// the movie with the shots dropped once its upload is under way. Measured:
// each shot's latency (file closed -> complete on the server, and, from
// the daemon's own events, queued -> upload start and queued -> done), the
// movie's time (dropped -> complete on the server) and the pauses. The
// runs go through the link emulator (100 Mbit/s, 20 ms RTT): on loopback
// the movie (about 6 s per GiB here) can end before the last shot.
const (
	otShots = 10
	otRate  = 2.0 // shots per second
)

// otRun is one run of the overtaking workload.
type otRun struct {
	Label      string
	Movie      time.Duration   // movie dropped -> complete (0: no movie)
	Close      []time.Duration // per shot: file closed -> complete on the server
	QueueStart []time.Duration // per shot: queued -> upload start (daemon events)
	QueueDone  []time.Duration // per shot: queued -> done (daemon events)
	Pauses     int             // "paused" events
	// PauseStart: per pause, the overtaking still's queued -> upload start
	// (the 100 ms goal: a still that found every worker busy).
	PauseStart []time.Duration
	Resumed    int64 // the movie's done event: resumed_from of its last attempt
}

// otResult is the workload's figures for one camftpd setting.
type otResult struct {
	Setting                       string // "workers = 2 (default)", "workers = 1"
	Alone, MovieAlone, WithMovie  otRun
	MovieBytes, ShotBytes, LinkBs int64
}

// overtakeBench runs the workload for the default setting and for one
// worker; the results go to res.Overtake.
func (e *env) overtakeBench(ctx context.Context, movie srcFile, shots []srcFile, res *results) {
	for _, setting := range []string{"", "workers = 1"} {
		r := &otResult{Setting: or(setting, "workers = 2 (default)"), MovieBytes: movie.Size, LinkBs: int64(linkRate)}
		for _, s := range shots {
			r.ShotBytes += s.Size
		}
		for _, run := range []struct {
			into         *otRun
			label        string
			movie, shots bool
		}{{&r.Alone, "shots alone", false, true}, {&r.MovieAlone, "movie alone", true, false}, {&r.WithMovie, "movie + shots", true, true}} {
			if ctx.Err() != nil {
				return
			}
			fmt.Fprintf(e.log, "  ot (%s): %-14s ...", r.Setting, run.label)
			var m *srcFile
			if run.movie {
				m = &movie
			}
			var sh []srcFile
			if run.shots {
				sh = shots
			}
			x, err := e.otOnce(ctx, setting, m, sh)
			if err != nil {
				fmt.Fprintf(e.log, " FAILED: %v\n", err)
				res.fail("ot", toolCamftpd+" "+r.Setting+" "+run.label, err)
				continue
			}
			x.Label = run.label
			*run.into = x
			fmt.Fprintf(e.log, " movie %.2f s, shots close->complete p50 %.3f s max %.3f s, queued->start p50 %.3f s max %.3f s, pauses %d (still queued->start %v)\n",
				x.Movie.Seconds(), percentile(x.Close, 50).Seconds(), percentile(x.Close, 100).Seconds(),
				percentile(x.QueueStart, 50).Seconds(), percentile(x.QueueStart, 100).Seconds(), x.Pauses, x.PauseStart)
		}
		res.Overtake = append(res.Overtake, r)
	}
}

// otOnce runs one fresh daemon over the link: the movie (if any) dropped
// first, the shots (if any) written one by one at otRate once the movie's
// upload is under way.
func (e *env) otOnce(ctx context.Context, setting string, movie *srcFile, shots []srcFile) (otRun, error) {
	var r otRun
	names, want, err := e.freshShots(shots)
	if err != nil {
		return r, err
	}
	if movie != nil {
		want[movie.Name] = movie.Size
	}
	arr, err := watchArrivals(e.srv.Root, want)
	if err != nil {
		return r, err
	}
	defer arr.Close()
	dir := filepath.Join(e.work, "camftpd")
	d, err := startDaemon(e.camftpd, dir, camftpdConfig(dir, e.drop, e.srv, e.linkIP, setting))
	if err != nil {
		return r, err
	}
	defer d.Stop()
	evs, err := d.streamEvents(ctx)
	if err != nil {
		return r, err
	}
	var movieAt time.Time
	if movie != nil {
		movieAt = time.Now()
		if _, err := drop(e.drop, []srcFile{*movie}); err != nil {
			return r, err
		}
		// Under way: its temporary file on the server, then 1 s more.
		for arr.First().IsZero() {
			if time.Since(movieAt) > time.Minute {
				return r, fmt.Errorf("the movie's upload did not start within a minute")
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Second)
	}
	closed := make([]time.Time, len(shots))
	start := time.Now()
	for i, s := range shots {
		if w := time.Until(start.Add(time.Duration(float64(i) / otRate * float64(time.Second)))); w > 0 {
			time.Sleep(w)
		}
		at, err := otWrite(s.Path, filepath.Join(e.drop, names[i]))
		if err != nil {
			return r, err
		}
		closed[i] = at
	}
	if err := arr.Wait(10*time.Minute, d.Exited()); err != nil {
		return r, fmt.Errorf("ot: %w", err)
	}
	got := arr.Times()
	for i := range shots {
		r.Close = append(r.Close, got[names[i]].Sub(closed[i]))
	}
	if movie != nil {
		r.Movie = got[movie.Name].Sub(movieAt)
	}
	if err := d.WaitUploaded(len(want), time.Minute); err != nil {
		return r, err
	}
	time.Sleep(200 * time.Millisecond) // the last events through the stream
	evs.fill(&r, names, movie)
	return r, nil
}

// otEvents collects a daemon's /events stream (NDJSON).
type otEvents struct {
	ch   chan otEvent
	stop context.CancelFunc
}

type otEvent struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	File    string    `json:"file"`
	Resumed int64     `json:"resumed_from"`
	Reason  string    `json:"reason"`
}

// streamEvents subscribes to the daemon's events until ctx ends or the
// daemon stops; the status client's 5 s timeout would cut the stream.
func (d *daemonProc) streamEvents(ctx context.Context) (*otEvents, error) {
	cctx, cancel := context.WithCancel(ctx)
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var nd net.Dialer
		return nd.DialContext(ctx, "unix", d.sock)
	}}}
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, "http://camftpd/events", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := c.Do(req) //nolint:bodyclose // ev.read closes it; bodyclose does not follow the goroutine
	if err != nil {
		cancel()
		return nil, fmt.Errorf("camftpd /events: %w", err)
	}
	ev := &otEvents{ch: make(chan otEvent, 1<<16), stop: cancel}
	go ev.read(resp.Body)
	return ev, nil
}

// read decodes the stream until it ends (fill cancels it), then closes
// the body and ev.ch.
func (ev *otEvents) read(body io.ReadCloser) {
	defer body.Close()
	defer close(ev.ch)
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		var e otEvent
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Type != "progress" {
			ev.ch <- e
		}
	}
}

// fill ends the stream and takes each shot's queued, start and done times
// and the movie's pauses from it.
func (ev *otEvents) fill(r *otRun, names []string, movie *srcFile) {
	ev.stop()
	queued, started, done := map[string]time.Time{}, map[string]time.Time{}, map[string]time.Time{}
	var by []string // the still of each pause
	for e := range ev.ch {
		base := e.File[strings.LastIndex(e.File, "/")+1:]
		switch e.Type {
		case "queued":
			queued[base] = e.Time
		case "start":
			if _, ok := started[base]; !ok {
				started[base] = e.Time
			}
		case "done":
			done[base] = e.Time
			if movie != nil && base == movie.Name {
				r.Resumed = e.Resumed
			}
		case "paused":
			r.Pauses++
			by = append(by, e.Reason[strings.LastIndex(e.Reason, "/")+1:])
		}
	}
	for _, s := range by {
		s = strings.TrimPrefix(s, "overtaken by ")
		r.PauseStart = append(r.PauseStart, started[s].Sub(queued[s]))
	}
	for _, n := range names {
		if q, ok := queued[n]; ok {
			r.QueueStart = append(r.QueueStart, started[n].Sub(q))
			r.QueueDone = append(r.QueueDone, done[n].Sub(q))
		}
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// otText is the workload's summary (text and markdown alike).
func (r *results) otText() string {
	if len(r.Overtake) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nOvertaking (ot): a %s movie uploading while %d JPEG shots arrive at %.0f per second, over the emulated link (100 Mbit/s, 20 ms RTT); one fresh daemon per run:\n\n",
		human(r.Overtake[0].MovieBytes), otShots, otRate)
	b.WriteString("| setting | run | movie s | shots close->complete p50 / max s | queued->start p50 / max s | queued->done p50 / max s | pauses | overtaking still queued->start max s | movie resumed from |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	p := func(v []time.Duration, q float64) float64 { return percentile(v, q).Seconds() }
	for _, o := range r.Overtake {
		for _, x := range []otRun{o.Alone, o.MovieAlone, o.WithMovie} {
			fmt.Fprintf(&b, "| %s | %s | %.2f | %.3f / %.3f | %.3f / %.3f | %.3f / %.3f | %d | %.3f | %d |\n", o.Setting, x.Label, x.Movie.Seconds(),
				p(x.Close, 50), p(x.Close, 100), p(x.QueueStart, 50), p(x.QueueStart, 100), p(x.QueueDone, 50), p(x.QueueDone, 100), x.Pauses,
				p(x.PauseStart, 100), x.Resumed)
		}
	}
	b.WriteString("\n")
	for _, o := range r.Overtake {
		floor := float64(o.ShotBytes) / float64(o.LinkBs)
		fmt.Fprintf(&b, "- %s: movie %.3fx its time alone (goal <= 1.05; the shots' own %.0f MB take %.2f s of the link, %.3fx); shot queued->done p50 %.2fx, close->complete p50 %.2fx the shots alone (goal <= 1.5).\n",
			o.Setting, o.WithMovie.Movie.Seconds()/o.MovieAlone.Movie.Seconds(), float64(o.ShotBytes)/1e6, floor,
			(o.MovieAlone.Movie.Seconds()+floor)/o.MovieAlone.Movie.Seconds(),
			p(o.WithMovie.QueueDone, 50)/p(o.Alone.QueueDone, 50), p(o.WithMovie.Close, 50)/p(o.Alone.Close, 50))
	}
	return b.String()
}

// otWrite writes dst as a camera writes a capture (create, write, close)
// and returns when close returned. Its own: run.go's and latency.go's
// helpers for the same differ between branches.
func otWrite(src, dst string) (time.Time, error) {
	in, err := os.Open(src)
	if err != nil {
		return time.Time{}, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return time.Time{}, err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return time.Time{}, err
	}
	if err := out.Close(); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}
