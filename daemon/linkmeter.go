package daemon

import (
	"sort"
	"time"
)

// linkMeter measures what the link really carries, from the uploads' own
// progress: the bytes of the last meterKeep timed spans of uploads over
// the time those spans cover together (parallel uploads share the link:
// two overlapping spans of 1 MB/s each make 2 MB/s; one after the other,
// 1 MB/s). It is the gate's; gate.mu guards it.
//
// The kernel's socket buffers take the first megabytes of an upload at
// once, so the progress reports of an upload's first seconds run ahead of
// the link. A span therefore runs from an upload's first report to its
// end (the server's reply and the rename included), and a long upload is
// cut into spans along the way only once meterSettle has passed, from
// then on. Uploads of less than meterMinBytes, whose time is mostly round
// trips, are not timed.
type linkMeter struct {
	workers map[string]*workerMeter
	spans   []meterSpan // the last meterKeep, oldest first
	rate    float64     // bytes per second; 0 = not measured yet
}

type workerMeter struct {
	run    any       // the upload reported last (nil: none running)
	start  time.Time // its first report
	bytes  int64     // bytes reported since start
	mark   time.Time // start of the current span (zero: not settled yet)
	marked int64     // bytes at mark
}

type meterSpan struct {
	from, to time.Time
	bytes    int64
}

const (
	meterKeep     = 8               // spans the rate is taken over
	meterMinBytes = 512 << 10       // smaller uploads are not timed
	meterSettle   = 2 * time.Second // an upload's first seconds fill the socket buffers
	meterEvery    = time.Second     // span length along a long upload
	// meterMaxChunk: a larger single report is a resumed upload's offset
	// (the first report of a REST), not bytes sent (transfer writes at
	// most 128 KiB at a time).
	meterMaxChunk = 1 << 20
)

// add notes n bytes reported by worker's upload run at now.
func (m *linkMeter) add(worker string, run any, now time.Time, n int64) {
	if m.workers == nil {
		m.workers = map[string]*workerMeter{}
	}
	w := m.workers[worker]
	if w == nil {
		w = &workerMeter{}
		m.workers[worker] = w
	}
	if w.run != run || n > meterMaxChunk {
		// The first report of an upload starts its timing: the time
		// before it was the login and the commands, not the link's.
		*w = workerMeter{run: run, start: now}
		return
	}
	w.bytes += n
	switch {
	case w.mark.IsZero() && now.Sub(w.start) >= meterSettle:
		w.mark, w.marked = now, w.bytes
	case !w.mark.IsZero() && now.Sub(w.mark) >= meterEvery:
		m.span(w.mark, now, w.bytes-w.marked)
		w.mark, w.marked = now, w.bytes
	}
}

// end notes that worker's upload ended at now: its last span.
func (m *linkMeter) end(worker string, now time.Time) {
	w := m.workers[worker]
	if w == nil || w.run == nil {
		return
	}
	switch {
	case !w.mark.IsZero() && now.Sub(w.mark) >= meterEvery/4:
		m.span(w.mark, now, w.bytes-w.marked)
	case w.mark.IsZero() && w.bytes >= meterMinBytes && now.After(w.start):
		m.span(w.start, now, w.bytes)
	}
	*w = workerMeter{}
}

// reset forgets every span and the uploads being timed: the link went
// down, and what it carried before says nothing of the link that comes
// back (another access point, another network). Until the first new
// span the rate is 0, not measured: the link counts as fast.
func (m *linkMeter) reset() {
	*m = linkMeter{}
}

// span adds a timed span and takes the rate again: the bytes of the kept
// spans over the length of their union.
func (m *linkMeter) span(from, to time.Time, bytes int64) {
	if !to.After(from) {
		return
	}
	m.spans = append(m.spans, meterSpan{from, to, bytes})
	if len(m.spans) > meterKeep {
		m.spans = m.spans[len(m.spans)-meterKeep:]
	}
	s := append([]meterSpan(nil), m.spans...)
	sort.Slice(s, func(i, j int) bool { return s[i].from.Before(s[j].from) })
	var sum int64
	var cover time.Duration
	end := time.Time{}
	for _, x := range s {
		sum += x.bytes
		switch {
		case !x.from.Before(end):
			cover += x.to.Sub(x.from)
			end = x.to
		case x.to.After(end):
			cover += x.to.Sub(end)
			end = x.to
		}
	}
	m.rate = float64(sum) / cover.Seconds()
}
