package daemon

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/camftpd/camftpd/board"
	"github.com/camftpd/camftpd/queue"
)

// The upload policy's gate: what the link really carries (measured from
// the uploads' own progress) and the battery (the board's power_supply
// folder) decide what the dispatcher may lease (see Daemon.lease). The
// gate has its own lock, never held with Daemon.mu.
type gate struct {
	mu         sync.Mutex
	every      time.Duration // battery re-read period; 0 = batteryEvery (tests shorten it)
	meter      linkMeter
	battery    board.Battery
	batteryOK  bool   // battery holds a good reading
	batteryErr string // why the last reading failed ("" = none, or no power_supply)
	slow, low  bool   // the last decisions, to wake the dispatcher on a change
	waiting    string // why captures wait now ("" = nothing held back)
}

// batteryEvery is how often the battery is read again (and at every
// start of the workers: a start, SIGHUP).
const batteryEvery = 30 * time.Second

// startPower reads the battery now (before the first lease) and again
// every gate.every until ctx ends, in a goroutine joined by wg.
func (d *Daemon) startPower(ctx context.Context, cfg *Config, wg *sync.WaitGroup) {
	d.readBattery(cfg)
	if cfg.Profile.PowerSupply == "" {
		return
	}
	d.gate.mu.Lock()
	every := d.gate.every
	d.gate.mu.Unlock()
	if every <= 0 {
		every = batteryEvery
	}
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				d.readBattery(cfg)
			case <-ctx.Done():
				return
			}
		}
	})
}

// readBattery reads the battery, logs a change of its readability and
// wakes the dispatcher when the battery policy's decision changed.
func (d *Daemon) readBattery(cfg *Config) {
	var b board.Battery
	var err error
	if cfg.Profile.PowerSupply != "" {
		b, err = board.ReadBattery(cfg.Profile.PowerSupply)
	}
	g := &d.gate
	g.mu.Lock()
	prevErr := g.batteryErr
	g.battery, g.batteryOK, g.batteryErr = b, err == nil && cfg.Profile.PowerSupply != "", ""
	if err != nil {
		g.batteryErr = err.Error()
	}
	low := g.batteryLowLocked(cfg)
	changed := low != g.low
	g.low = low
	g.mu.Unlock()
	if err != nil && g.batteryErr != prevErr {
		d.log.Warn("cannot read the battery; the battery policy is off until it can", "err", err)
	} else if err == nil && prevErr != "" {
		d.log.Info("battery readable again", "capacity", b.Capacity, "status", b.Status)
	}
	if changed {
		d.log.Info("battery policy", "low", low, "capacity", b.Capacity, "status", b.Status, "battery_low", cfg.BatteryLow)
		d.wakeDispatch()
	}
}

// batteryLowLocked reports whether the battery policy applies: a good
// reading below battery_low while not charging.
func (g *gate) batteryLowLocked(cfg *Config) bool {
	return cfg.BatteryLow > 0 && g.batteryOK && g.battery.OnBattery() && g.battery.Capacity < cfg.BatteryLow
}

// wakeDispatch makes the dispatcher look at the queue again (a state
// change without a change of state).
func (d *Daemon) wakeDispatch() { d.setState(func() {}) }

// sent feeds the rate figures and the link meter with n bytes of the
// upload a sent at now, and wakes the dispatcher when the link crosses
// slow_link.
func (d *Daemon) sent(a *attempt, now time.Time, n int64) {
	d.stats.sent(now, n)
	cfg := a.w.cfg
	g := &d.gate
	g.mu.Lock()
	g.meter.add(a.w.name, a, now, n)
	slow := g.slowLocked(cfg)
	changed := slow != g.slow
	g.slow = slow
	rate := g.meter.rate
	g.mu.Unlock()
	if changed {
		d.log.Info("link speed crossed slow_link", "measured", fmtRate(rate), "slow_link", fmtRate(float64(cfg.SlowLink)))
		d.wakeDispatch()
	}
}

// linkDown forgets the link meter's measurement (linkMeter.reset) and
// with it a slow link's hold on movies: the link that comes back is
// measured again from its first uploads.
func (d *Daemon) linkDown() {
	g := &d.gate
	g.mu.Lock()
	g.meter.reset()
	g.slow = false
	g.mu.Unlock()
}

func (g *gate) slowLocked(cfg *Config) bool {
	return cfg.SlowLink > 0 && g.meter.rate > 0 && g.meter.rate < float64(cfg.SlowLink)
}

// uploadEnded notes that worker's upload ended (for the link meter) and
// wakes the dispatcher when the gate holds captures back: a movie waiting
// for the stills in flight may go now.
func (d *Daemon) uploadEnded(worker string) {
	cfg := d.config()
	g := &d.gate
	g.mu.Lock()
	g.meter.end(worker, time.Now())
	slow := g.slowLocked(cfg)
	changed := slow != g.slow
	g.slow = slow
	holding := g.waiting != ""
	g.mu.Unlock()
	if holding || changed {
		d.wakeDispatch()
	}
}

// ackRecorded wakes the dispatcher, when the gate holds captures back,
// once a done record was committed: the record can follow the upload's end
// (ackSoon), and a movie waiting for the stills in flight may go only then.
func (d *Daemon) ackRecorded() {
	d.gate.mu.Lock()
	holding := d.gate.waiting != ""
	d.gate.mu.Unlock()
	if holding {
		d.wakeDispatch()
	}
}

// leaseGated is queue.Lease through the policy: on a link slower than
// slow_link, movies wait while a still (JPEG, HEIF, RAW) is pending or
// uploading; on a low battery, not charging, only what battery_low_send
// allows is leased. It notes why captures wait, for the status.
func (d *Daemon) leaseGated(q *queue.Queue, worker string) (queue.Item, bool, error) {
	cfg := d.config()
	g := &d.gate
	g.mu.Lock()
	low, slow := g.batteryLowLocked(cfg), g.slowLocked(cfg)
	lowWhy, slowWhy := g.lowReasonLocked(cfg), fmt.Sprintf("movies wait: link %s is below slow_link %s", fmtRate(g.meter.rate), fmtRate(float64(cfg.SlowLink)))
	g.mu.Unlock()
	if !low && !slow {
		d.setWaiting("")
		return q.Lease(worker)
	}
	var heldLow, heldMovie bool
	batteryOK := func(it queue.Item) bool {
		ok := !low || d.lowAdmits(cfg, it)
		heldLow = heldLow || !ok
		return ok
	}
	it, ok, err := q.LeaseFunc(worker, func(it queue.Item) bool {
		if !batteryOK(it) {
			return false
		}
		if slow && board.KindOf(it.Capture.Rel) == board.KindVideo {
			heldMovie = true
			return false
		}
		return true
	})
	if err == nil && !ok && heldMovie {
		// No still is pending: movies go once none is uploading either.
		if busy, lerr := stillsInFlight(q); lerr == nil && !busy {
			heldMovie = false
			it, ok, err = q.LeaseFunc(worker, batteryOK)
		} else if lerr == nil {
			slowWhy += " (stills uploading first)"
		}
	}
	var why []string
	if heldLow {
		why = append(why, lowWhy)
	}
	if heldMovie {
		why = append(why, slowWhy)
	}
	d.setWaiting(strings.Join(why, "; ")) // what this lease held back
	return it, ok, err
}

func (d *Daemon) setWaiting(why string) {
	d.gate.mu.Lock()
	defer d.gate.mu.Unlock()
	d.gate.waiting = why
}

// lowReasonLocked says what a low battery lets through.
func (g *gate) lowReasonLocked(cfg *Config) string {
	what := map[string]string{lowSendProtected: "only protected shots are sent", lowSendStills: "only stills are sent",
		lowSendNothing: "nothing is sent"}[cfg.BatteryLowSend]
	return fmt.Sprintf("battery %d %% (%s) is below battery_low %d %%: %s",
		g.battery.Capacity, strings.ToLower(g.battery.Status), cfg.BatteryLow, what)
}

// lowAdmits reports whether battery_low_send lets it through: stills
// (JPEG, HEIF, RAW), protected shots (no write permission: one lstat), or
// nothing.
func (d *Daemon) lowAdmits(cfg *Config, it queue.Item) bool {
	switch cfg.BatteryLowSend {
	case lowSendStills:
		k := board.KindOf(it.Capture.Rel)
		return k == board.KindStill || k == board.KindRAW
	case lowSendProtected:
		st, err := os.Lstat(filepath.Join(cfg.MediaDir, filepath.FromSlash(it.Capture.Rel)))
		return err == nil && isProtected(st)
	}
	return false
}

// stillsInFlight reports whether an upload of something other than a
// movie is leased.
func stillsInFlight(q *queue.Queue) (bool, error) {
	items, err := q.List(queue.InFlight)
	if err != nil {
		return false, err
	}
	for _, it := range items {
		if board.KindOf(it.Capture.Rel) != board.KindVideo {
			return true, nil
		}
	}
	return false, nil
}

// PowerStatus is the link's measured speed, the battery, and why captures
// wait because of them.
type PowerStatus struct {
	LinkBps     float64 `json:"link_bytes_per_sec"`      // measured on the uploads; 0 = not yet
	SlowLinkBps int64   `json:"slow_link_bytes_per_sec"` // 0 = off
	Battery     string  `json:"battery,omitempty"`       // "12 % (discharging)"
	BatteryErr  string  `json:"battery_error,omitempty"` // why the battery cannot be read
	BatteryLow  int     `json:"battery_low_percent"`     // 0 = off
	LowSend     string  `json:"battery_low_send"`        // protected | stills | nothing
	Waiting     string  `json:"waiting,omitempty"`       // why captures wait, e.g. "movies wait: link 1.1 MB/s is below slow_link 2 MB/s"
	PowerSupply string  `json:"power_supply,omitempty"`  // the battery's sysfs folder
}

func (d *Daemon) powerStatus() PowerStatus {
	cfg := d.config()
	g := &d.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	s := PowerStatus{LinkBps: g.meter.rate, SlowLinkBps: cfg.SlowLink, BatteryErr: g.batteryErr, BatteryLow: cfg.BatteryLow,
		LowSend: cfg.BatteryLowSend, Waiting: g.waiting, PowerSupply: cfg.Profile.PowerSupply}
	if g.batteryOK {
		s.Battery = fmt.Sprintf("%d %% (%s)", g.battery.Capacity, strings.ToLower(g.battery.Status))
	}
	return s
}

// printPower writes the status lines of p.
func printPower(w io.Writer, p PowerStatus) {
	link := "not measured yet"
	if p.LinkBps > 0 {
		link = fmtRate(p.LinkBps) + " measured"
	}
	slow := "off"
	if p.SlowLinkBps > 0 {
		slow = fmtRate(float64(p.SlowLinkBps))
	}
	fmt.Fprintf(w, "link speed: %s (slow_link %s)\n", link, slow)
	low := "off"
	if p.BatteryLow > 0 {
		low = fmt.Sprintf("%d %%, then %s", p.BatteryLow, p.LowSend)
	}
	switch {
	case p.BatteryErr != "":
		fmt.Fprintf(w, "battery:    unknown: %s (battery_low %s)\n", escName(p.BatteryErr), low)
	case p.Battery != "":
		fmt.Fprintf(w, "battery:    %s (battery_low %s)\n", escName(p.Battery), escName(low))
	}
	if p.Waiting != "" {
		fmt.Fprintf(w, "waiting:    %s\n", escName(p.Waiting))
	}
}

// fmtRate writes bytes per second as "1.1 MB/s" or "350 kB/s".
func fmtRate(bps float64) string {
	if bps >= 1e6 {
		return strings.TrimSuffix(strconv.FormatFloat(bps/1e6, 'f', 1, 64), ".0") + " MB/s"
	}
	return strconv.FormatFloat(bps/1e3, 'f', 0, 64) + " kB/s"
}

// batteryAdmits reports whether the battery policy lets it be leased now
// (overtaking pauses an upload only for a still that may follow it).
func (d *Daemon) batteryAdmits(it queue.Item) bool {
	cfg := d.config()
	d.gate.mu.Lock()
	low := d.gate.batteryLowLocked(cfg)
	d.gate.mu.Unlock()
	return !low || d.lowAdmits(cfg, it)
}
