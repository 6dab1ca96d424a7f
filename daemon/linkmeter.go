package daemon

import "time"

// linkMeter measures what the link really carries, from the uploads' own
// progress reports: each worker's rate over its data phase only (the time
// between two reports of the same upload, so logins, renames and idle
// time do not count), smoothed per worker (EWMA over samples of at least
// meterSample), and summed over the workers uploading now (parallel
// uploads share the link). It is the gate's; gate.mu guards it.
type linkMeter struct {
	workers map[string]*workerMeter
	rate    float64 // bytes per second; 0 = not measured yet
}

type workerMeter struct {
	run    any // the upload reported last (nil: none running)
	last   time.Time
	bytes  int64
	busy   time.Duration
	ewma   float64
	active bool
}

const (
	meterSample = 500 * time.Millisecond // data-phase time per sample
	meterAlpha  = 0.3                    // weight of a new sample: about the last 3 s of data phase
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
	w.active = true
	if w.run != run || n > meterMaxChunk || now.Before(w.last) {
		// The first report of an upload starts its timing: the time
		// before it was the login and the commands, not the link's.
		w.run, w.last = run, now
		return
	}
	w.bytes += n
	w.busy += now.Sub(w.last)
	w.last = now
	if w.busy < meterSample {
		return
	}
	r := float64(w.bytes) / w.busy.Seconds()
	if w.ewma == 0 {
		w.ewma = r
	} else {
		w.ewma = meterAlpha*r + (1-meterAlpha)*w.ewma
	}
	w.bytes, w.busy = 0, 0
	sum := 0.0
	for _, o := range m.workers {
		if o.active {
			sum += o.ewma
		}
	}
	m.rate = sum
}

// end notes that worker's upload ended: its rate no longer adds to the
// others'. Its smoothed rate is kept for its next upload.
func (m *linkMeter) end(worker string) {
	if w := m.workers[worker]; w != nil {
		w.active, w.run, w.bytes, w.busy = false, nil, 0, 0
	}
}
