package daemon

import (
	"errors"
	"sync"
	"time"
)

// Event is one line of the progress stream (GET /events, Daemon.Subscribe).
type Event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"` // queued, held, start, progress, done, skipped, retry, parked, vanished, stopped, paused, state, tls, dropped, check, check-done
	ID      string    `json:"id,omitempty"`
	File    string    `json:"file,omitempty"`
	Worker  string    `json:"worker,omitempty"`
	Sent    int64     `json:"sent,omitempty"`
	Total   int64     `json:"total,omitempty"`
	Percent float64   `json:"percent,omitempty"`
	Rate    float64   `json:"bytes_per_sec,omitempty"`
	Resumed int64     `json:"resumed_from,omitempty"`
	Remote  string    `json:"remote,omitempty"`
	Hash    string    `json:"hash,omitempty"` // "<algorithm>:<hex>" of the file as sent
	Error   string    `json:"error,omitempty"`
	State   string    `json:"state,omitempty"`
	// Reason is why a capture is held (held events: backlog, not
	// protected) or was queued after being held (queued events: protected,
	// queue add).
	Reason string `json:"reason,omitempty"`
	// Latency from the capture found complete to the upload start (start events).
	LatencyMS float64 `json:"latency_ms,omitempty"`
	// The connection test (POST /check, conntest.go): check events (one a
	// step) and check-done (one a server, a last one without Server).
	Server string `json:"server,omitempty"`
	Step   string `json:"step,omitempty"`
	Result string `json:"result,omitempty"` // ok, warn, fail, skipped; check-done: pass, warn, fail
	Detail string `json:"detail,omitempty"`
	Fix    string `json:"fix,omitempty"`
	Class  string `json:"class,omitempty"` // a failed step's error class
}

// size is about what e holds in memory, for a subscriber's byte bound.
func (e *Event) size() int {
	return 160 + len(e.Type) + len(e.ID) + len(e.File) + len(e.Worker) + len(e.Remote) + len(e.Hash) +
		len(e.Error) + len(e.State) + len(e.Reason) +
		len(e.Server) + len(e.Step) + len(e.Result) + len(e.Detail) + len(e.Fix) + len(e.Class)
}

// Bounds of the /events stream: subscribers at once, and the backlog of
// one subscriber (events published to it and not yet written to its
// socket) beyond which it is dropped. A stream that cannot write for
// eventsWriteTimeout (a client that stopped reading) ends too.
const (
	maxEventStreams    = 32
	streamBacklog      = 128
	streamBacklogBytes = 64 << 10
	eventsWriteTimeout = 30 * time.Second
)

// errTooManyStreams: /events refuses a subscriber beyond maxEventStreams.
var errTooManyStreams = errors.New("too many /events subscribers")

// subscriber is one receiver of the hub's events.
type subscriber struct {
	ch chan Event
	// dropSlow: a subscriber whose backlog passes its bounds is dropped
	// (gone is closed, no more events); otherwise it loses the events that
	// do not fit (in-process subscribers, Daemon.Subscribe).
	dropSlow bool
	gone     chan struct{}
	mu       sync.Mutex
	bytes    int // backlog in bytes (dropSlow only)
}

// took accounts for an event the subscriber read from ch.
func (s *subscriber) took(e *Event) {
	if s.dropSlow {
		s.mu.Lock()
		s.bytes -= e.size()
		s.mu.Unlock()
	}
}

// hub fans events out to subscribers; a slow subscriber loses events or is
// dropped, never slows an upload: publish never blocks.
type hub struct {
	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	streams int // subscribers with dropSlow
}

func newHub() *hub { return &hub{subs: map[*subscriber]struct{}{}} }

func (h *hub) publish(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	n := e.size()
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.dropSlow {
			s.mu.Lock()
			over := s.bytes+n > streamBacklogBytes
			if !over {
				s.bytes += n
			}
			s.mu.Unlock()
			if over || !trySend(s.ch, e) {
				h.removeLocked(s)
			}
			continue
		}
		trySend(s.ch, e)
	}
}

func trySend(ch chan Event, e Event) bool {
	select {
	case ch <- e:
		return true
	default:
		return false
	}
}

// removeLocked unsubscribes s and closes its gone channel (h.mu held).
func (h *hub) removeLocked(s *subscriber) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	if s.dropSlow {
		h.streams--
	}
	close(s.gone)
}

// subscribe adds an in-process subscriber that loses the events that do
// not fit in its buffer of buf.
func (h *hub) subscribe(buf int) (<-chan Event, func()) {
	s := &subscriber{ch: make(chan Event, buf), gone: make(chan struct{})}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s.ch, func() { h.unsubscribe(s) }
}

// stream adds a bounded subscriber for /events, dropped when its backlog
// passes streamBacklog events or streamBacklogBytes; at most
// maxEventStreams at once (errTooManyStreams beyond).
func (h *hub) stream() (*subscriber, func(), error) {
	s := &subscriber{ch: make(chan Event, streamBacklog), dropSlow: true, gone: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streams >= maxEventStreams {
		return nil, nil, errTooManyStreams
	}
	h.streams++
	h.subs[s] = struct{}{}
	return s, func() { h.unsubscribe(s) }, nil
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	h.removeLocked(s)
	h.mu.Unlock()
}
