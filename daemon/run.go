package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/camftpd/camftpd/board"
	"github.com/camftpd/camftpd/queue"
)

// Goroutines and their owners. Run owns, and waits for before it returns:
// the status server (serveStatus's done), the media watcher (watcherRun),
// the clock wait (runLoop.bg), and the
// workers' generation (genRun). A generation owns its dispatcher, its
// workers, the failback prober and a worker's clock wait (schedule's
// WaitGroup). The queue is closed only once the generation has stopped:
// when it outlives shutdownGrace, Run says what is still running and
// returns an error with the queue open (the process exit releases it).
// The board's mount and link monitors are the board's: they end with
// Run's ctx and then close their channels.

// errShutdownLate is the class of Run's error when uploads outlived the
// shutdown grace period.
var errShutdownLate = errors.New("uploads did not stop in time")

type watcherRun struct {
	w      *watcher
	cancel context.CancelFunc
	done   chan error
}

func (d *Daemon) startWatcher(ctx context.Context, cfg *Config) *watcherRun {
	w := newWatcher(cfg, d.q, d.log.With("part", "watcher"))
	if d.writers != nil {
		w.lease.writers = d.writers
	}
	w.onComplete = d.onComplete
	w.beforeEnqueue = d.beforeEnqueue
	w.onSettling = d.prewarm
	w.onWanted = d.onWanted
	w.onQueueErr = func(file string, err error) { d.health.queueWriteFailed("enqueue", file, err) }
	wctx, cancel := context.WithCancel(ctx)
	r := &watcherRun{w: w, cancel: cancel, done: make(chan error, 1)}
	d.mu.Lock()
	d.w = w
	d.mu.Unlock()
	go func() { r.done <- w.run(wctx) }() // joined by stop, or by Run reading done
	return r
}

func (r *watcherRun) stop() {
	if r == nil {
		return
	}
	r.cancel()
	if err := <-r.done; err != nil {
		r.w.log.Warn("media watcher ended with an error while stopping", "err", err)
	}
}

// genRun is one generation of upload workers (one configuration). done is
// closed once every goroutine of the generation has returned.
type genRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	busy   *busyList
}

func (d *Daemon) startGen(ctx context.Context, cfg *Config) *genRun {
	gctx, cancel := context.WithCancel(ctx)
	g := &genRun{cancel: cancel, done: make(chan struct{}), busy: &busyList{m: map[string]string{}}}
	go func() { // joined by stop, or by the run loop reading done
		defer close(g.done)
		d.schedule(gctx, cfg, g.busy)
	}()
	return g
}

// stop cancels g and gives its uploads until deadline to reach a resumable
// point; it reports whether every goroutine of g has returned.
func (g *genRun) stop(deadline time.Duration) bool {
	g.cancel()
	t := time.NewTimer(deadline)
	defer t.Stop()
	select {
	case <-g.done:
		return true
	case <-t.C:
		return false
	}
}

// runLoop is Run's state between events; only Run's goroutine touches it.
type runLoop struct {
	d   *Daemon
	ctx context.Context
	q   *queue.Queue
	bg  sync.WaitGroup // monitors and the clock wait; they end with ctx

	gen     *genRun
	pending *Config // a reload waiting for gen to stop

	wat        *watcherRun
	watRetry   <-chan time.Time
	watBackoff time.Duration

	mountCh    <-chan board.MountEvent
	linkCh     <-chan board.LinkEvent
	mountAgain restart // the mount monitor's restarts after its channel closed
	linkAgain  restart
}

// restart paces the restarts of a kernel monitor whose channel closed: 1 s,
// doubling to 1 min; the pace starts over once the monitor sent an event.
type restart struct {
	at      <-chan time.Time // nil: no restart planned
	backoff time.Duration
}

func (r *restart) plan() time.Duration {
	in := max(r.backoff, time.Second)
	r.at = time.After(in)
	r.backoff = min(2*in, time.Minute)
	return in
}

// Run runs the daemon until ctx ends, then drains the uploads in flight to
// a resumable point and returns within 5 s. An upload that does not stop
// within shutdownGrace makes it return an error naming it, with the queue
// left open under the worker (see the comment at the top of this file).
func (d *Daemon) Run(ctx context.Context) error {
	cfg := d.cfg
	q, err := d.openQueue(cfg)
	if err != nil {
		return err
	}
	sctx, stopStatus := context.WithCancel(context.WithoutCancel(ctx))
	statusDone, err := d.serveStatus(sctx, cfg.StatusSocket)
	if err != nil {
		stopStatus()
		d.closeQueue(q)
		return err
	}
	l := &runLoop{d: d, ctx: ctx, q: q, watBackoff: time.Second}
	l.startMonitors(cfg)
	l.startClockWait()
	close(d.ready)
	d.log.Info("camftpd running", "version", Version, "media_dir", cfg.MediaDir, "server", cfg.Active,
		"workers", cfg.Workers, "status_socket", cfg.StatusSocket)
	l.gen = d.startGen(ctx, cfg)
	l.wat = d.startWatcher(ctx, cfg)
	err = l.loop()
	l.bg.Wait()
	stopStatus()
	<-statusDone
	if err == nil {
		d.closeQueue(q)
	}
	return err
}

// openQueue opens the queue in cfg.StateDir and releases the leases a
// killed daemon left.
func (d *Daemon) openQueue(cfg *Config) (*queue.Queue, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create state_dir %s: %v (fix its path or permissions)", cfg.StateDir, unwrapPathErr(err))
	}
	qopts := &queue.Options{
		BackoffMin: cfg.RetryMin, BackoffMax: cfg.RetryMax, LeaseTime: d.leaseTime(),
		Logger: d.log.With("part", "queue"),
	}
	if d.wallClock != nil {
		start := time.Now()
		qopts.Now, qopts.Elapsed = d.wallClock, func() time.Duration { return time.Since(start) }
	}
	q, err := queue.Open(filepath.Join(cfg.StateDir, "queue.db"), qopts)
	if err != nil {
		return nil, fmt.Errorf("cannot open queue in %s: %w", cfg.StateDir, err)
	}
	if q.Recovered() {
		d.log.Warn("queue file was corrupt; moved aside and started a new one", "dir", cfg.StateDir)
	}
	// We are the only process using this queue (bbolt holds a lock):
	// leases left by a killed daemon are stale.
	if stale, err := q.List(queue.InFlight); err == nil {
		for _, it := range stale {
			d.durable("release", it, q.Release(it.ID))
		}
		if len(stale) > 0 {
			d.log.Info("released uploads interrupted by the last stop; they resume", "count", len(stale))
		}
	} else {
		d.log.Error("cannot list the uploads interrupted by the last stop; they resume when their lease ends", "err", err)
	}
	d.mu.Lock()
	d.q = q
	d.mu.Unlock()
	return q, nil
}

func (d *Daemon) closeQueue(q *queue.Queue) {
	if err := q.Close(); err != nil {
		d.log.Error("cannot close the queue cleanly; the next start checks it", "err", err)
	}
}

// startClockWait waits, when the clock is not set, for it to be set before
// uploads start.
func (l *runLoop) startClockWait() {
	d := l.d
	if board.ClockSane(time.Now()) {
		return
	}
	d.setState(func() { d.clockWait = true })
	d.log.Warn("system clock is not set; waiting before judging certificates")
	l.bg.Go(func() { // ends with ctx, joined by Run
		if board.WaitClock(l.ctx, time.Now) == nil {
			d.setState(func() { d.clockWait = false })
			d.log.Info("system clock is set; uploads start")
		}
	})
}

// loop handles events until ctx ends.
func (l *runLoop) loop() error {
	for {
		var watDone chan error
		if l.wat != nil {
			watDone = l.wat.done
		}
		var genDone chan struct{}
		if l.pending != nil {
			genDone = l.gen.done
		}
		select {
		case <-l.ctx.Done():
			return l.shutdown()
		case err := <-watDone:
			l.watcherEnded(err)
		case <-l.watRetry:
			l.retryWatcher()
		case ev, ok := <-l.mountCh:
			l.mountEvent(ev, ok)
		case ev, ok := <-l.linkCh:
			l.linkEvent(ev, ok)
		case <-l.mountAgain.at:
			l.mountAgain.at = nil
			l.restartMount()
		case <-l.linkAgain.at:
			l.linkAgain.at = nil
			l.restartLink()
		case ncfg := <-l.d.reloadCh:
			l.reload(ncfg)
		case <-genDone:
			l.startPending()
		}
	}
}

// shutdown stops the watcher and the workers. When an upload outlives
// shutdownGrace it says which and returns an error of class
// errShutdownLate.
func (l *runLoop) shutdown() error {
	d := l.d
	d.log.Info("stopping: draining uploads to a resumable point")
	l.wat.stop()
	if l.gen.stop(shutdownGrace) {
		return nil
	}
	busy := l.gen.busy.list()
	if len(busy) == 0 {
		busy = []string{"a worker outside an upload"}
	}
	d.log.Error("uploads did not stop within the grace period; they resume at the next start",
		"grace", shutdownGrace, "running", busy)
	return fmt.Errorf("%w: still running after %v: %s (they resume at the next start)",
		errShutdownLate, shutdownGrace, strings.Join(busy, "; "))
}

func (l *runLoop) watcherEnded(err error) {
	d := l.d
	l.wat = nil
	if err == nil {
		return
	}
	d.log.Error("media watcher stopped", "err", err, "retry_in", l.watBackoff)
	d.setState(func() { d.mediaErr = err.Error() })
	l.watRetry = time.After(l.watBackoff)
	l.watBackoff = min(l.watBackoff*2, time.Minute)
}

func (l *runLoop) retryWatcher() {
	d := l.d
	l.watRetry = nil
	if d.isMediaGone() {
		return
	}
	l.wat = d.startWatcher(l.ctx, d.config())
	d.setState(func() { d.mediaErr = "" })
	l.watBackoff = time.Second
}

func (l *runLoop) mountEvent(ev board.MountEvent, ok bool) {
	d := l.d
	if !ok {
		// The media state stays what the monitor said last: the restarted
		// monitor's first event is the current state.
		l.mountCh = nil
		l.monitorLost("mount", &l.mountAgain)
		return
	}
	l.mountAgain.backoff = 0
	if !ev.Mounted && !d.isMediaGone() {
		d.log.Warn("media unmounted: uploads paused", "path", ev.Path)
		d.setState(func() { d.mediaGone = true })
		d.cancelUploads()
		l.wat.stop()
		l.wat, l.watRetry = nil, nil
	} else if ev.Mounted && d.isMediaGone() {
		d.log.Info("media mounted: rescanning and resuming", "path", ev.Path)
		d.setState(func() { d.mediaGone = false; d.mediaErr = "" })
		if l.wat == nil {
			l.wat = d.startWatcher(l.ctx, d.config())
		}
	}
}

func (l *runLoop) linkEvent(ev board.LinkEvent, ok bool) {
	d := l.d
	if !ok {
		// Until the restarted monitor says, uploads follow the backoff
		// only (as without a monitor), instead of staying paused on the
		// last "down".
		l.linkCh = nil
		d.setState(func() { d.link = "unknown" })
		l.monitorLost("link", &l.linkAgain)
		return
	}
	l.linkAgain.backoff = 0
	if ev.Up {
		d.setState(func() { d.link = "up" })
		if err := l.q.ResetBackoff(); err != nil {
			d.log.Warn("cannot reset retry backoff", "err", err)
			d.health.queueWriteFailed("reset backoff", "(every retrying item)", err)
		}
		d.log.Info("network link up: retrying now", "iface", ev.Iface)
		return
	}
	// Stop at once (the uploads are released and resume with REST when
	// the link is up) rather than retrying into a dead link and holding a
	// stalled upload for Timeout.
	d.linkDown()
	d.setState(func() { d.link = "down" })
	d.cancelUploads()
	d.log.Warn("network link down: uploads paused until it is up", "iface", ev.Iface)
}

// reload asks the running generation to stop; the new one starts when it
// has (startPending), never beside it. A reload that arrives meanwhile
// replaces the pending one.
func (l *runLoop) reload(ncfg *Config) {
	d := l.d
	ncfg = keepStartOnly(d, ncfg, d.config())
	d.log.Info("reloading configuration", "file", ncfg.Path)
	if l.pending == nil {
		l.gen.cancel()
	}
	l.pending = ncfg
}

// keepStartOnly keeps in ncfg the settings of old that take effect only
// at a start, and says which changed.
func keepStartOnly(d *Daemon, ncfg, old *Config) *Config {
	keep := []string{}
	if ncfg.StateDir != old.StateDir {
		keep = append(keep, "state_dir")
		ncfg.StateDir = old.StateDir
	}
	if ncfg.StatusSocket != old.StatusSocket {
		keep = append(keep, "status_socket")
		ncfg.StatusSocket = old.StatusSocket
	}
	if ncfg.Board != old.Board {
		keep = append(keep, "board")
		ncfg.Board, ncfg.Profile = old.Board, old.Profile
	}
	if len(keep) > 0 {
		d.log.Warn("reload: these settings take effect at the next start", "keys", keep)
	}
	return ncfg
}

// startPending starts the generation of the pending reload once the old
// one has stopped, and restarts the watcher when its settings changed.
func (l *runLoop) startPending() {
	d := l.d
	ncfg, old := l.pending, d.config()
	l.pending = nil
	watchChanged := ncfg.MediaDir != old.MediaDir || ncfg.Settle != old.Settle || ncfg.RawJPEG != old.RawJPEG ||
		ncfg.Backlog != old.Backlog || ncfg.OnlyProtected != old.OnlyProtected ||
		!reflect.DeepEqual(ncfg.Include, old.Include) || !reflect.DeepEqual(ncfg.Exclude, old.Exclude)
	d.setState(func() {
		d.cfg = ncfg
		d.blocked = ""
		d.clockWait = d.clockWait && !board.ClockSane(time.Now())
		d.active = ncfg.ActiveIndex()
		d.failStreak, d.retrying = 0, ""
	})
	if watchChanged && l.wat != nil {
		l.wat.stop()
		l.wat = d.startWatcher(l.ctx, ncfg)
	}
	l.gen = d.startGen(l.ctx, ncfg)
}

// startMonitors follows the storage mount and the network link when the
// board names them. A monitor that cannot start here is not retried (the
// board cannot follow it: no rtnetlink, a bad name); one whose channel
// closes later is restarted (monitorLost).
func (l *runLoop) startMonitors(cfg *Config) {
	d := l.d
	if p := cfg.Profile.StorageMount; p != "" {
		if err := l.watchMount(p); err != nil {
			d.log.Warn("cannot follow the storage mount; assuming it stays mounted", "path", p, "err", err)
		}
	}
	if ifc := cfg.Profile.Interface; ifc != "" {
		if err := l.watchLink(ifc); err != nil {
			d.log.Warn("cannot follow the network link; retries follow the backoff only", "iface", ifc, "err", err)
		}
	}
}

func (l *runLoop) watchMount(path string) (err error) {
	wm := l.d.watchMount
	if wm == nil {
		wm = board.WatchMount
	}
	l.mountCh, err = wm(l.ctx, path)
	return err
}

func (l *runLoop) watchLink(iface string) (err error) {
	wl := l.d.watchLink
	if wl == nil {
		wl = board.WatchLink
	}
	l.linkCh, err = wl(l.ctx, iface)
	return err
}

// monitorLost plans the restart of a monitor whose channel closed (the
// board closes it on an unexpected error) and shows it in the status.
func (l *runLoop) monitorLost(name string, r *restart) {
	if l.ctx.Err() != nil {
		return
	}
	in := r.plan()
	l.d.log.Error("kernel monitor stopped; restarting it", "monitor", name, "retry_in", in)
	l.d.health.setDegraded(name, fmt.Sprintf("monitor stopped; restarting in %v", in))
}

// restartMount and restartLink start a lost monitor again (the board's
// configuration is not reloaded: board changes take effect at a start).
func (l *runLoop) restartMount() {
	p := l.d.config().Profile.StorageMount
	if err := l.watchMount(p); err != nil {
		in := l.mountAgain.plan()
		l.d.log.Error("cannot restart the storage mount monitor", "path", p, "err", err, "retry_in", in)
		l.d.health.setDegraded("mount", fmt.Sprintf("cannot restart: %v; next try in %v", err, in))
		return
	}
	l.d.log.Info("storage mount monitor restarted", "path", p)
	l.d.health.setDegraded("mount", "")
}

func (l *runLoop) restartLink() {
	ifc := l.d.config().Profile.Interface
	if err := l.watchLink(ifc); err != nil {
		in := l.linkAgain.plan()
		l.d.log.Error("cannot restart the network link monitor", "iface", ifc, "err", err, "retry_in", in)
		l.d.health.setDegraded("link", fmt.Sprintf("cannot restart: %v; next try in %v", err, in))
		return
	}
	l.d.log.Info("network link monitor restarted", "iface", ifc)
	l.d.health.setDegraded("link", "")
}
