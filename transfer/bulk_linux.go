package transfer

import (
	"net"
	"os"
	"runtime"
	"syscall"
	"time"
)

// Bulk mode for fast data connections.
//
// A data connection's bytes normally go through Go's network poller: when
// the socket's send buffer is full the upload goroutine parks, every P goes
// idle and the runtime's sysmon thread goes into deep sleep; the first
// system call after the wake-up wakes sysmon again, and it then polls every
// 20 µs for about a millisecond. When the server is just slower than us (on
// loopback and a fast LAN) the buffer fills and drains hundreds of times a
// second: for a 1 GiB upload to vsftpd on loopback that was 5,400 to 8,800
// sysmon wake-ups and 0.16 to 0.24 CPU-s (per-thread counters in /proc), the
// whole gap to curl's CPU.
//
// In bulk mode the socket blocks in the kernel instead, for at most
// bulkSendWait per write(2): the P stays in its system call, so sysmon backs
// off to its 10 ms period (about 700 wake-ups for the same upload). A write
// that waits longer returns EAGAIN and Go's poller takes over as usual,
// deadlines included: a stalled server is still caught by the write
// deadline. Closing the socket from another goroutine (cancel) waits for
// the write in progress, at most bulkSendWait.
//
// Bulk mode is for fast connections only: on a slow link every write waits
// long, and blocking keeps sysmon awake where the poller would let it sleep
// (a version that left bulk mode only after three slow writes in a row had
// 2.5 times sysmon's wake-ups on the bench's 100 Mbit/s link). bulkMode
// measures each bulkWindow of the stream and uses bulk mode for the next one
// only when it went faster than bulkMinRate. The runtime also retakes a P
// that runs one goroutine for 10 ms without a reschedule, and a retake
// resets sysmon to 20 µs polling, so the loop yields every bulkYield while
// in bulk mode. With GOMAXPROCS 1 there is never an idle P and sysmon would
// retake the P of every write that blocks longer than 20 µs: bulk mode is
// off there.
const bulkSendWait = 5 * time.Millisecond

// bulkSocket is a TCP socket's file descriptor.
type bulkSocket struct{ rc syscall.RawConn }

// bulkSocketOf returns c's socket when bulk mode applies: TCP, GOMAXPROCS
// above 1, and not CAMFTPD_BULK=0 (for measurements).
func bulkSocketOf(c net.Conn) (bulkSocket, bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok || runtime.GOMAXPROCS(0) < 2 || os.Getenv("CAMFTPD_BULK") == "0" {
		return bulkSocket{}, false
	}
	rc, err := tc.SyscallConn()
	return bulkSocket{rc}, err == nil
}

// setBlocking makes the socket blocking with a send timeout of
// bulkSendWait, or non-blocking again; false if that failed.
func (s bulkSocket) setBlocking(on bool) bool {
	var serr error
	cerr := s.rc.Control(func(fd uintptr) {
		if on {
			tv := syscall.NsecToTimeval(int64(bulkSendWait))
			if serr = syscall.SetsockoptTimeval(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv); serr != nil {
				return
			}
		}
		serr = syscall.SetNonblock(int(fd), !on)
	})
	return cerr == nil && serr == nil
}
