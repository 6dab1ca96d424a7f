package board

import (
	"context"
	"math"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/camftpd/camftpd/internal/wallclock"
)

// clockRecheck bounds how long WaitClock sleeps between looks at the clock
// when no clock-set notification arrives (a clock slewed by adjtime, or a
// now function that is not the system clock).
var clockRecheck = 5 * time.Second

// ClockSane reports whether t can be the real time: after
// wallclock.SaneAfter, the threshold tlspolicy also judges the clock by.
func ClockSane(t time.Time) bool { return wallclock.Sane(t) }

// WaitClock returns nil as soon as now() is sane, or ctx's error. now nil
// means time.Now. It sleeps until the kernel says the realtime clock was set
// (a timerfd with TFD_TIMER_CANCEL_ON_SET: `date -s`, NTP, an RTC sync),
// or clockRecheck passes, whichever is first; it is meant for boot only.
func WaitClock(ctx context.Context, now func() time.Time) error {
	if now == nil {
		now = time.Now
	}
	if ClockSane(now()) {
		return nil
	}
	set, closeSet := clockSetNotifier()
	defer closeSet()
	t := time.NewTimer(clockRecheck)
	defer t.Stop()
	for !ClockSane(now()) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-set:
		case <-t.C:
			t.Reset(clockRecheck)
		}
	}
	return nil
}

// clockSetNotifier returns a channel that receives when the realtime clock
// is set. Where timerfd is unavailable the channel never fires and WaitClock
// falls back to its timer.
func clockSetNotifier() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	fd, err := unix.TimerfdCreate(unix.CLOCK_REALTIME, unix.TFD_CLOEXEC|unix.TFD_NONBLOCK)
	if err != nil {
		return ch, func() {}
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return ch, func() {}
	}
	arm := func() bool {
		// An absolute expiry far in the future (2038, the most a 32-bit
		// timespec holds): the timer ends by being cancelled when the clock
		// is set. Should it expire instead, the notifier stops and
		// WaitClock's timer carries on alone.
		var spec unix.ItimerSpec
		spec.Value.Sec = math.MaxInt32
		var aerr error
		if err := rc.Control(func(fd uintptr) {
			aerr = unix.TimerfdSettime(int(fd), unix.TFD_TIMER_ABSTIME|unix.TFD_TIMER_CANCEL_ON_SET, &spec, nil)
		}); err != nil {
			return false // the timerfd is closed: the notifier has been stopped
		}
		return aerr == nil
	}
	if !arm() {
		f.Close()
		return ch, func() {}
	}
	go func() {
		var b [8]byte
		for {
			var rerr error
			err := rc.Read(func(fd uintptr) bool {
				_, rerr = unix.Read(int(fd), b[:])
				return rerr != unix.EAGAIN
			})
			if err != nil || rerr != unix.ECANCELED {
				return // closed, or expired
			}
			select {
			case ch <- struct{}{}:
			default:
			}
			if !arm() {
				return
			}
		}
	}()
	return ch, func() { f.Close() }
}
