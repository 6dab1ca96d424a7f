package daemon

import (
	"sync"
	"time"
)

// Event is one line of the progress stream (GET /events, Daemon.Subscribe).
type Event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"` // queued, held, start, progress, done, skipped, retry, parked, vanished, state, tls
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
	// Latency from the end of the settle window to the upload start (start events).
	LatencyMS float64 `json:"latency_ms,omitempty"`
}

// hub fans events out to subscribers; a slow subscriber loses events, never
// slows an upload.
type hub struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

func newHub() *hub { return &hub{subs: map[chan Event]struct{}{}} }

func (h *hub) publish(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs {
		select {
		case c <- e:
		default:
		}
	}
}

func (h *hub) subscribe(buf int) (<-chan Event, func()) {
	c := make(chan Event, buf)
	h.mu.Lock()
	h.subs[c] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return c, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, c)
			h.mu.Unlock()
		})
	}
}
