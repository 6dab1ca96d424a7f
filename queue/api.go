package queue

import "time"

// State of an item.
type State string

const (
	Pending  State = "pending"
	InFlight State = "inflight"
	Retry    State = "retry"
	Done     State = "done"
	Parked   State = "parked"
)

// Capture is a file found in the media directory.
type Capture struct {
	Path     string // absolute local path
	Rel      string // path relative to the media root
	Size     int64
	ModTime  time.Time
	Inode    uint64
	Priority int // higher goes first; 0 is normal
}

// Item is a queued capture and its state.
type Item struct {
	ID          string
	Capture     Capture
	State       State
	Attempts    int
	Enqueued    time.Time
	NextAttempt time.Time // for Retry
	LeaseUntil  time.Time // for InFlight
	LastError   string
	Reason      string // for Parked
	Remote      string // for Done
	SHA256      string // for Done
	DoneAt      time.Time
}

// Options configures Open; the zero value means the defaults.
type Options struct{}

// Queue is an open queue file.
type Queue struct{}

// Open opens (or creates) the queue at path.
func Open(path string, opts *Options) (*Queue, error) { panic("queue: not implemented") }
