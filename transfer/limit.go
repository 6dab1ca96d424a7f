package transfer

import (
	"context"
	"sync"
	"time"
)

// limiter is a token bucket shared by every upload of a Client. Tokens may
// go negative: a caller takes what it needs and sleeps until the debt is
// paid, so the long-run rate is exact whatever the chunk size.
type limiter struct {
	rate  float64 // bytes per second
	burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newLimiter(rate int64) *limiter {
	if rate <= 0 {
		return nil
	}
	// A quarter second of credit: a transfer that stalled briefly (CPU,
	// network) catches up, so the average holds. Credit earned while idle
	// is dropped when a transfer starts (begin), so there is no burst.
	burst := float64(rate) / 4
	if burst < 4096 {
		burst = 4096
	}
	return &limiter{rate: float64(rate), burst: burst}
}

// begin marks the start of a transfer: credit saved up while idle is
// dropped (debt is kept).
func (l *limiter) begin() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tokens > 0 {
		l.tokens = 0
	}
	l.last = time.Now()
}

// chunk is the write size to use under this limit.
func (l *limiter) chunk(max int) int {
	if l == nil {
		return max
	}
	c := int(l.rate / 16)
	if c < 1024 {
		c = 1024
	}
	if c > max {
		c = max
	}
	return c
}

// wait takes n bytes' worth of tokens, sleeping as needed; it returns early
// with ctx's error.
func (l *limiter) wait(ctx context.Context, n int) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	if l.last.IsZero() {
		l.last = now
	}
	l.tokens += now.Sub(l.last).Seconds() * l.rate
	if l.tokens > l.burst {
		l.tokens = l.burst
	}
	l.last = now
	l.tokens -= float64(n)
	var d time.Duration
	if l.tokens < 0 {
		d = time.Duration(-l.tokens / l.rate * float64(time.Second))
	}
	l.mu.Unlock()
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
