package transfer

import (
	"net"
	"runtime"
	"sync/atomic"
	"time"
)

// Bulk mode is measured per window of bulkWindow bytes and on for the next
// window above bulkMinRate (Client.bulkRate); while it is on, the sender
// yields every bulkYield.
const (
	bulkWindow  = 8 << 20
	bulkMinRate = 50e6 // bytes/s
	bulkYield   = 4 * time.Millisecond
)

// bulkMode is one data connection's switch between Go's poller and bulk
// mode (blocking sends; why and when: bulk_linux.go), with what decides it:
// each bulkWindow of the stream sent faster than rate turns bulk mode on
// for the next window. A nil *bulkMode (bulk mode not available) does
// nothing.
type bulkMode struct {
	sock      bulkSocket
	on        bool
	rate      float64 // bytes/s
	winStart  time.Time
	winBytes  int64
	lastYield time.Time
	windows   *atomic.Int64 // windows sent in bulk mode (for tests)
}

// newBulk returns c's switch, off, or nil when bulk mode does not apply.
func newBulk(c net.Conn, rate float64, windows *atomic.Int64) *bulkMode {
	sock, ok := bulkSocketOf(c)
	if !ok {
		return nil
	}
	now := time.Now()
	return &bulkMode{sock: sock, rate: rate, winStart: now, lastYield: now, windows: windows}
}

// active reports whether bulk mode is on.
func (b *bulkMode) active() bool { return b != nil && b.on }

// beforeWrite yields every bulkYield while bulk mode is on, so that the
// runtime never retakes the P of the blocking writes.
func (b *bulkMode) beforeWrite(now time.Time) {
	if b.active() && now.Sub(b.lastYield) >= bulkYield {
		runtime.Gosched()
		b.lastYield = now
	}
}

// wrote counts n bytes sent and, at the end of a window, decides the next.
func (b *bulkMode) wrote(n int) {
	if b == nil {
		return
	}
	if b.winBytes += int64(n); b.winBytes < bulkWindow {
		return
	}
	if b.on {
		b.windows.Add(1)
	}
	now := time.Now()
	b.set(float64(b.winBytes)/now.Sub(b.winStart).Seconds() >= b.rate)
	b.winStart, b.winBytes = now, 0
}

// set turns bulk mode on or off; if the socket refuses (closed), it stays
// off. Turn it off before reading from the socket.
func (b *bulkMode) set(on bool) {
	if b == nil || b.on == on {
		return
	}
	b.on = b.sock.setBlocking(on) && on
}
