package queue

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// State of an item.
type State string

// The states of an item. Every item is in exactly one of them.
const (
	Pending  State = "pending"  // waiting for a worker, due now
	InFlight State = "inflight" // leased to a worker until LeaseUntil
	Retry    State = "retry"    // failed transiently, due at NextAttempt
	Done     State = "done"     // uploaded; kept as history while the file is on the card
	Parked   State = "parked"   // failed permanently (or vanished); waits for RetryNow
	Held     State = "held"     // known but not to be sent unless asked (Reason says why: backlog, not protected)
	Skipped  State = "skipped"  // not sent: the name was taken on the server by another file (same_name skip)
)

// allStates lists the states in the order List reports them when called
// without arguments.
var allStates = []State{InFlight, Pending, Retry, Parked, Held, Done, Skipped}

// Capture is a file found in the media directory. Its identity is Rel, Size
// and Fingerprint; Path, ModTime and Inode describe where and how it was
// last seen and serve as hints only.
type Capture struct {
	Path        string // absolute local path when queued (the media root may move: use Rel)
	Rel         string // path relative to the media root, with forward slashes
	Size        int64
	ModTime     time.Time
	Inode       uint64
	Fingerprint []byte // see Fingerprint; required
	Priority    int    // higher goes first; 0 is normal
	// Hold, when set on a capture the queue does not know yet, makes its
	// new item Held with this reason instead of Pending.
	Hold string
}

// Intent is a rename an upload announced before sending RNTO: the
// temporary file Temp becomes Final, Size bytes. It stays on the item
// until the item is settled, so that a restart can tell by what the server
// shows whether the rename happened.
type Intent struct {
	Temp, Final string
	Size        int64
}

// Item is a queued capture and its state.
type Item struct {
	ID          string
	Seq         uint64 // enqueue sequence number (FIFO order within a priority)
	Capture     Capture
	State       State
	Attempts    int // upload attempts so far (a lease counts one; Release gives it back)
	Enqueued    time.Time
	NextAttempt time.Time // for Retry
	LeaseUntil  time.Time // for InFlight
	Worker      string    // for InFlight: who holds the lease
	LastError   string
	Reason      string // for Parked
	Remote      string // for Done
	Hash        string // for Done: "<algorithm>:<hex>" of the file as sent
	DoneAt      time.Time
	Vanished    bool // for Parked: the local file was gone; never retried
	// Intent is the rename last announced by Intend, if any (zero when
	// none); cleared when the item is settled.
	Intent Intent
	// AbsentSince is when a scan of the item's folder first did not find
	// its file (zero while it is there). Done, skipped, held and vanished
	// items absent for HistoryMaxAge are dropped.
	AbsentSince time.Time
	// FirstLease is set on the Item Lease returns when the item was never
	// leased before (a released lease counts too): no upload of it can have
	// begun, so no partial remote file of it can exist. After a start that
	// found the queue not closed cleanly it is never set on the items
	// enqueued before that start (a lease of the crashed run may have been
	// lost before it was written, see softlease.go).
	FirstLease bool
}

// Options configures Open; the zero value means the defaults.
type Options struct {
	// BackoffMin and BackoffMax bound the retry delay after a transient
	// failure (defaults 5s and 10min). The delay doubles with every
	// consecutive failure and is jittered to [d/2, d], never below
	// BackoffMin.
	BackoffMin, BackoffMax time.Duration
	// HistoryMaxAge and HistoryMaxCount bound the history of captures that
	// are gone from the card (defaults 30 days and 10,000 items): a done,
	// skipped, held or vanished item is dropped when its file has been
	// absent from every scan for HistoryMaxAge, or, beyond HistoryMaxCount
	// absent items, the longest absent first. An item whose file is on the
	// card is never dropped, however many there are. A negative value
	// disables that bound.
	HistoryMaxAge   time.Duration
	HistoryMaxCount int
	// LeaseTime is how long a lease lasts without Renew (default 10min).
	// An expired lease goes back to pending on the next Lease.
	LeaseTime time.Duration
	// LockTimeout is how long Open waits for the file lock held by another
	// process (default 3s).
	LockTimeout time.Duration
	// MaxFileSize bounds the queue file in bytes (default 256 MiB: 250,000
	// delivered shots on the card take about 110 MiB); a write
	// that needs more fails with ErrFull. Negative means no bound.
	MaxFileSize int64
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Elapsed is a monotonic clock: time since any fixed point, never
	// stepped. When the wall clock (Now) is stepped by a second or more, by
	// NTP or `date -s`, Retry due times and lease expiries move with the
	// step, so that each keeps the delay it had left. Default: the
	// process's monotonic clock when Now is nil; with Now set and Elapsed
	// nil, due times follow Now alone (a test's clock).
	Elapsed func() time.Duration
	// Logger receives recovery and maintenance lines (default slog.Default()).
	Logger *slog.Logger
}

// Defaults applied by Open to zero fields of Options.
const (
	DefaultBackoffMin      = 5 * time.Second
	DefaultBackoffMax      = 10 * time.Minute
	DefaultHistoryMaxAge   = 30 * 24 * time.Hour
	DefaultHistoryMaxCount = 10000
	DefaultLeaseTime       = 10 * time.Minute
	DefaultLockTimeout     = 3 * time.Second
	DefaultMaxFileSize     = 256 << 20
)

// initialMmapSize is kept small so the mapping fits a 32-bit armv7 address
// space comfortably; bbolt remaps as the file grows.
const initialMmapSize = 1 << 20

// Errors returned (wrapped) by the queue. Test with errors.Is.
var (
	ErrNotFound = errors.New("queue: no such item")
	ErrState    = errors.New("queue: item is not in a state that allows this")
	ErrClosed   = errors.New("queue: closed")
	ErrLocked   = errors.New("queue: file is locked by another process")
	ErrFull     = errors.New("queue: no space to write the queue file")
)

// Counts is the number of items in each state.
type Counts struct{ Pending, InFlight, Retry, Done, Parked, Held, Skipped int }

// Queue is an open queue file. Its methods are safe for concurrent use.
type Queue struct {
	db        *bolt.DB
	path      string
	opts      Options
	log       *slog.Logger
	recovered bool
	wake      chan struct{}
	anchor    clockAnchor // last look at the clocks, see replanTx
	group     groupCommit // updateGrouped's queue (group.go)
	soft      softLeases  // leases not written yet (softlease.go)
	unclean   bool        // Open found no clean-close marker
	freshSeq  uint64      // items up to this Seq may have a lease lost in a crash
}

// clockAnchor is the wall and monotonic reading of the last look at the
// clocks, to tell a wall-clock step from time passing.
type clockAnchor struct {
	mu   sync.Mutex
	wall time.Time     // Options.Now, wall reading only
	mono time.Duration // Options.Elapsed
	set  bool
}

// Recovered reports whether Open found the file corrupt or unreadable, moved
// it aside and started a fresh queue: the caller should rescan the media
// directory.
func (q *Queue) Recovered() bool { return q.recovered }

// Path returns the queue file's path.
func (q *Queue) Path() string { return q.path }

// Wake returns a channel signalled (non-blocking, capacity 1) when new work
// may be due: after an Enqueue that added an item, Fail, Release, RetryNow,
// ResetBackoff, and at Open when work is pending.
func (q *Queue) Wake() <-chan struct{} { return q.wake }

func (q *Queue) now() time.Time { return q.opts.Now() }

func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}
