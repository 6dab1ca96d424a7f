package daemon

import (
	"sort"
	"sync"
	"time"

	"github.com/camftpd/camftpd/queue"
)

// Overtaking (see overtake.go for the dispatcher's side): a still that
// waits while every worker is busy pauses the lowest-ranked upload in
// flight, whose item is released and later resumed with REST from its
// temporary file. This file holds the ranks, the pause's cause and the
// bookkeeping that the status shows.

// overtakeRank is the rank of a capture for overtaking: 0 for a movie or
// any other file (never overtakes, always may be overtaken), 2 for a
// JPEG/HEIF still and for RAW (1 under raw_jpeg = "jpeg-first": a RAW
// upload yields to a JPEG/HEIF), plus protectedBoost for a protected
// still. Only a strictly higher rank pauses an upload: a still never
// pauses one of its own rank.
func overtakeRank(c queue.Capture, jpegFirst bool) int {
	r := 0
	switch kindOf(c.Rel) {
	case kindJPEG:
		r = 2
	case kindRAW:
		r = 2
		if jpegFirst {
			r = 1
		}
	default:
		return 0
	}
	if c.Priority >= protectedBoost {
		r += protectedBoost
	}
	return r
}

// overtakenError is the cause an overtaken upload is cancelled with: it
// tells a pause for a still from a shutdown, a pause or a reload (plain
// cancels).
type overtakenError struct{ by string } // the still's file

func (e *overtakenError) Error() string { return "paused: overtaken by " + e.by }

// overtakeHold bounds how long a pause asked for a still counts as
// serving it: the still normally starts within milliseconds (see
// otState.started); one that vanished meanwhile must not shield the
// next waiting still for ever.
const overtakeHold = 5 * time.Second

// PausedUpload is an upload paused for a still (Status.PausedUploads):
// its item is pending again and resumes from Sent when no still waits.
type PausedUpload struct {
	ID    string    `json:"id"`
	File  string    `json:"file"`
	Sent  int64     `json:"sent"`
	Total int64     `json:"total"`
	State string    `json:"state"` // "paused: overtaken by <file>"
	Since time.Time `json:"since"`
}

// otState is the overtaking bookkeeping; mu guards it (never held with
// Daemon.mu).
type otState struct {
	mu sync.Mutex
	// serving: still ID -> when a pause was asked for it (until it starts
	// or overtakeHold passed); paused: item ID -> its paused upload, until
	// it starts again.
	serving map[string]time.Time
	paused  map[string]PausedUpload
	// kick asks the dispatcher to look for overtaking again: an upload that
	// begins (see kicked) may be the one a still queued since its lease
	// must pause.
	kick chan struct{}
}

// kicked returns the channel the dispatcher reads kicks from.
func (o *otState) kicked() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.kick == nil {
		o.kick = make(chan struct{}, 1)
	}
	return o.kick
}

// kickDispatcher asks the dispatcher, without waiting, to look for
// overtaking again (begin calls it once an upload can be paused: a still
// queued between the upload's lease and its begin found nothing to pause).
func (o *otState) kickDispatcher() {
	o.mu.Lock()
	k := o.kick
	o.mu.Unlock()
	select {
	case k <- struct{}{}:
	default: // one pending kick is enough; nil: no dispatcher (tests)
	}
}

// serve records that a pause was asked for still id, unless one was asked
// within overtakeHold; it reports whether it recorded it.
func (o *otState) serve(id string, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if at, ok := o.serving[id]; ok && now.Sub(at) < overtakeHold {
		return false
	}
	if o.serving == nil {
		o.serving = map[string]time.Time{}
	}
	for k, at := range o.serving {
		if now.Sub(at) >= overtakeHold {
			delete(o.serving, k)
		}
	}
	o.serving[id] = now
	return true
}

// unserve forgets a pause asked for still id that was not made.
func (o *otState) unserve(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.serving, id)
}

// pausedNow records a paused upload.
func (o *otState) pausedNow(p PausedUpload) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.paused == nil {
		o.paused = map[string]PausedUpload{}
	}
	o.paused[p.ID] = p
}

// started forgets item id, which starts uploading: as a still a pause was
// asked for, and as a paused upload.
func (o *otState) started(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.serving, id)
	delete(o.paused, id)
}

// list returns the paused uploads, oldest pause first.
func (o *otState) list() []PausedUpload {
	o.mu.Lock()
	defer o.mu.Unlock()
	l := make([]PausedUpload, 0, len(o.paused))
	for _, p := range o.paused {
		l = append(l, p)
	}
	sort.Slice(l, func(i, j int) bool { return l[i].Since.Before(l[j].Since) })
	return l
}
