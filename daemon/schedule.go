package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/camftpd/camftpd/queue"
	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer"
)

const (
	progressEvery = 100 * time.Millisecond
	idleClose     = 30 * time.Second // close server connections after this long without work
	warmPause     = 30 * time.Second // after a failed prewarm, the uploads' own retries take over
)

// worker is one upload worker of a generation. Its methods are split by
// concern over schedule.go (loop, prewarm, clients), attempt.go (one
// upload), localfile.go (the capture's file), orphans.go and retry.go,
// which call each other (see doc.go's file layers).
type worker struct {
	d        *Daemon
	name     string
	cfg      *Config
	policies []*tlspolicy.Policy
	clients  map[int]*transfer.Client
	jobs     chan queue.Item
	warm     chan struct{}   // prewarm requests (buffered, coalescing)
	warmErr  time.Time       // last failed prewarm: no other for warmPause
	bg       *sync.WaitGroup // the workers' group: what a worker starts, schedule joins
	busy     *busyList       // the generation's: what this worker is uploading
	acking   chan struct{}   // closed when the last ackSoon record is written (ack.go)
	// cleanOrphans: the last failure (none other for retry_min) and the
	// orphan generation of the last time none was left (see orphans.go).
	orphanErr   time.Time
	orphanGen   uint64
	orphansSeen bool
}

// busyList says what each worker of a generation is doing, for the report
// of a shutdown that outlives its grace period. mu guards m.
type busyList struct {
	mu sync.Mutex
	m  map[string]string // worker -> "file to server"
}

func (b *busyList) set(worker, what string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if what == "" {
		delete(b.m, worker)
		return
	}
	b.m[worker] = what
}

// list returns "worker: what" for every busy worker, sorted.
func (b *busyList) list() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := make([]string, 0, len(b.m))
	for w, what := range b.m {
		l = append(l, w+": "+what)
	}
	sort.Strings(l)
	return l
}

// schedule runs cfg.Workers upload workers fed by one dispatcher until ctx
// ends, and returns once every goroutine it started has returned (wg: the
// workers, the failback prober, a worker's clock wait). The dispatcher
// never polls: it waits on the queue's wake channel, a timer at the next
// retry due time, a state change, or ctx.
func (d *Daemon) schedule(ctx context.Context, cfg *Config, busy *busyList) {
	policies := d.policies(cfg)
	var wg sync.WaitGroup
	defer wg.Wait()
	ready := make(chan *worker)
	warm := make([]chan struct{}, cfg.Workers)
	for i := range cfg.Workers {
		w := &worker{d: d, name: fmt.Sprintf("w%d", i+1), cfg: cfg, policies: policies,
			clients: map[int]*transfer.Client{}, jobs: make(chan queue.Item), warm: make(chan struct{}, 1), bg: &wg, busy: busy}
		warm[i] = w.warm
		wg.Go(func() { w.loop(ctx, ready) })
	}
	if cfg.Failover && len(cfg.Servers) > 1 {
		wg.Go(func() { d.failback(ctx, cfg, policies) })
	}
	d.startPower(ctx, cfg, &wg) // the battery, read before the first lease
	d.setWarm(warm)
	defer d.setWarm(nil)
	wake := d.Queue().Wake() // read here only while every worker is busy
	kick := d.ot.kicked()    // an upload began: it may be one to pause
	for check := false; ; check = true {
		var w *worker
		if check { // after a lease or a wake: an idle worker, or overtaking
			w = d.afterDispatch(ready)
		}
		for w == nil {
			select {
			case w = <-ready:
			case <-wake:
				w = d.afterDispatch(ready)
			case <-kick:
				w = d.afterDispatch(ready)
			case <-ctx.Done():
				return
			}
		}
		if !d.dispatch(ctx, w) {
			return
		}
	}
}

// policies returns the TLS policy of each server (nil where its settings
// were refused: uploads to it block, see noPolicy).
func (d *Daemon) policies(cfg *Config) []*tlspolicy.Policy {
	policies := make([]*tlspolicy.Policy, len(cfg.Servers))
	for i, s := range cfg.Servers {
		opts := serverTLS(cfg, s) // the trust store and cert_warn_days too (tlsopts.go)
		opts.Logger, opts.Now = d.log.With("part", "tls", "server", s.Name), d.wallClock
		p, err := tlspolicy.New(opts)
		if err != nil {
			if i == d.activeIndex() {
				d.block(fmt.Sprintf("tls-policy: server %q: %v", s.Name, err))
			}
			d.log.Error("TLS settings refused", "server", s.Name, "err", err)
			continue
		}
		policies[i] = p
	}
	return policies
}

// setWarm sets the prewarm channels of the running workers (see prewarm).
func (d *Daemon) setWarm(warm []chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.warm = warm
}

// dispatch hands the idle worker w the next item due, waiting for one as
// long as it takes; it returns false when ctx ended.
func (d *Daemon) dispatch(ctx context.Context, w *worker) bool {
	q := d.Queue()
	for {
		changed := d.changedCh()
		if !d.canRun() {
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return false
			}
		}
		it, ok, err := d.leaseGated(q, w.name) // queue.Lease through the link and battery policy (power.go)
		if err != nil {
			d.log.Error("queue lease failed; trying again in 1 s", "err", err)
			d.health.queueWriteFailed("lease", "(the next item due)", err)
		}
		if ok {
			select {
			case w.jobs <- it:
				return true
			case <-ctx.Done():
				d.durable("release", it, q.Release(it.ID))
				return false
			}
		}
		if !d.waitDue(ctx, q, changed, err != nil) {
			return false
		}
	}
}

// waitDue waits for the queue's wake channel, the next due time (1 s after
// a failed lease), a state change or ctx; it returns false when ctx ended.
func (d *Daemon) waitDue(ctx context.Context, q *queue.Queue, changed <-chan struct{}, leaseFailed bool) bool {
	var timer <-chan time.Time
	if leaseFailed {
		t := time.NewTimer(time.Second)
		defer t.Stop()
		timer = t.C
	} else if in, ok := q.NextDueIn(); ok { // on the queue's clock (see queue.Options.Elapsed)
		t := time.NewTimer(max(in, 20*time.Millisecond))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-q.Wake():
	case <-timer:
	case <-changed:
	case <-ctx.Done():
		return false
	}
	return true
}

func (w *worker) loop(ctx context.Context, ready chan<- *worker) {
	if h := w.d.onWorker; h != nil { // tests: count the workers alive
		h(1)
		defer h(-1)
	}
	defer w.closeClients()
	idle := time.NewTimer(idleClose)
	idle.Stop()
	defer idle.Stop()
	offer := ready // nil while the dispatcher holds this worker
	w.cleanOrphans(ctx)
	for {
		select {
		case offer <- w:
			offer = nil
		case it := <-w.jobs: // only ever sent to a worker the dispatcher holds
			w.busy.set(w.name, it.Capture.Rel+" to server "+w.cfg.Servers[w.d.activeIndex()].Name)
			w.process(ctx, it)
			w.d.uploadEnded(w.name)
			w.busy.set(w.name, "")
			w.cleanOrphans(ctx)
			offer = ready
			if len(w.clients) > 0 {
				idle.Reset(idleClose)
			}
		case <-w.warm:
			if w.prewarm(ctx) {
				idle.Reset(idleClose)
			}
		case <-idle.C:
			w.closeClients()
		case <-ctx.Done():
			return
		}
	}
}

// prewarm logs the worker's client for the active server in (see
// Daemon.prewarm); it reports whether the worker now holds a client. A
// failure is only logged: the upload that follows meets it again and
// handles it (retry, block).
func (w *worker) prewarm(ctx context.Context) bool {
	if !w.d.canRun() || time.Since(w.warmErr) < warmPause {
		return len(w.clients) > 0
	}
	c, _, err := w.client(w.d.activeIndex())
	if err != nil {
		return len(w.clients) > 0
	}
	start := time.Now()
	if err := c.Warm(ctx); err != nil {
		if ctx.Err() == nil {
			w.warmErr = time.Now()
			w.d.log.Debug("prewarm: login failed; the upload will retry", "worker", w.name, "err", err)
		}
	} else {
		w.d.log.Debug("prewarm: logged in", "worker", w.name, "seconds", time.Since(start).Seconds())
	}
	return true
}

func (w *worker) closeClients() {
	for i, c := range w.clients {
		_ = c.Close()
		delete(w.clients, i)
	}
}

func (w *worker) client(idx int) (*transfer.Client, *tlspolicy.Policy, error) {
	pol := w.policies[idx]
	if pol == nil {
		return nil, nil, errBlocked
	}
	if c := w.clients[idx]; c != nil {
		return c, pol, nil
	}
	c := transfer.New(w.d.clientConfig(w.cfg, idx, pol, w.name))
	w.clients[idx] = c
	return c, pol, nil
}

// clientConfig is the transfer configuration of server idx for one worker
// (who: its name in the logs). Every worker's Client for a server shares
// that server's one Limiter: bandwidth_limit holds for the whole daemon,
// and a worker uploading alone gets all of it (not limit ÷ workers).
func (d *Daemon) clientConfig(cfg *Config, idx int, pol *tlspolicy.Policy, who string) transfer.Config {
	s := cfg.Servers[idx]
	tc := transfer.Config{
		Host: s.Host, Port: s.Port, User: s.User, Password: s.Password.reveal(), TLS: pol.Config(), Policy: pol,
		Timeout: s.Timeout, ConnectTimeout: s.ConnectTimeout, SameName: s.SameName,
		BandwidthLimit: s.BandwidthLimit, Limiter: d.limiters.get(s.Name, s.BandwidthLimit),
		RecordSHA256: cfg.RecordSHA256,
		Logger:       d.log.With("part", "transfer", "server", s.Name, "worker", who),
	}
	s.applyConnOptions(&tc)
	return tc
}

func (w *worker) dropClient(idx int) {
	if c := w.clients[idx]; c != nil {
		_ = c.Close()
		delete(w.clients, idx)
	}
}

func (d *Daemon) activeIndex() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.active
}

func (d *Daemon) block(reason string) {
	d.setState(func() { d.blocked = reason })
	d.log.Error("uploads stopped: fix the cause, then camftpd queue retry (POST /resume) or reload (SIGHUP)", "reason", reason)
}

// renewLease renews it's lease every third of the lease time until the
// func it returns is called, which stops the renewing and waits for a
// renewal under way: the lease follows the clock, not the upload's
// progress, so that a step that makes no progress for a lease time (a
// stalled data connection, a slow server) does not let another worker
// lease the item. A timer, not a goroutine waiting on one: most uploads
// end long before the first renewal, and then cost no goroutine and no
// wake-up (BENCHMARKS.md, "Where the per-file CPU goes").
func (w *worker) renewLease(it queue.Item) (stop func()) {
	d := w.d
	q, every := d.Queue(), d.leaseTime()/3
	var mu sync.Mutex // guards stopped and t; a renewal joins running under it
	var running sync.WaitGroup
	stopped := false
	var t *time.Timer
	mu.Lock()
	t = time.AfterFunc(every, func() {
		mu.Lock()
		if stopped {
			mu.Unlock()
			return
		}
		running.Add(1)
		mu.Unlock()
		defer running.Done()
		d.durable("renew", it, q.Renew(it.ID))
		mu.Lock()
		if !stopped {
			t.Reset(every)
		}
		mu.Unlock()
	})
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
		running.Wait()
	}
}

// failback runs while failover is on: whenever another server than the
// configured active one is in use, it tries the configured one every
// FailbackAfter with a login only (no upload waits on it), and when that
// works, uploads go back to it. On the configured server it waits for a
// state change, without a timer.
func (d *Daemon) failback(ctx context.Context, cfg *Config, policies []*tlspolicy.Policy) {
	primary := cfg.ActiveIndex()
	for {
		changed := d.changedCh()
		if d.activeIndex() == primary || policies[primary] == nil {
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return
			}
		}
		t := time.NewTimer(cfg.FailbackAfter)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		if d.activeIndex() == primary || !d.canRun() {
			continue
		}
		s := cfg.Servers[primary]
		c := transfer.New(d.clientConfig(cfg, primary, policies[primary], "failback"))
		err := c.Warm(ctx)
		_ = c.Close()
		if err != nil {
			d.log.Info("active server still unreachable; staying on the failover server", "server", s.Name, "err", tlspolicy.OneLine(err.Error()))
			continue
		}
		d.setState(func() { d.active, d.failStreak = primary, 0 })
		d.log.Warn("active server answers again: uploads go back to it", "server", s.Name)
	}
}

// noteTransient counts a transient failure on server (failover) and keeps
// msg for the status until an upload succeeds.
func (d *Daemon) noteTransient(server, msg string) {
	cfg := d.config()
	d.mu.Lock()
	d.failStreak++
	d.retrying = "server " + server + ": " + msg
	switchTo := -1
	if cfg.Failover && len(cfg.Servers) > 1 && d.failStreak >= cfg.FailoverAfter {
		switchTo = (d.active + 1) % len(cfg.Servers)
	}
	d.mu.Unlock()
	if switchTo >= 0 {
		d.setState(func() { d.active, d.failStreak = switchTo, 0 })
		d.log.Warn("failing over to the next server", "from", server, "to", cfg.Servers[switchTo].Name)
	}
}

func (d *Daemon) noteTLS(server string, pol *tlspolicy.Policy, engine string) {
	n, ok := pol.Last()
	if !ok {
		return
	}
	info := &TLSInfo{Server: server, Version: tls.VersionName(n.Version), Suite: n.SuiteName,
		SuiteID: fmt.Sprintf("0x%04x", n.Suite), Class: n.Class.String(), Warning: n.Warning, Resumed: n.Resumed,
		Pinned: n.Pinned, CertNotAfter: n.CertNotAfter, CertDaysLeft: n.CertDaysLeft, CertWarning: n.CertWarning, Engine: engine}
	prev := d.stats.setTLS(info)
	if prev == nil || prev.Suite != info.Suite || prev.Version != info.Version || prev.CertWarning != info.CertWarning {
		d.hub.publish(Event{Type: "tls", State: info.Version + " " + info.Suite + " (" + info.Class + ")", Error: tlsWarnings(info)})
		if info.Warning != "" {
			d.log.Warn("TLS suite warning (deprecated suite, or TLS 1.3 on ChaCha20)", "server", server, "suite", info.Suite, "warning", info.Warning)
		}
	}
}

func pct(sent, total int64) float64 {
	if total <= 0 {
		return 100
	}
	return float64(int(float64(sent)*1000/float64(total))) / 10
}

// skipped settles an item whose remote name is held by another file under
// same_name skip: recorded as skipped, never as done, and counted apart.
func (w *worker) skipped(it queue.Item, res transfer.Result) {
	d := w.d
	reason := "the name is taken on the server by another file (same_name = \"skip\")"
	// As for done: counters, log and event before the queue record.
	d.stats.skipped()
	d.mu.Lock()
	d.failStreak, d.retrying = 0, ""
	d.mu.Unlock()
	d.log.Info("not uploaded: remote name taken by another file", "file", it.Capture.Rel, "remote", res.Remote)
	d.hub.publish(Event{Type: "skipped", ID: it.ID, File: it.Capture.Rel, Worker: w.name, Remote: res.Remote, Error: reason})
	d.durable("skip", it, d.Queue().Skip(it.ID, res.Remote, reason))
}

// durable logs a queue change that could not be written (a full state
// disk, a closed queue): the item keeps its previous state, and the log
// line names it and the change, so that no failed write goes unseen; the
// status counts them and shows the last (see health).
func (d *Daemon) durable(op string, it queue.Item, err error) {
	if err != nil {
		d.log.Error("queue not updated: the item keeps its previous state", "change", op, "file", it.Capture.Rel, "id", it.ID, "err", err)
		d.health.queueWriteFailed(op, it.Capture.Rel, err)
	}
}
