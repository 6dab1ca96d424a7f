package daemon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camftpd/camftpd/board"
	"github.com/camftpd/camftpd/queue"
)

// shutdownGrace bounds how long Run waits for uploads to stop at a
// resumable point once its context ends (the whole exit stays under 5 s).
const shutdownGrace = 3500 * time.Millisecond

// Daemon is a running camftpd: watcher, queue, upload workers and status socket.
type Daemon struct {
	log      *slog.Logger
	hub      *hub
	reloadCh chan *Config
	ready    chan struct{}
	started  time.Time
	// orphanGen counts noteOrphans: a worker that found no orphan to
	// delete at generation g looks again when it changed (see cleanOrphans).
	orphanGen atomic.Uint64

	// Hooks for tests; nil means the board's kernel events.
	watchMount func(ctx context.Context, path string) (<-chan board.MountEvent, error)
	watchLink  func(ctx context.Context, iface string) (<-chan board.LinkEvent, error)
	// crashBeforeRecord, when it returns true for an item, makes the worker
	// stop after a successful upload without recording it, as a process
	// killed between the server's rename and the queue's write would.
	crashBeforeRecord func(it queue.Item) bool
	// wallClock, when set, is the wall clock of the queue's due times and
	// of the certificate checks (tests step it); the queue re-plans on its
	// steps against the process's monotonic clock. Nil: time.Now.
	wallClock func() time.Time
	// beforeOpen runs in the worker between the lease and the only open
	// of the capture (tests swap the file there).
	beforeOpen func(it queue.Item)
	// onWorker is called with +1 when an upload worker starts and -1 when
	// it has stopped (tests count the workers alive).
	onWorker func(delta int)
	// lease, when set, replaces leaseTime (tests shorten it).
	lease time.Duration
	// writers, when set, replaces the watcher's writer check
	// (openForWriting; tests of the settle fallback).
	writers func(string) (bool, error)

	// Each of these has its own lock, never held with mu.
	stats    stats    // figures: done, skipped, bytes, rate, latencies, last TLS
	health   health   // failed queue writes, kernel monitors restarting
	limiters limiters // bandwidth limits, one per server for all workers
	gate     gate     // link speed, battery and the upload policy (power.go)
	ot       otState  // pauses for waiting stills (see overtaken.go)

	// pubMu orders publishState's calls and guards led, the LED's state
	// (truth.go); parkedSeen says the last one saw parked items waiting.
	pubMu      sync.Mutex
	led        string
	parkedSeen atomic.Bool
	parked     parkedCache // what the parked items say (truth.go)

	// checking: a POST /check runs (conntest.go); a second one gets 409.
	checking atomic.Bool

	// mu guards the run state, from which the status, the LED and the
	// dispatcher's decisions are derived together (snapLocked, truth.go): the
	// configuration and active server (failover), what holds uploads
	// back, the uploads in flight, and the parts the status reads.
	mu         sync.Mutex
	cfg        *Config
	changed    chan struct{} // closed and replaced on every state change
	userPaused bool
	mediaGone  bool
	mediaErr   string
	blocked    string
	clockWait  bool
	retrying   string // last transient server failure, until an upload succeeds
	link       string
	active     int
	failStreak int
	uploads    map[string]*upload // by worker
	q          *queue.Queue
	w          *watcher
	warm       []chan struct{} // one per upload worker; see prewarm
}

type upload struct {
	ID, File, Worker, Server, Remote string
	Sent, Total, ResumedFrom         int64
	Started                          time.Time
	cancel                           context.CancelFunc
	// pause cancels the upload with a cause (overtaking: see
	// overtake.go); rank is its overtaking rank, pausing set once a pause
	// was asked for.
	pause   context.CancelCauseFunc
	rank    int
	pausing bool
}

// New returns a daemon for cfg; log may be nil.
func New(cfg *Config, log *slog.Logger) *Daemon {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Daemon{
		log:      log,
		hub:      newHub(),
		reloadCh: make(chan *Config, 1),
		ready:    make(chan struct{}),
		cfg:      cfg,
		changed:  make(chan struct{}),
		uploads:  map[string]*upload{},
		link:     "unknown",
		active:   cfg.ActiveIndex(),
	}
}

// Subscribe returns the progress event stream; call the func to stop.
func (d *Daemon) Subscribe() (<-chan Event, func()) { return d.hub.subscribe(1024) }

// Ready is closed once the queue is open and the status socket listens.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Queue returns the open queue (nil before Ready).
func (d *Daemon) Queue() *queue.Queue {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.q
}

// Reload applies a new, validated configuration (SIGHUP). It also lifts a
// "blocked" state (as Resume does).
func (d *Daemon) Reload(cfg *Config) {
	select {
	case <-d.reloadCh:
	default:
	}
	d.reloadCh <- cfg
}

// Pause stops uploading (the upload in flight stops at a resumable point).
func (d *Daemon) Pause() { d.setState(func() { d.userPaused = true }); d.cancelUploads() }

// Resume undoes Pause and lifts a "blocked" state (see liftBlock).
func (d *Daemon) Resume() {
	d.setState(func() { d.userPaused = false })
	d.liftBlock("resume")
}

// Latencies returns capture-complete to upload-start latencies measured so far.
func (d *Daemon) Latencies() []time.Duration {
	return d.stats.latencyList()
}

// setState changes the run state under the lock, wakes the dispatcher and
// publishes the new state.
func (d *Daemon) setState(f func()) {
	d.mu.Lock()
	f()
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
	d.publishState()
}

// publishState sends a state event and updates the status LED. pubMu
// orders the calls: the queue is read outside mu, and an older reading
// must not set the LED after a newer one.
func (d *Daemon) publishState() {
	d.pubMu.Lock()
	defer d.pubMu.Unlock()
	d.mu.Lock()
	r, q, prof := d.snapLocked(), d.q, d.cfg.Profile
	d.mu.Unlock()
	f := d.queueFacts(q)
	st, led := stateOf(r, f, d.now()), ledOf(r, f)
	ledChanged := led != d.led
	d.led = led
	d.parkedSeen.Store(f.parkedN > 0)
	if ledChanged && prof.LED != "" {
		if err := prof.Indicate(led); err != nil {
			d.log.Warn("status LED", "err", err)
		}
	}
	d.hub.publish(Event{Type: "state", State: st})
}

// now is the wall clock of the queue's due times (see wallClock).
func (d *Daemon) now() time.Time {
	if d.wallClock != nil {
		return d.wallClock()
	}
	return time.Now()
}

func (d *Daemon) changedCh() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changed
}

func (d *Daemon) canRun() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.userPaused && !d.mediaGone && d.blocked == "" && !d.clockWait && d.link != "down"
}

func (d *Daemon) cancelUploads() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, u := range d.uploads {
		u.cancel()
	}
}

// prewarm asks every idle upload worker to log in now, while a new capture
// settles, so that its upload starts on a logged-in control connection
// instead of spending the settle window idle and then the login's round
// trips (TCP, AUTH TLS, TLS handshake, USER, PASS, FEAT, TYPE). Requests
// coalesce; a worker with a live connection does nothing.
func (d *Daemon) prewarm() {
	if !d.canRun() {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ch := range d.warm {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// beforeEnqueue notes when a capture became complete (for latency figures),
// before a worker can lease it.
func (d *Daemon) beforeEnqueue(path string, at time.Time) {
	d.stats.completed(path, at)
}

func (d *Daemon) onComplete(it queue.Item, added bool, at time.Time) {
	if !added || it.State == queue.Held {
		d.stats.forget(it.Capture.Path)
	}
	if added && d.parkedSeen.Load() {
		d.publishState() // a vanished, parked capture may be back
	}
	switch {
	case added && it.State == queue.Held:
		d.hub.publish(Event{Type: "held", ID: it.ID, File: it.Capture.Rel, Total: it.Capture.Size, Reason: it.Reason})
	case added:
		d.hub.publish(Event{Type: "queued", ID: it.ID, File: it.Capture.Rel, Total: it.Capture.Size})
	}
}

// onWanted reports a held capture made pending (protected, queue add).
func (d *Daemon) onWanted(it queue.Item, why string) {
	d.hub.publish(Event{Type: "queued", ID: it.ID, File: it.Capture.Rel, Total: it.Capture.Size, Reason: why})
}

// leaseTime is how long a lease lasts; an upload renews it every third
// of it (see renewLease).
const leaseTime = 2 * time.Minute

// leaseTime is the queue's lease time: the constant, or the test's lease.
func (d *Daemon) leaseTime() time.Duration {
	if d.lease > 0 {
		return d.lease
	}
	return leaseTime
}

func (d *Daemon) config() *Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

func (d *Daemon) isMediaGone() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mediaGone
}

var errBlocked = errors.New("blocked")
