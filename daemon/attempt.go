package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/camftpd/camftpd/queue"
	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer"
)

// attempt is one upload of a leased item by a worker: process's steps
// (prepare, begin, upload, settle) share it. Only the worker's goroutine
// and the upload's progress callback, which runs inside Upload, touch it.
type attempt struct {
	w      *worker
	it     queue.Item
	log    *slog.Logger
	local  string
	f      *os.File    // the only open of the capture in this attempt
	opened os.FileInfo // its fstat when opened
	idx    int         // the server's index in the configuration
	srv    Server
	remote string
	client *transfer.Client
	pol    *tlspolicy.Policy
	up     *upload
	// lastSent is what the progress callback saw last; elapsed is the
	// upload's duration (both read once Upload returned).
	lastSent int64
	elapsed  time.Duration
}

// process uploads one leased item and settles it on the queue.
func (w *worker) process(ctx context.Context, it queue.Item) {
	d := w.d
	a := &attempt{w: w, it: it, log: d.log.With("file", it.Capture.Rel, "id", it.ID, "worker", w.name)}
	d.ot.started(it.ID) // leased: no longer waiting, nor paused
	if !a.prepare() {
		d.publishState() // it may be parked
		return
	}
	defer a.f.Close()
	uctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	a.begin(cancel)
	res, err := a.upload(uctx)
	d.mu.Lock()
	delete(d.uploads, w.name)
	d.mu.Unlock()
	d.noteTLS(a.srv.Name, a.pol, res.TLSEngine)
	defer d.publishState()
	a.settle(ctx, context.Cause(uctx), res, err)
}

// prepare opens the capture, renders its remote path and takes the
// worker's client for the active server; it settles the item and returns
// false when one of them fails.
func (a *attempt) prepare() bool {
	w, d, q := a.w, a.w.d, a.w.d.Queue()
	a.local = filepath.Join(w.cfg.MediaDir, filepath.FromSlash(a.it.Capture.Rel))
	a.f, a.opened = w.localReady(&a.it, a.log) // it.Capture may have grown: see localReady
	if a.f == nil {
		return false
	}
	c := a.it.Capture
	a.idx = d.activeIndex()
	a.srv = w.cfg.Servers[a.idx]
	remote, err := transfer.RenderRemote(a.srv.RemoteTemplate, c.Rel, c.ModTime)
	if err == nil {
		err = transfer.CheckPath(remote)
	}
	if err != nil {
		a.f.Close()
		d.durable("park", a.it, q.Park(a.it.ID, "remote path: "+err.Error()))
		d.hub.publish(Event{Type: "parked", ID: a.it.ID, File: c.Rel, Error: err.Error()})
		return false
	}
	a.remote = remote
	if a.client, a.pol, err = w.client(a.idx); err != nil {
		a.f.Close()
		w.noPolicy(a.it, a.idx) // blocks: a Release alone leased it again at once
		return false
	}
	return true
}

// begin shows the upload in the status (with its latency since the
// capture completed) and publishes its start; cancel stops it when uploads
// were paused since the lease (or a still overtakes it: see overtake.go).
func (a *attempt) begin(cancel context.CancelCauseFunc) {
	w, d, c := a.w, a.w.d, a.it.Capture
	a.up = &upload{ID: a.it.ID, File: c.Rel, Worker: w.name, Server: a.srv.Name, Remote: a.remote, Total: c.Size,
		Started: time.Now(), cancel: func() { cancel(nil) }}
	a.up.withPause(c, w.cfg, cancel)
	lat := d.stats.started(a.local, a.up.Started)
	d.mu.Lock()
	d.uploads[w.name] = a.up
	paused := d.userPaused || d.mediaGone
	d.mu.Unlock()
	d.publishState()
	if paused { // paused between lease and now
		cancel(nil)
	}
	d.ot.kickDispatcher()
	a.log.Debug("upload start", "latency", lat, "attempts", a.it.Attempts)
	d.hub.publish(Event{Type: "start", ID: a.it.ID, File: c.Rel, Worker: w.name, Total: c.Size, Remote: a.remote,
		LatencyMS: float64(lat.Microseconds()) / 1000})
}

// upload runs the transfer with the lease renewed on time.
func (a *attempt) upload(uctx context.Context) (transfer.Result, error) {
	it, q, c := a.it, a.w.d.Queue(), a.it.Capture
	job := transfer.Job{LocalPath: a.local, File: a.f, Remote: a.remote, TempID: it.ID, Fresh: it.FirstLease, Progress: a.progress(),
		BeforeRename: func(temp, final string) error {
			// Durable before RNTO: a power cut between the server's rename
			// and Ack is settled by what the server shows, not by a re-send.
			return q.Intend(it.ID, queue.Intent{Temp: temp, Final: final, Size: c.Size})
		}}
	if it.Intent != (queue.Intent{}) {
		job.Intent = &transfer.Intent{Temp: it.Intent.Temp, Final: it.Intent.Final, Size: it.Intent.Size}
	}
	stopRenew := a.w.renewLease(it)
	res, err := a.client.Upload(uctx, job)
	stopRenew()
	a.elapsed = time.Since(a.up.Started)
	return res, err
}

// progress returns the upload's progress callback: rate, status and a
// progress event at most every progressEvery.
func (a *attempt) progress() func(sent, total int64) {
	d, up, it := a.w.d, a.up, a.it
	lastPub := time.Now()
	return func(sent, total int64) {
		now := time.Now()
		if sent >= a.lastSent {
			d.sent(a, now, sent-a.lastSent)
		}
		a.lastSent = sent
		d.mu.Lock()
		up.Sent, up.Total = sent, total
		d.mu.Unlock()
		if now.Sub(lastPub) >= progressEvery || sent == total {
			lastPub = now
			d.hub.publish(Event{Type: "progress", ID: it.ID, File: it.Capture.Rel, Worker: a.w.name, Sent: sent, Total: total,
				Percent: pct(sent, total), Rate: float64(sent) / max(now.Sub(up.Started).Seconds(), 1e-3)})
		}
	}
}

// settle records the upload's outcome on the queue; stopped is the cause
// when it was cancelled (shutdown, pause, reload, overtaken), else nil.
func (a *attempt) settle(ctx context.Context, stopped error, res transfer.Result, err error) {
	w, d, it := a.w, a.w.d, a.it
	switch {
	case err == nil && d.crashBeforeRecord != nil && d.crashBeforeRecord(it):
	case err == nil && res.Skipped:
		w.skipped(it, res)
	case err == nil:
		a.done(ctx, res)
	case stopped != nil && a.pausedUpload(stopped):
	case stopped != nil:
		// The upload stopped at a resumable point.
		d.durable("release", it, d.Queue().Release(it.ID))
		d.hub.publish(Event{Type: "stopped", ID: it.ID, File: it.Capture.Rel, Worker: w.name, Sent: a.lastSent, Total: it.Capture.Size})
	default:
		a.failed(ctx, err)
	}
}

// done records a finished upload. Counters, log and event first: whoever
// sees the queue's done record (status, a test) sees them too. The file is
// on the server either way.
func (a *attempt) done(ctx context.Context, res transfer.Result) {
	w, d, it := a.w, a.w.d, a.it
	d.stats.uploaded(res.Size)
	d.mu.Lock()
	d.failStreak, d.retrying = 0, ""
	d.mu.Unlock()
	a.log.Info("uploaded", "remote", res.Remote, "size", res.Size, "resumed_from", res.ResumedFrom,
		"already_there", res.Existing, "seconds", a.elapsed.Seconds())
	d.hub.publish(Event{Type: "done", ID: it.ID, File: it.Capture.Rel, Worker: w.name, Sent: res.Size, Total: res.Size,
		Percent: 100, Remote: res.Remote, Hash: res.Hash, Resumed: res.ResumedFrom,
		Rate: float64(res.Size-res.ResumedFrom) / max(a.elapsed.Seconds(), 1e-3)})
	w.ackSoon(ctx, it, res.Remote, res.Hash) // without holding the worker: see ackSoon
}

// failed settles a failed upload by the class of its error: wait for the
// clock, block, park, the local file's own handling, or retry.
func (a *attempt) failed(ctx context.Context, err error) {
	w, d, q, it := a.w, a.w.d, a.w.d.Queue(), a.it
	file := it.Capture.Rel
	w.dropClient(a.idx)
	msg := tlspolicy.OneLine(err.Error())
	var te *tlspolicy.Error
	if errors.As(err, &te) && te.Kind == tlspolicy.KindClock {
		w.clockUnset(ctx, it, msg)
		return
	}
	switch cl := transfer.ClassOf(err); cl {
	case transfer.Auth, transfer.Certificate, transfer.TLSPolicy:
		d.durable("release", it, q.Release(it.ID))
		d.block(fmt.Sprintf("%s: server %q: %s", cl, a.srv.Name, msg))
		d.hub.publish(Event{Type: "blocked", ID: it.ID, File: file, Error: msg, State: cl.String()})
	case transfer.Permanent:
		d.durable("park", it, q.Park(it.ID, msg))
		a.log.Error("upload refused; parked", "err", msg)
		d.hub.publish(Event{Type: "parked", ID: it.ID, File: file, Error: msg})
	case transfer.Local:
		w.localFailed(it, a.f, a.opened, err, a.log)
	default:
		next, ferr := q.Fail(it.ID, msg)
		d.durable("fail", it, ferr)
		a.log.Warn("upload failed; will retry", "err", msg, "next", next)
		d.noteTransient(a.srv.Name, msg) // status first: whoever sees the event sees it
		d.hub.publish(Event{Type: "retry", ID: it.ID, File: file, Error: msg})
	}
}
