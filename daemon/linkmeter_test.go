package daemon

import (
	"math"
	"testing"
	"time"
)

// TestLinkMeter on a synthetic clock: an upload's rate is its bytes over
// its first report to its end; a resumed upload's offset, the login
// before the first report and uploads under 512 KiB do not count; one
// worker after another is one link, two at once add up (their spans
// overlap); a long upload is
// sampled after its first 2 s (the socket buffers' burst) only.
func TestLinkMeter(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > want*0.01 {
			t.Errorf("%s: %.0f B/s, want %.0f", what, got, want)
		}
	}
	// upload reports n chunks of 128 KiB over secs seconds from start,
	// after a first report of offset bytes, and ends at end.
	upload := func(m *linkMeter, worker string, run any, start float64, offset int64, n int, secs, end float64) {
		m.add(worker, run, at(start), offset)
		for i := 1; i <= n; i++ {
			m.add(worker, run, at(start+secs*float64(i)/float64(n)), 128<<10)
		}
		m.end(worker, at(end))
	}
	var m linkMeter
	upload(&m, "w1", 1, 0, 0, 2, 0.1, 5) // 256 KiB: round trips, not timed
	if m.rate != 0 {
		t.Fatalf("a 256 KiB upload was timed: %.0f", m.rate)
	}
	upload(&m, "w1", 2, 10, 50<<20, 8, 0.2, 11) // 1 MiB after a 50 MiB REST offset, over 1 s
	near("one upload (REST offset ignored)", m.rate, 1<<20)
	upload(&m, "w2", 3, 12, 0, 8, 0.2, 13) // another worker, alone: the same link
	near("workers one after another", m.rate, 1<<20)

	// Two at once, each at 1 MiB/s: the link carries 2 MiB/s.
	var p linkMeter
	p.add("w1", 1, at(0), 0)
	p.add("w2", 2, at(0), 0)
	for i := 1; i <= 8; i++ {
		p.add("w1", 1, at(float64(i)/8), 128<<10)
		p.add("w2", 2, at(float64(i)/8), 128<<10)
	}
	p.end("w1", at(1))
	p.end("w2", at(1))
	near("two uploads at once", p.rate, 2<<20)

	// A long upload: 4 MiB in its first 0.1 s (into the socket buffers),
	// then 1 MiB/s: only the steady part is sampled.
	var l linkMeter
	l.add("w1", 1, at(0), 0)
	for i := 1; i <= 32; i++ {
		l.add("w1", 1, at(0.1*float64(i)/32), 128<<10)
	}
	for i := 1; i <= 8*6; i++ {
		l.add("w1", 1, at(0.1+float64(i)/8), 128<<10)
	}
	near("a long upload after its buffer burst", l.rate, 1<<20)
}
