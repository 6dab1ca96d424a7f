package transfer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// simClock is a simulated clock for the limiter: run starts takers on
// goroutines and moves the time to the earliest sleeper's deadline
// whenever every taker still running is asleep, so the time that passes is
// only what the takers sleep (no real sleeping, no scheduling noise).
type simClock struct {
	mu      sync.Mutex
	cond    *sync.Cond
	now     time.Time
	running int
	asleep  []*sleeper
}

type sleeper struct {
	until time.Time
	wake  chan struct{}
}

func newSimClock() *simClock {
	c := &simClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *simClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	c.mu.Lock()
	s := &sleeper{until: c.now.Add(d), wake: make(chan struct{})}
	c.asleep = append(c.asleep, s)
	c.cond.Broadcast()
	c.mu.Unlock()
	<-s.wake
	return nil
}

// run runs n takers until they all return.
func (c *simClock) run(n int, taker func(i int)) {
	var wg sync.WaitGroup
	c.mu.Lock()
	c.running = n
	c.mu.Unlock()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				c.mu.Lock()
				c.running--
				c.cond.Broadcast()
				c.mu.Unlock()
			}()
			taker(i)
		}()
	}
	c.mu.Lock()
	for c.running > 0 {
		if len(c.asleep) < c.running {
			c.cond.Wait()
			continue
		}
		sort.Slice(c.asleep, func(i, j int) bool { return c.asleep[i].until.Before(c.asleep[j].until) })
		c.now = c.asleep[0].until
		k := 0
		for k < len(c.asleep) && !c.asleep[k].until.After(c.now) {
			close(c.asleep[k].wake)
			k++
		}
		c.asleep = c.asleep[k:]
	}
	c.mu.Unlock()
	wg.Wait()
}

const (
	simRate     = 1_000_000 // bytes/s
	simWindow   = 60 * time.Second
	simOverhead = 5 * time.Millisecond // a file's STOR and rename between its bytes
)

// simUploads runs n takers sharing one limiter for simWindow of simulated
// time, each sending files of fileSize bytes in the limiter's chunks (of a
// 128 KiB buffer) with simOverhead before each file, as upload.go does. It
// returns the bytes each taker was granted.
func simUploads(t *testing.T, n, fileSize int) []int64 {
	t.Helper()
	clk := newSimClock()
	l := newLimiter(simRate, clk)
	end := clk.Now().Add(simWindow)
	sent := make([]int64, n)
	clk.run(n, func(i int) {
		for clk.Now().Before(end) {
			if err := clk.Sleep(context.Background(), simOverhead); err != nil {
				t.Error(err)
				return
			}
			chunk := l.chunk(chunkSize)
			for off := 0; off < fileSize && clk.Now().Before(end); {
				m := min(chunk, fileSize-off)
				if err := l.wait(context.Background(), m); err != nil {
					t.Error(err)
					return
				}
				if clk.Now().After(end) {
					return // granted after the window
				}
				off += m
				sent[i] += int64(m)
			}
		}
	})
	return sent
}

// TestLimiterRate: over 60 s of simulated time the limiter grants its rate
// within ±5 % to 1, 2 and 4 concurrent takers, with small files (20 KB,
// one chunk each, a pause between files) and large ones (50 MB in chunks),
// and shares it evenly between them (each within ±5 % of its share).
// Before the fix small files got 0.02-0.04 of the rate (the debt grew with
// every file).
func TestLimiterRate(t *testing.T) {
	for _, size := range []int{20_000, 50_000_000} {
		for _, n := range []int{1, 2, 4} {
			t.Run(fmt.Sprintf("%dx%d", n, size), func(t *testing.T) {
				sent := simUploads(t, n, size)
				var total int64
				for _, s := range sent {
					total += s
				}
				rate := float64(total) / simWindow.Seconds()
				t.Logf("%d taker(s), files of %d bytes: %.0f B/s over %v (limit %d, %+.2f%%); per taker %v",
					n, size, rate, simWindow, simRate, (rate/simRate-1)*100, sent)
				if rate < simRate*0.95 || rate > simRate*1.05 {
					t.Errorf("rate %.0f B/s, want %d ±5%%", rate, simRate)
				}
				for i, s := range sent {
					share := float64(total) / float64(n)
					if float64(s) < share*0.95 || float64(s) > share*1.05 {
						t.Errorf("taker %d got %d bytes, want its share %.0f ±5%%", i, s, share)
					}
				}
			})
		}
	}
}

// TestLimiterSmallFilesLinear: 60 files of 20 KB at 1 MB/s, one after the
// other with a 5 ms pause between them, take 60 × 20 ms (the pauses are
// covered by credit), each file as long as the first. Before the fix the
// n-th file waited n × 20 ms (36.6 s in all): begin() restarted the clock
// while the bucket was in debt, so the time that paid the debt was lost.
func TestLimiterSmallFilesLinear(t *testing.T) {
	const files, size = 60, 20_000
	clk := newSimClock()
	l := newLimiter(simRate, clk)
	took := make([]time.Duration, files)
	start := clk.Now()
	clk.run(1, func(int) {
		for i := range files {
			t0 := clk.Now()
			if err := clk.Sleep(context.Background(), simOverhead); err != nil {
				t.Error(err)
				return
			}
			if err := l.wait(context.Background(), size); err != nil {
				t.Error(err)
				return
			}
			took[i] = clk.Now().Sub(t0)
		}
	})
	total := clk.Now().Sub(start)
	data := time.Duration(files*size) * time.Second / simRate
	t.Logf("%d × %d bytes at %d B/s: %v (bytes alone %v); first file %v, last %v", files, size, simRate, total, data, took[0], took[files-1])
	// The first file pays its overhead and its bytes (no credit yet).
	if want := data + simOverhead; total > want*105/100 {
		t.Errorf("took %v, want at most %v +5%%", total, want)
	}
	for i, d := range took[1:] {
		if d > took[0] {
			t.Errorf("file %d took %v, longer than the first (%v)", i+2, d, took[0])
		}
	}
}

// TestLimiterLendsIdleShare: two takers share one limiter; the second stops
// half-way. In the first half each gets half of the rate, in the second the
// first gets all of it (each within ±5 %).
func TestLimiterLendsIdleShare(t *testing.T) {
	clk := newSimClock()
	l := newLimiter(simRate, clk)
	start := clk.Now()
	half, end := start.Add(simWindow/2), start.Add(simWindow)
	var first, second [2]int64 // bytes per taker in each half
	clk.run(2, func(i int) {
		stop := end
		if i == 1 {
			stop = half
		}
		chunk := l.chunk(chunkSize)
		for clk.Now().Before(stop) {
			if err := l.wait(context.Background(), chunk); err != nil {
				t.Error(err)
				return
			}
			if clk.Now().After(half) {
				second[i] += int64(chunk)
			} else {
				first[i] += int64(chunk)
			}
		}
	})
	secs := (simWindow / 2).Seconds()
	t.Logf("first half: %.0f and %.0f B/s; second half: %.0f and %.0f B/s (limit %d)",
		float64(first[0])/secs, float64(first[1])/secs, float64(second[0])/secs, float64(second[1])/secs, simRate)
	check := func(what string, got int64, want float64) {
		if r := float64(got) / secs; r < want*0.95 || r > want*1.05 {
			t.Errorf("%s: %.0f B/s, want %.0f ±5%%", what, r, want)
		}
	}
	check("taker 1, both busy", first[0], simRate/2)
	check("taker 2, both busy", first[1], simRate/2)
	check("taker 1 alone", second[0], simRate)
}

// TestLimiterIdleNoBurst: after a pause longer than the burst the limiter
// starts over: the next 0.5 s of bytes take 0.5 s, not less.
func TestLimiterIdleNoBurst(t *testing.T) {
	clk := newSimClock()
	l := newLimiter(simRate, clk)
	var took time.Duration
	clk.run(1, func(int) {
		if err := l.wait(context.Background(), 1000); err != nil {
			t.Error(err)
		}
		if err := clk.Sleep(context.Background(), 10*time.Second); err != nil {
			t.Error(err)
		}
		t0 := clk.Now()
		for range 10 {
			if err := l.wait(context.Background(), simRate/20); err != nil {
				t.Error(err)
			}
		}
		took = clk.Now().Sub(t0)
	})
	if took != 500*time.Millisecond {
		t.Errorf("0.5 s of bytes after an idle pause took %v, want 500ms", took)
	}
}

// TestLimiterCancel: a wait on a canceled context returns its error at once
// (real clock) and gives its bytes back, so the next taker is not charged
// for them; a limit of 0 means no limiter.
func TestLimiterCancel(t *testing.T) {
	l := NewLimiter(1 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := l.wait(ctx, 10<<20); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait on a canceled ctx = %v", err)
	}
	if el := time.Since(start); el > within(100*time.Millisecond) {
		t.Fatalf("canceled wait took %v", el)
	}
	start = time.Now()
	if err := l.wait(context.Background(), 1<<10); err != nil {
		t.Fatal(err)
	}
	// 1 KiB at 1 MiB/s is 1 ms; the 10 MiB given back would be 10 s.
	if el := time.Since(start); el > within(500*time.Millisecond) {
		t.Fatalf("1 KiB after a canceled 10 MiB wait took %v: the canceled bytes were charged", el)
	}
	if NewLimiter(0) != nil || NewLimiter(-1) != nil {
		t.Fatal("a limit <= 0 must mean none")
	}
	var none *Limiter
	if none.wait(context.Background(), 1<<30) != nil || none.chunk(chunkSize) != chunkSize || none.Rate() != 0 {
		t.Fatal("a nil Limiter must not limit")
	}
}
