package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/camftpd/camftpd/queue"
)

// AddRequest is the body of POST /add: captures to send that the daemon
// does not send by itself (the held backlog, unprotected shots), the
// camera's "transfer selected images".
type AddRequest struct {
	// Paths are files, folders (every capture under them) or patterns (*
	// ? [...] within a path element, as filepath.Match: "100MSDCF/*.JPG"),
	// relative to media_dir or absolute inside it. A path that exists is
	// taken literally even if it holds pattern characters.
	Paths []string `json:"paths"`
}

// AddResult is one line of the answer of POST /add (one JSON object a
// line, in the order of the paths) and of camftpd queue add.
type AddResult struct {
	Arg    string `json:"arg"`            // the path or pattern given
	File   string `json:"file,omitempty"` // the capture, relative to media_dir
	ID     string `json:"id,omitempty"`
	Result string `json:"result"` // one of the Add* values
	Detail string `json:"detail,omitempty"`
}

// Results of an add, per file.
const (
	AddQueued    = "queued"            // pending now: it was held (Detail says why) or not known
	AddAlready   = "already queued"    // pending, uploading or waiting for a retry
	AddRetrying  = "retrying"          // it was parked: retried now
	AddDelivered = "already delivered" // done (Detail: the remote path); not sent again
	AddSkipped   = "already skipped"   // not sent under same_name = "skip" (the name is taken); not sent again
	AddWriting   = "being written"     // not complete yet: the watcher queues it when it is
	AddError     = "error"             // Detail says what (no match, outside media_dir, not a capture, unreadable)
)

// addFlush is how many files an add reads before it writes them to the
// queue in one transaction.
const addFlush = 128

// adder carries out an add against a queue, with or without a running
// daemon.
type adder struct {
	root   string
	settle time.Duration
	match  *matcher
	q      *queue.Queue
	now    func() time.Time
	emit   func(AddResult)
	queued func(it queue.Item, why string) // a capture became pending (may be nil)

	batch  []addItem
	errors int
}

type addAct int

const (
	actNone addAct = iota
	actEnqueue
	actWant
	actRetry
)

type addItem struct {
	res AddResult
	c   queue.Capture
	it  queue.Item
	act addAct
}

func newAdder(cfg *Config, q *queue.Queue, emit func(AddResult)) *adder {
	return &adder{root: filepath.Clean(cfg.MediaDir), settle: cfg.Settle, match: newMatcher(cfg), q: q, now: time.Now, emit: emit}
}

// run adds every argument; it returns how many error lines it emitted.
func (a *adder) run(ctx context.Context, args []string) int {
	for _, arg := range args {
		if ctx.Err() != nil {
			a.fail(arg, "cancelled")
			continue
		}
		a.arg(arg)
	}
	a.flush()
	return a.errors
}

func (a *adder) fail(arg, msg string) {
	a.flush() // keep the lines in order
	a.errors++
	a.emit(AddResult{Arg: arg, Result: AddError, Detail: msg})
}

// arg adds what one path, folder or pattern names.
func (a *adder) arg(arg string) {
	rel, err := a.resolve(arg)
	if err != nil {
		a.fail(arg, err.Error())
		return
	}
	n := 0
	each := func(abs, rel string, st os.FileInfo) {
		n++
		a.file(arg, abs, rel, st)
	}
	abs := filepath.Join(a.root, filepath.FromSlash(rel))
	st, err := os.Lstat(abs)
	if err != nil && hasMeta(rel) { // a name that exists is taken as it is, [ and * included
		if _, err := path.Match(rel, ""); err != nil {
			a.fail(arg, "bad pattern: "+err.Error())
			return
		}
		a.glob(a.root, strings.Split(rel, "/"), each)
		if n == 0 {
			a.fail(arg, "no capture matches (paths are relative to the media directory "+a.root+")")
		}
		return
	}
	switch {
	case err != nil:
		a.fail(arg, "no such file or folder (paths are relative to the media directory "+a.root+")")
	case st.Mode().IsRegular():
		if why := a.notCapture(rel); why != "" {
			a.fail(arg, why)
			return
		}
		each(abs, rel, st)
	case st.IsDir():
		a.visit(abs, each)
		if n == 0 {
			a.fail(arg, "no capture in this folder")
		}
	default:
		a.fail(arg, "not a regular file")
	}
}

// resolve turns an argument into a path relative to the media directory
// (slash-separated, "." for the directory itself).
func (a *adder) resolve(arg string) (string, error) {
	if strings.TrimSpace(arg) == "" {
		return "", errors.New("empty path")
	}
	p := arg
	if filepath.IsAbs(p) {
		r, err := filepath.Rel(a.root, filepath.Clean(p))
		if err != nil {
			return "", fmt.Errorf("outside the media directory %s", a.root)
		}
		p = r
	}
	p = path.Clean(filepath.ToSlash(p))
	if p == ".." || strings.HasPrefix(p, "../") || path.IsAbs(p) {
		return "", fmt.Errorf("outside the media directory %s", a.root)
	}
	return p, nil
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// glob walks the pattern's elements from dir, one folder level per
// element, and visits what the last one matches; it reads one folder at a
// time (a pattern over a card of 250,000 shots is not collected in
// memory). Names starting with "." match only an element that does too.
func (a *adder) glob(dir string, elems []string, each func(string, string, os.FileInfo)) {
	e := elems[0]
	var names []string
	if !hasMeta(e) {
		names = []string{e}
	} else {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, ent := range ents {
			n := ent.Name()
			if ok, _ := path.Match(e, n); ok && (!strings.HasPrefix(n, ".") || strings.HasPrefix(e, ".")) {
				names = append(names, n)
			}
		}
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		if len(elems) == 1 {
			a.visit(p, each)
		} else if st, err := os.Stat(p); err == nil && st.IsDir() {
			a.glob(p, elems[1:], each)
		}
	}
}

// visit adds the capture at p, or every capture under the folder p
// (hidden folders skipped, include/exclude and raw_jpeg applied).
func (a *adder) visit(p string, each func(string, string, os.FileInfo)) {
	_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if q != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, ok := a.rel(q)
		if !ok || a.notCapture(rel) != "" || a.match.pairSkip(q) {
			return nil
		}
		if st, err := d.Info(); err == nil {
			each(q, rel, st)
		}
		return nil
	})
}

func (a *adder) rel(p string) (string, bool) { return relUnder(a.root, p) }

// notCapture says why rel is not a capture the daemon would send, or "".
func (a *adder) notCapture(rel string) string {
	for _, e := range strings.Split(path.Dir(rel), "/") {
		if strings.HasPrefix(e, ".") && e != "." {
			return "in a hidden folder: not a capture"
		}
	}
	if !a.match.wanted(rel) {
		return "not a capture (include/exclude patterns, or a hidden file)"
	}
	return ""
}

// file adds one capture: looks it up by identity and decides what to do.
func (a *adder) file(arg, abs, rel string, st os.FileInfo) {
	res := AddResult{Arg: arg, File: rel}
	if age := a.now().Sub(st.ModTime()); age >= 0 && age < a.settle {
		res.Result, res.Detail = AddWriting, "the watcher queues it when it is complete"
		a.batch = append(a.batch, addItem{res: res})
		return
	}
	c, err := captureOf(abs, rel, st)
	if err != nil {
		a.flush()
		a.errors++
		res.Result, res.Detail = AddError, "cannot read it: "+err.Error()
		a.emit(res)
		return
	}
	it, known, err := a.q.Lookup(c)
	if err != nil {
		a.fail(arg, "queue: "+err.Error())
		return
	}
	item := addItem{res: res, c: c, it: it}
	item.res.ID = it.ID
	switch {
	case !known || it.State == queue.Parked && it.Vanished:
		item.act = actEnqueue
	case it.State == queue.Held:
		item.act = actWant
	case it.State == queue.Parked:
		item.act = actRetry
	default:
		item.res.Result, item.res.Detail = describe(it)
	}
	a.batch = append(a.batch, item)
	if len(a.batch) >= addFlush {
		a.flush()
	}
}

// describe is the result for a capture the queue knows and an add leaves
// as it is.
func describe(it queue.Item) (string, string) {
	switch it.State {
	case queue.Done:
		return AddDelivered, it.Remote
	case queue.Skipped:
		return AddSkipped, strings.TrimSpace(it.Reason + " " + it.Remote)
	case queue.Held:
		return AddError, "still held: " + it.Reason
	case queue.Parked:
		return AddError, "parked: " + it.Reason
	}
	return AddAlready, string(it.State)
}

// flush writes the batch to the queue (one transaction for the new
// captures, one for the held ones) and emits its lines in order.
func (a *adder) flush() {
	if len(a.batch) == 0 {
		return
	}
	var caps []queue.Capture
	var enq, want []int
	for i, b := range a.batch {
		switch b.act {
		case actEnqueue:
			caps = append(caps, b.c)
			enq = append(enq, i)
		case actWant:
			want = append(want, i)
		case actRetry:
			a.retry(&a.batch[i])
		}
	}
	if len(caps) > 0 {
		a.enqueue(caps, enq)
	}
	if len(want) > 0 {
		a.want(want)
	}
	for _, b := range a.batch {
		if b.res.Result == AddError {
			a.errors++
		}
		a.emit(b.res)
	}
	a.batch = a.batch[:0]
}

func (a *adder) enqueue(caps []queue.Capture, idx []int) {
	its, added, err := a.q.EnqueueBatch(caps)
	for k, i := range idx {
		r := &a.batch[i].res
		switch {
		case err != nil:
			r.Result, r.Detail = AddError, "queue: "+err.Error()
		case added[k]:
			r.ID, r.Result, r.Detail = its[k].ID, AddQueued, "not known before"
			if a.batch[i].it.Vanished {
				r.Detail = "it was missing before"
			}
			a.report(its[k], "queue add")
		default: // queued meanwhile by the watcher
			r.ID = its[k].ID
			r.Result, r.Detail = describe(its[k])
		}
	}
}

func (a *adder) want(idx []int) {
	ids := make([]string, len(idx))
	for k, i := range idx {
		ids[k] = a.batch[i].it.ID
	}
	_, err := a.q.Want(ids...)
	for _, i := range idx {
		b := &a.batch[i]
		if err != nil {
			b.res.Result, b.res.Detail = AddError, "queue: "+err.Error()
			continue
		}
		b.res.Result, b.res.Detail = AddQueued, "was held: "+b.it.Reason
		a.report(b.it, "queue add")
	}
}

func (a *adder) retry(b *addItem) {
	if err := a.q.RetryNow(b.it.ID); err != nil {
		b.res.Result, b.res.Detail = AddError, "queue: "+err.Error()
		return
	}
	b.res.Result, b.res.Detail = AddRetrying, "was parked: "+strings.TrimSpace(b.it.Reason+" "+b.it.LastError)
	a.report(b.it, "queue add")
}

func (a *adder) report(it queue.Item, why string) {
	if a.queued != nil {
		a.queued(it, why)
	}
}

// serveAdd answers POST /add: a JSON AddRequest in, one JSON AddResult a
// line out, written as the files are looked at.
func (d *Daemon) serveAdd(w http.ResponseWriter, r *http.Request) {
	var req AddRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, `add needs a JSON body {"paths": ["100MSDCF/DSC00001.JPG", ...]}: `+err.Error(), http.StatusBadRequest)
		return
	}
	if len(req.Paths) == 0 {
		http.Error(w, `add needs at least one path in "paths"`, http.StatusBadRequest)
		return
	}
	q := d.Queue()
	if q == nil {
		http.Error(w, "the queue is not open yet", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	a := newAdder(d.config(), q, func(res AddResult) {
		_ = enc.Encode(res)
		if fl != nil {
			fl.Flush()
		}
	})
	a.queued = d.onWanted
	n := a.run(r.Context(), req.Paths)
	d.log.Info("queue add", "paths", len(req.Paths), "errors", n)
}
