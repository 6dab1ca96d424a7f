package transfer

import (
	"context"
	"sync"
	"time"
)

// Limiter caps the upload rate of every Client sharing it (Config.Limiter),
// in bytes per second: give all of a daemon's Clients one Limiter and the
// limit holds for them together, while a Client uploading alone gets all of
// it. A nil *Limiter means no limit. It is safe for concurrent use.
//
// It is a virtual-time token bucket: next is the moment the bytes granted
// so far are paid for at the rate. A taker reserves its bytes at once
// (next moves on by n/rate) and sleeps until its slot ends, so concurrent
// uploads taking small chunks (chunk) are served in turn. Time spent
// between takes (a file's STOR and rename, a short network stall) is
// credit up to burst, so the long-run rate holds whatever the file sizes;
// a pause longer than burst means the limiter was idle, and it starts
// over without a burst.
type Limiter struct {
	rate  float64       // bytes per second
	burst time.Duration // credit kept across pauses
	clk   clock

	mu   sync.Mutex
	next time.Time
}

// clock is the limiter's time source; tests inject a simulated one.
type clock interface {
	Now() time.Time
	// Sleep waits d or until ctx ends (then it returns ctx's error).
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error { return sleepCtx(ctx, d) }

// NewLimiter returns a Limiter of rate bytes per second, or nil (no limit)
// when rate <= 0.
func NewLimiter(rate int64) *Limiter { return newLimiter(rate, realClock{}) }

func newLimiter(rate int64, clk clock) *Limiter {
	if rate <= 0 {
		return nil
	}
	// Credit of one chunk's time (1/16 s, at least 4 KiB): it covers the
	// pause between small files on a LAN and timer lateness, and bounds
	// what any window can get above the rate to one chunk (a 2 s window:
	// +3 %). A quarter second let a transfer that started right after
	// another run 7 % over the limit for 2 s.
	burst := max(time.Second/16, time.Duration(4096/float64(rate)*float64(time.Second)))
	return &Limiter{rate: float64(rate), burst: burst, clk: clk}
}

// Rate is the limit in bytes per second (0 for a nil Limiter).
func (l *Limiter) Rate() int64 {
	if l == nil {
		return 0
	}
	return int64(l.rate)
}

// chunk is the write size to use under this limit: a sixteenth of a second
// of the rate (at least 1 KiB, at most size), so that concurrent uploads
// take turns often.
func (l *Limiter) chunk(size int) int {
	if l == nil {
		return size
	}
	return min(max(int(l.rate/16), 1024), size)
}

// wait takes n bytes' worth of the rate, sleeping until they are paid for;
// it returns early with ctx's error, and then gives back what it did not
// use.
func (l *Limiter) wait(ctx context.Context, n int) error {
	if l == nil {
		return nil
	}
	cost := time.Duration(float64(n) / l.rate * float64(time.Second))
	l.mu.Lock()
	now := l.clk.Now()
	if now.Sub(l.next) > l.burst {
		l.next = now // idle: no burst
	}
	l.next = l.next.Add(cost)
	d := l.next.Sub(now)
	l.mu.Unlock()
	if d <= 0 {
		return ctx.Err()
	}
	err := l.clk.Sleep(ctx, d)
	if err != nil {
		l.mu.Lock()
		if left := l.next.Sub(l.clk.Now()); left > 0 {
			l.next = l.next.Add(-min(cost, left))
		}
		l.mu.Unlock()
	}
	return err
}
