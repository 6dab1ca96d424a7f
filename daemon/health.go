package daemon

import "sync"

// health records what runs degraded, for the status: failed queue writes
// (a full state disk, a closed queue) and the kernel monitors (mount,
// link) that failed and are being restarted. mu guards every field.
type health struct {
	mu           sync.Mutex
	writeErrs    int64
	lastWriteErr string
	degraded     map[string]string // monitor -> why, while it is restarted
}

func (h *health) queueWriteFailed(op, file string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.writeErrs++
	h.lastWriteErr = op + " " + file + ": " + err.Error()
}

// setDegraded records why monitor is down; why "" clears it.
func (h *health) setDegraded(monitor, why string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if why == "" {
		delete(h.degraded, monitor)
		return
	}
	if h.degraded == nil {
		h.degraded = map[string]string{}
	}
	h.degraded[monitor] = why
}
