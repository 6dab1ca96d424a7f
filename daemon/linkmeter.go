package daemon

import "time"

// linkMeter measures what the link really carries, from the uploads' own
// progress: each worker's rate over the data phase of its uploads,
// smoothed per worker (EWMA), summed over the workers uploading now
// (parallel uploads share the link). It is the gate's; gate.mu guards it.
//
// The kernel's socket buffers take the first megabytes of an upload at
// once, so the progress reports of an upload's first seconds run ahead of
// the link. An upload's rate is therefore its bytes over the time from its
// first report to its end (the server's reply and the rename included),
// and a long upload is sampled along the way only once meterSettle has
// passed, from then on. Uploads of less than meterMinBytes, whose time is
// mostly round trips, are not sampled.
type linkMeter struct {
	workers map[string]*workerMeter
	rate    float64 // bytes per second; 0 = not measured yet
}

type workerMeter struct {
	run    any       // the upload reported last (nil: none running)
	start  time.Time // its first report
	bytes  int64     // bytes reported since start
	mark   time.Time // start of the current along-the-way sample (zero: not settled yet)
	marked int64     // bytes at mark
	ewma   float64
	active bool
}

const (
	meterAlpha    = 0.3             // weight of a new sample
	meterMinBytes = 512 << 10       // smaller uploads are not sampled
	meterSettle   = 2 * time.Second // an upload's first seconds fill the socket buffers
	meterEvery    = time.Second     // along-the-way sample period of a long upload
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
		*w = workerMeter{run: run, start: now, ewma: w.ewma, active: true}
		return
	}
	w.bytes += n
	switch {
	case w.mark.IsZero() && now.Sub(w.start) >= meterSettle:
		w.mark, w.marked = now, w.bytes
	case !w.mark.IsZero() && now.Sub(w.mark) >= meterEvery:
		m.sample(w, float64(w.bytes-w.marked)/now.Sub(w.mark).Seconds())
		w.mark, w.marked = now, w.bytes
	}
}

// end notes that worker's upload ended at now: its last sample, and its
// rate no longer adds to the others'. Its smoothed rate is kept for its
// next upload.
func (m *linkMeter) end(worker string, now time.Time) {
	w := m.workers[worker]
	if w == nil || w.run == nil {
		return
	}
	switch {
	case !w.mark.IsZero() && now.Sub(w.mark) >= meterEvery/4:
		m.sample(w, float64(w.bytes-w.marked)/now.Sub(w.mark).Seconds())
	case w.mark.IsZero() && w.bytes >= meterMinBytes && now.After(w.start):
		m.sample(w, float64(w.bytes)/now.Sub(w.start).Seconds())
	}
	*w = workerMeter{ewma: w.ewma}
}

// sample adds r to w's smoothed rate and sums the link's.
func (m *linkMeter) sample(w *workerMeter, r float64) {
	if w.ewma == 0 {
		w.ewma = r
	} else {
		w.ewma = meterAlpha*r + (1-meterAlpha)*w.ewma
	}
	sum := 0.0
	for _, o := range m.workers {
		if o.active {
			sum += o.ewma
		}
	}
	m.rate = sum
}
