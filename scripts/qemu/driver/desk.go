package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// deskTimes are the time-to-desk figures of the captures of one shutter run
// (scripts/qemu/shutter), all from the guest's clock: for each capture, from
// close() returning in the camera to the daemon's first start event for it
// (the upload begins) and to its done event (complete on the server).
type deskTimes struct {
	start, done []time.Duration
	missing     []string // captures without a close time, start or done event
	negative    []string // an event before the close: the clock or the data is wrong
}

// parseDesk reads the DESK lines the shutter printed (daemon log lines may
// share the console: a line is found by its DESK field anywhere in it) for
// the captures named in want.
func parseDesk(lines []string, want map[string]string) deskTimes {
	var d deskTimes
	seen := map[string]bool{}
	for _, l := range lines {
		i := strings.Index(l, "DESK ")
		if i < 0 {
			continue
		}
		f := strings.Fields(l[i:])
		if len(f) != 5 {
			continue
		}
		if _, ok := want[f[1]]; !ok || seen[f[1]] {
			continue
		}
		var ns [3]int64
		ok := true
		for j := range ns {
			n, err := strconv.ParseInt(f[2+j], 10, 64)
			ok = ok && err == nil && n > 0
			ns[j] = n
		}
		if !ok {
			continue
		}
		seen[f[1]] = true
		start, done := time.Duration(ns[1]-ns[0]), time.Duration(ns[2]-ns[0])
		if start < 0 || done < start {
			d.negative = append(d.negative, f[1])
			continue
		}
		d.start = append(d.start, start)
		d.done = append(d.done, done)
	}
	for n := range want {
		if !seen[n] {
			d.missing = append(d.missing, n)
		}
	}
	sort.Strings(d.missing)
	return d
}

// pct is the nearest-rank percentile of v (0 for none).
func pct(v []time.Duration, p float64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// String is the figures' part of the scenario line.
func (d deskTimes) String() string {
	if len(d.start) == 0 {
		return fmt.Sprintf("time to desk: no capture with a close time and both events (%d without)", len(d.missing)+len(d.negative))
	}
	s := fmt.Sprintf("time to desk (guest clock, %d captures): closed->start p50 %.1f ms p99 %.1f ms, closed->complete p50 %.3f s p99 %.3f s",
		len(d.start), float64(pct(d.start, 50))/1e6, float64(pct(d.start, 99))/1e6, pct(d.done, 50).Seconds(), pct(d.done, 99).Seconds())
	if n := len(d.missing) + len(d.negative); n > 0 {
		s += fmt.Sprintf(" (%d captures left out: %s)", n, strings.Join(append(append([]string(nil), d.missing...), d.negative...), ", "))
	}
	return s
}

// timedShots is one shutter run: how long the camera took to write the
// captures, how long after the last one the server had them all, and the
// time to desk of each.
type timedShots struct {
	shooting, lag time.Duration
	desk          deskTimes
}

// shootTimed has the guest's shutter write count captures PREFIX0001.JPG ...
// of 200 KiB, delay apart, adds them to want, waits until the server has
// them all and the shutter has reported their events, and returns the
// figures. Their timing is reported, not judged.
func (e *env) shootTimed(g *Guest, prefix string, count int, delay time.Duration, want map[string]string) (timedShots, error) {
	var t timedShots
	mark := g.Mark()
	t0 := time.Now()
	if err := g.Send(fmt.Sprintf("shutter -prefix %s -count %d -kb 200 -delay %v", prefix, count, delay)); err != nil {
		return t, fmt.Errorf("shooting: console: %w", err)
	}
	// The shutter's own errors start with "shutter: " (no event stream,
	// a write that failed): they end the wait at once.
	_, l, _, err := g.WaitLine(mark, 300*time.Second, func(l string) bool {
		return strings.HasPrefix(l, "SHOOT-DONE "+prefix) || strings.HasPrefix(l, "shutter: ")
	})
	if err != nil {
		return t, fmt.Errorf("shooting: %w", err)
	}
	if strings.HasPrefix(l, "shutter: ") {
		return t, fmt.Errorf("shooting: %s", l)
	}
	t.shooting = time.Since(t0)
	these := map[string]string{}
	synced(g.Lines(mark), these)
	if len(these) != count {
		return t, fmt.Errorf("the camera reported %d of %d captures written", len(these), count)
	}
	for n, s := range these {
		want[n] = s
	}
	if _, err := e.waitArrived(these, 180*time.Second); err != nil {
		return t, fmt.Errorf("%w: %s", err, e.check(these, nil).why())
	}
	t.lag = time.Since(t0) - t.shooting
	if _, _, err := g.WaitPrefix(mark, 60*time.Second, "SHUTTER-DONE "+prefix); err != nil {
		return t, fmt.Errorf("the shutter's event report: %w", err)
	}
	t.desk = parseDesk(g.Lines(mark), these)
	return t, nil
}
