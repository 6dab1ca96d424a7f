package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/camftpd/camftpd/queue"
)

// Status is the answer of GET /status.
type Status struct {
	Version string `json:"version"`
	// State is one of: "blocked: <reason>; once fixed: ...", "paused:
	// media unmounted", "paused", "waiting: <why>" (clock, link, battery,
	// slow link), "uploading", "queued: N shots to upload", "waiting for
	// retry: N shots, next attempt at ...: <why>", "attention: N shots
	// parked ...", and "idle" only when nothing waits (see truth.go).
	State string `json:"state"`
	// Attention says that shots are parked and what to do, whatever the
	// state (absent when none is).
	Attention  string       `json:"attention,omitempty"`
	NextRetry  time.Time    `json:"next_retry,omitzero"` // the earliest retry due, when shots wait for one and nothing else is to be sent
	Paused     bool         `json:"paused"`
	Blocked    string       `json:"blocked,omitempty"`
	MediaError string       `json:"media_error,omitempty"`
	Link       string       `json:"link"`
	Server     string       `json:"server"`
	Security   string       `json:"security,omitempty"`  // FTPES, or the plain FTP warning (secure = false)
	DataMode   string       `json:"data_mode,omitempty"` // passive or active (passive = false)
	Queue      queue.Counts `json:"queue"`
	// Held counts the held captures (Queue.Held) by reason ("backlog",
	// "not protected"); absent when more than 5,000 are held (then only
	// the total in Queue.Held is known without reading every item).
	Held          map[string]int `json:"held,omitempty"`
	Uploads       []UploadStatus `json:"uploads"`
	PausedUploads []PausedUpload `json:"paused_uploads,omitempty"` // paused for a still (overtake.go)
	ThroughputBps float64        `json:"throughput_bytes_per_sec"`
	UploadedFiles int64          `json:"uploaded_files"`
	// SkippedFiles counts captures not sent since start because their
	// remote name was held by another file (same_name = "skip"); they are
	// not in UploadedFiles.
	SkippedFiles  int64       `json:"skipped_files"`
	UploadedBytes int64       `json:"uploaded_bytes"`
	TLS           *TLSInfo    `json:"tls,omitempty"`
	Errors        []ItemError `json:"errors,omitempty"` // last error per capture still retrying or parked (at most 100, in ID order)
	Watching      int64       `json:"settling_files"`
	Rescans       int64       `json:"rescans"`
	Overflows     int64       `json:"overflows"`
	UptimeSec     float64     `json:"uptime_sec"`
	// QueueWriteErrors counts the queue changes that could not be written
	// since start (each logged with its item); LastQueueWriteError is the
	// last of them ("<change> <file>: <error>").
	QueueWriteErrors    int64  `json:"queue_write_errors"`
	LastQueueWriteError string `json:"last_queue_write_error,omitempty"`
	// Degraded names each kernel monitor ("mount", "link") that failed
	// and is being restarted, with why.
	Degraded map[string]string `json:"degraded,omitempty"`
	// Completion says how a capture is told complete (mode "lease" or
	// "settle") and why; absent while no watcher runs.
	Completion CompletionMode `json:"completion,omitzero"`
	// Power is the measured link speed, the battery and why captures wait
	// because of them (power.go).
	Power PowerStatus `json:"power"`
}

// UploadStatus is one upload in flight.
type UploadStatus struct {
	ID          string  `json:"id"`
	File        string  `json:"file"`
	Worker      string  `json:"worker"`
	Server      string  `json:"server"`
	Remote      string  `json:"remote"`
	Sent        int64   `json:"sent"`
	Total       int64   `json:"total"`
	Percent     float64 `json:"percent"`
	BytesPerSec float64 `json:"bytes_per_sec"`
}

// ItemError is the last error of one capture.
type ItemError struct {
	ID          string    `json:"id"`
	File        string    `json:"file"`
	State       string    `json:"state"`
	Attempts    int       `json:"attempts"`
	Error       string    `json:"error"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
}

// Status reports the daemon's state.
func (d *Daemon) Status() Status {
	now := time.Now()
	d.mu.Lock()
	r := d.snapLocked()
	s := Status{
		Version: Version, Paused: d.userPaused || d.mediaGone, Blocked: d.blocked,
		MediaError: d.mediaErr, Link: d.link, UptimeSec: now.Sub(d.started).Seconds(),
	}
	if d.active < len(d.cfg.Servers) {
		s.Server = d.cfg.Servers[d.active].Name
		s.Security, s.DataMode = d.cfg.Servers[d.active].Security(), d.cfg.Servers[d.active].DataMode()
	}
	for _, u := range d.uploads {
		s.Uploads = append(s.Uploads, UploadStatus{ID: u.ID, File: u.File, Worker: u.Worker, Server: u.Server, Remote: u.Remote,
			Sent: u.Sent, Total: u.Total, Percent: pct(u.Sent, u.Total),
			BytesPerSec: float64(u.Sent) / max(now.Sub(u.Started).Seconds(), 1e-3)})
	}
	q, w := d.q, d.w
	d.mu.Unlock()
	d.health.fill(&s)
	s.PausedUploads = d.pausedUploads(q)
	d.stats.fill(&s, now)
	s.Power = d.powerStatus()
	sort.Slice(s.Uploads, func(i, j int) bool { return s.Uploads[i].Worker < s.Uploads[j].Worker })
	if w != nil {
		s.Watching, s.Rescans, s.Overflows = w.tracking.Load(), w.rescans.Load(), w.overflows.Load()
		s.Completion = w.completionMode()
	}
	f := d.queueFacts(q)
	s.State, s.Attention, s.NextRetry = stateOf(r, f, d.now()), attention(f), f.nextRetry
	if q != nil {
		s.Queue = f.counts
		s.Held = heldReasons(q, s.Queue.Held)
		// One page: /status does not read every retrying or parked item.
		if items, _, err := q.ListPage("", statusErrors, queue.Retry, queue.Parked); err == nil {
			for _, it := range items {
				e := it.LastError
				if it.State == queue.Parked && it.Reason != "" {
					e = it.Reason
				}
				s.Errors = append(s.Errors, ItemError{ID: it.ID, File: it.Capture.Rel, State: string(it.State),
					Attempts: it.Attempts, Error: e, NextAttempt: it.NextAttempt})
			}
		}
	}
	return s
}

// statusErrors bounds Status.Errors.
const statusErrors = 100

// heldReasons counts held items by reason when there are at most
// heldListMax of them.
func heldReasons(q *queue.Queue, held int) map[string]int {
	if held == 0 || held > heldListMax {
		return nil
	}
	items, err := q.List(queue.Held)
	if err != nil {
		return nil
	}
	m := map[string]int{}
	for _, it := range items {
		m[it.Reason]++
	}
	return m
}

// serveStatus listens on the Unix socket at path until ctx ends.
func (d *Daemon) serveStatus(ctx context.Context, path string) (<-chan struct{}, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the status socket's directory: %v (fix status_socket)", unwrapPathErr(err))
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("status socket %s is in use: is camftpd already running? (stop it or change status_socket)", path)
	}
	if st, err := os.Lstat(path); err == nil && st.Mode().Type() != os.ModeSocket {
		return nil, fmt.Errorf("status_socket %s exists and is not a socket (%s): refusing to replace it; point status_socket at a free path or move the file away",
			path, fileKind(st.Mode()))
	}
	_ = os.Remove(path) // stale socket of a killed daemon
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on status socket %s: %v (fix status_socket)", path, unwrapPathErr(err))
	}
	_ = os.Chmod(path, 0o660)
	d.started = time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, d.Status()) })
	mux.HandleFunc("GET /events", d.serveEvents)
	mux.HandleFunc("GET /queue", d.serveQueue)
	mux.HandleFunc("POST /retry", func(w http.ResponseWriter, r *http.Request) {
		id := r.FormValue("id")
		if err := d.Queue().RetryNow(id); err != nil {
			httpErr(w, err)
			return
		}
		d.liftBlock("retry") // the user says the cause is fixed; publishes the state
		writeJSON(w, map[string]string{"ok": "retrying " + orAll(id)})
	})
	mux.HandleFunc("POST /drop", func(w http.ResponseWriter, r *http.Request) {
		id := r.FormValue("id")
		if id == "" {
			http.Error(w, "drop needs an id", http.StatusBadRequest)
			return
		}
		q := d.Queue()
		if it, err := q.Get(id); err == nil {
			d.noteOrphans(q, d.config(), it) // its temporary files go from the servers too
		}
		if err := q.Drop(id); err != nil {
			httpErr(w, err)
			return
		}
		d.publishState()
		writeJSON(w, map[string]string{"ok": "dropped " + id})
	})
	mux.HandleFunc("POST /add", d.serveAdd)
	mux.HandleFunc("POST /check", d.serveCheck)
	mux.HandleFunc("POST /trusted", d.serveTrusted) // camftpd trust changed the trust store (trust.go)
	mux.HandleFunc("POST /pause", func(w http.ResponseWriter, r *http.Request) {
		d.Pause()
		writeJSON(w, map[string]string{"ok": "paused"})
	})
	mux.HandleFunc("POST /resume", func(w http.ResponseWriter, r *http.Request) {
		d.Resume()
		writeJSON(w, map[string]string{"ok": "resumed"})
	})
	return serveUntil(ctx, mux, l, path), nil
}

// serveUntil answers on l with mux until ctx ends, then closes l, waits for
// the handlers and removes the socket at path; the channel it returns is
// closed then.
func serveUntil(ctx context.Context, mux http.Handler, l net.Listener, path string) <-chan struct{} {
	// handlers counts the requests being answered: the server's Close does
	// not wait for them, and they use the queue that Run closes next. Each
	// ends with its request's context (ctx, or its connection closed).
	var handlers handlerGroup
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !handlers.enter() {
			http.Error(w, "camftpd is stopping", http.StatusServiceUnavailable)
			return
		}
		defer handlers.wg.Done()
		mux.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: counted, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: statusIdleTimeout, BaseContext: func(net.Listener) context.Context { return ctx }}
	// Two goroutines; done closes when both, and every handler, have
	// returned (Run waits for it).
	done, served := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(l)
	}()
	go func() {
		defer close(done)
		<-ctx.Done()
		_ = srv.Close()
		<-served
		handlers.closeWait()
		_ = os.Remove(path)
	}()
	return done
}

// fill sets the health fields of s (here: the status is built on health,
// not health on the status).
func (h *health) fill(s *Status) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s.QueueWriteErrors, s.LastQueueWriteError = h.writeErrs, h.lastWriteErr
	if len(h.degraded) > 0 {
		s.Degraded = maps.Clone(h.degraded)
	}
}

// fill sets the figures of st at now.
func (s *stats) fill(st *Status, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.ThroughputBps = s.rate.perSec(now)
	st.UploadedFiles, st.SkippedFiles, st.UploadedBytes, st.TLS = s.doneFiles, s.skippedFiles, s.doneBytes, s.tls
}

// handlerGroup waits for the status socket's handlers; mu guards closed
// and orders enter's Add before closeWait's Wait.
type handlerGroup struct {
	mu     sync.Mutex
	wg     sync.WaitGroup
	closed bool
}

// enter counts a handler in, false once closeWait began.
func (g *handlerGroup) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

// closeWait refuses new handlers and waits for those running.
func (g *handlerGroup) closeWait() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}

// statusIdleTimeout closes a status socket connection idle between
// requests: a client that leaves it open does not keep its buffers.
const statusIdleTimeout = 30 * time.Second

func orAll(id string) string {
	if id == "" {
		return "all parked"
	}
	return id
}

func httpErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	if errors.Is(err, queue.ErrNotFound) {
		code = http.StatusNotFound
	}
	http.Error(w, err.Error(), code)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// QueuePage is the answer of GET /queue?after=ID&limit=N: up to N items
// (queue.ListPageDefault without limit, queue.ListPageMax at most) whose ID
// sorts after ID, in ID order, and the after of the next page ("" at the
// end).
type QueuePage struct {
	Items []queue.Item `json:"items"`
	Next  string       `json:"next"`
}

// serveQueue answers GET /queue: with after or limit, one page (see
// QueuePage); without, the whole listing as a JSON array, state by state
// in the order of queue.List, streamed page by page (one short read
// transaction each): memory follows one page, not the queue.
func (d *Daemon) serveQueue(w http.ResponseWriter, r *http.Request) {
	q := d.Queue()
	if q == nil {
		http.Error(w, "the queue is not open yet", http.StatusServiceUnavailable)
		return
	}
	states, err := parseStates(r.FormValue("state"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Form.Has("after") || r.Form.Has("limit") {
		limit := 0
		if l := r.FormValue("limit"); l != "" {
			if limit, err = strconv.Atoi(l); err != nil || limit <= 0 {
				http.Error(w, fmt.Sprintf("limit %q: give a positive number of items (at most %d)", l, queue.ListPageMax), http.StatusBadRequest)
				return
			}
		}
		items, next, err := q.ListPage(r.FormValue("after"), limit, states...)
		if err != nil {
			httpErr(w, err)
			return
		}
		writeJSON(w, QueuePage{Items: items, Next: next})
		return
	}
	if len(states) == 0 {
		states = queue.AllStates()
	}
	w.Header().Set("Content-Type", "application/json")
	if err := streamQueue(w, q, states); err != nil {
		// The answer is cut before its closing bracket: the client sees
		// an incomplete listing, not a short one.
		d.log.Warn("queue listing cut", "err", err)
	}
}

// streamQueue writes the items of states as one JSON array, a page at a
// time.
func streamQueue(w http.ResponseWriter, q *queue.Queue, states []queue.State) error {
	rc := http.NewResponseController(w)
	sep := "[\n"
	for _, s := range states {
		for after := ""; ; {
			items, next, err := q.ListPage(after, queue.ListPageDefault, s)
			if err != nil {
				return err
			}
			_ = rc.SetWriteDeadline(time.Now().Add(eventsWriteTimeout))
			for i := range items {
				b, err := json.Marshal(&items[i])
				if err != nil {
					return err
				}
				if _, err := io.WriteString(w, sep); err != nil {
					return err
				}
				if _, err := w.Write(b); err != nil {
					return err
				}
				sep = ",\n"
			}
			if err := rc.Flush(); err != nil {
				return err
			}
			if after = next; after == "" {
				break
			}
		}
	}
	if sep == "[\n" {
		_, err := io.WriteString(w, "[]\n")
		return err
	}
	_, err := io.WriteString(w, "\n]\n")
	return err
}

// parseStates reads a comma-separated list of queue states.
func parseStates(list string) ([]queue.State, error) {
	var states []queue.State
	known := queue.AllStates()
	for _, s := range strings.Split(list, ",") {
		if s == "" {
			continue
		}
		if !slices.Contains(known, queue.State(s)) {
			return nil, fmt.Errorf("unknown state %q (use pending, inflight, retry, parked, held, done or skipped)", s)
		}
		states = append(states, queue.State(s))
	}
	return states, nil
}

// serveEvents streams events as newline-delimited JSON. A subscriber that
// falls behind by more than its backlog bound (see stream) gets a last
// line of type "dropped" and the stream ends; one that does not read for
// eventsWriteTimeout is cut. Beyond maxEventStreams subscribers the answer
// is 503.
func (d *Daemon) serveEvents(w http.ResponseWriter, r *http.Request) {
	s, stop, err := d.hub.stream()
	if err != nil {
		http.Error(w, fmt.Sprintf("%v (at most %d at once): close an idle event stream", err, maxEventStreams),
			http.StatusServiceUnavailable)
		return
	}
	defer stop()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	// send writes one event; flush once nothing more is waiting.
	send := func(e Event, flush bool) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(eventsWriteTimeout))
		if enc.Encode(e) != nil {
			return false
		}
		return !flush || rc.Flush() == nil
	}
	if !send(Event{Time: time.Now(), Type: "state", State: d.Status().State}, true) {
		return
	}
	for {
		select {
		case <-s.gone:
			send(Event{Time: time.Now(), Type: "dropped", Error: fmt.Sprintf(
				"this subscriber fell more than %d events or %d KiB behind: read faster, then subscribe again",
				streamBacklog, streamBacklogBytes>>10)}, true)
			return
		default:
		}
		select {
		case e := <-s.ch:
			s.took(&e)
			if !send(e, len(s.ch) == 0) {
				return
			}
		case <-s.gone:
		case <-r.Context().Done():
			return
		}
	}
}

// socketClient talks HTTP to the status socket.
func socketClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", path)
		},
	}}
}

// fileKind names the type of a file for messages.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&os.ModeSymlink != 0:
		return "a symbolic link"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "of type " + m.Type().String()
}
