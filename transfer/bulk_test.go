//go:build linux

package transfer

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camftpd/camftpd/transfer/ftpstest"
	"golang.org/x/sys/unix"
)

// twoProcs makes sure bulk mode applies (it is off with GOMAXPROCS 1).
func twoProcs(t *testing.T) {
	if n := runtime.GOMAXPROCS(0); n < 2 {
		runtime.GOMAXPROCS(2)
		t.Cleanup(func() { runtime.GOMAXPROCS(n) })
	}
}

// tcpPair returns a connected loopback TCP pair; the server side is never
// read unless the test reads it.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// waitSendFull waits until c's send queue (SIOCOUTQ) holds data and stops
// growing between two looks 20 ms apart: the peer's window and c's buffer
// are full, so the writer on c is blocked in the kernel.
func waitSendFull(t *testing.T, c net.Conn) {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(within(10 * time.Second))
	prev := -1
	for {
		var n int
		var ierr error
		if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil || ierr != nil {
			t.Fatal("SIOCOUTQ:", err, ierr)
		}
		if n > 0 && n == prev {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the send queue did not fill up: %d bytes", n)
		}
		prev = n
		time.Sleep(20 * time.Millisecond)
	}
}

// sockState returns whether fd is non-blocking and its SO_SNDTIMEO.
func sockState(t *testing.T, c net.Conn) (nonblock bool, sndtimeo time.Duration) {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ferr error
	err = rc.Control(func(fd uintptr) {
		var fl int
		if fl, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0); ferr != nil {
			return
		}
		nonblock = fl&unix.O_NONBLOCK != 0
		var tv *unix.Timeval
		if tv, ferr = unix.GetsockoptTimeval(int(fd), unix.SOL_SOCKET, unix.SO_SNDTIMEO); ferr != nil {
			return
		}
		sndtimeo = time.Duration(tv.Nano())
	})
	if err != nil || ferr != nil {
		t.Fatal(err, ferr)
	}
	return nonblock, sndtimeo
}

// TestBulkSwitch: bulk mode makes the socket blocking with a send timeout
// of about bulkSendWait (the kernel rounds it to its tick), and off makes
// it non-blocking again; with GOMAXPROCS 1, or a closed socket, it stays off.
func TestBulkSwitch(t *testing.T) {
	twoProcs(t)
	c, _ := tcpPair(t)
	if nb, _ := sockState(t, c); !nb {
		t.Fatal("a Go socket should start non-blocking")
	}
	b := newBulk(c, 0, new(atomic.Int64))
	if b == nil || b.active() {
		t.Fatalf("newBulk: %+v, want a switch that is off", b)
	}
	b.set(true)
	nb, to := sockState(t, c)
	if !b.active() || nb || to < bulkSendWait || to > 4*bulkSendWait {
		t.Fatalf("bulk on: active %v, non-blocking %v, SO_SNDTIMEO %v; want blocking with about %v", b.active(), nb, to, bulkSendWait)
	}
	b.set(false)
	if nb, _ := sockState(t, c); b.active() || !nb {
		t.Fatalf("bulk off: active %v, non-blocking %v", b.active(), nb)
	}
	c.Close()
	b.set(true)
	if b.active() {
		t.Fatal("bulk mode on a closed socket")
	}

	c2, _ := tcpPair(t)
	n := runtime.GOMAXPROCS(1)
	b2 := newBulk(c2, 0, new(atomic.Int64))
	runtime.GOMAXPROCS(n)
	if b2 != nil || b2.active() {
		t.Fatal("bulk mode offered with GOMAXPROCS 1")
	}
}

// TestBulkBlockedWrite: in bulk mode a write to a peer that stopped reading
// still ends at its deadline, and closing the socket from another goroutine
// ends a blocked write within about bulkSendWait (without SO_SNDTIMEO both
// would block in the kernel for good).
func TestBulkBlockedWrite(t *testing.T) {
	twoProcs(t)
	buf := make([]byte, 1<<20)
	fill := func(c net.Conn, deadline time.Time) chan error {
		ch := make(chan error, 1)
		go func() {
			if err := c.SetWriteDeadline(deadline); err != nil {
				ch <- err // not the error the test waits for: it fails
				return
			}
			for {
				if _, err := c.Write(buf); err != nil {
					ch <- err
					return
				}
			}
		}()
		return ch
	}

	// unblock lets a write blocked for good (the failure) end: the peer
	// reads again, so that the test fails instead of hanging in Close.
	unblock := func(peer net.Conn) {
		go func() { _, _ = io.Copy(io.Discard, peer) }() // ends with the test's sockets
	}

	c, peer := tcpPair(t)
	b := newBulk(c, 0, new(atomic.Int64))
	b.set(true)
	if !b.active() {
		t.Fatal("bulk mode did not turn on")
	}
	start := time.Now()
	select {
	case err := <-fill(c, start.Add(300*time.Millisecond)):
		el := time.Since(start)
		if !errors.Is(err, os.ErrDeadlineExceeded) || el > within(800*time.Millisecond) {
			t.Fatalf("write to a peer that does not read: %v after %v, want the deadline (300 ms)", err, el)
		}
	case <-time.After(within(10 * time.Second)):
		unblock(peer)
		t.Fatal("a blocked write in bulk mode ignored its deadline for 10 s")
	}

	c2, peer2 := tcpPair(t)
	b2 := newBulk(c2, 0, new(atomic.Int64))
	b2.set(true)
	done := fill(c2, time.Time{})
	waitSendFull(t, c2)
	start = time.Now()
	closeDone := make(chan struct{})
	go func() { c2.Close(); close(closeDone) }()
	select {
	case <-closeDone:
	case <-time.After(within(10 * time.Second)):
		unblock(peer2)
		<-closeDone
		t.Fatal("closing the socket waited 10 s for a blocked bulk write")
	}
	closed := time.Since(start)
	select {
	case err := <-done:
		el := time.Since(start)
		if !errors.Is(err, net.ErrClosed) || closed > within(bulkSendWait+100*time.Millisecond) || el > within(bulkSendWait+200*time.Millisecond) {
			t.Fatalf("close during a blocked write: Close took %v, the write ended after %v with %v", closed, el, err)
		}
	case <-time.After(within(10 * time.Second)):
		t.Fatal("closing the socket did not end a blocked bulk write within 10 s")
	}
}

// TestBulkUpload: uploads in bulk mode (forced on from the first window by
// a rate of 1 B/s) arrive whole; a stall in bulk mode is reported as one
// within about Timeout; a cancel in a blocked write returns at once; and
// the next upload resumes. With an unreachable rate bulk mode never turns on.
func TestBulkUpload(t *testing.T) {
	twoProcs(t)
	tg := startTarget(t, "inproc", false)
	cfg := tg.config(t, false)
	// Short, for the stall case; stretched under emulation, where the
	// server's HASH of the 24 MiB file alone took over a second (armv7
	// under qemu-user: "HASH ...: i/o timeout").
	cfg.Timeout = within(time.Second)
	p, data := localFile(t, 3*bulkWindow)
	// The stall cases' file: its tail after the stall point (23 MiB) must
	// not fit in loopback's socket buffers (about 10 MiB with both ends
	// autotuned), or every write returns, the server's reply times out
	// instead, and the upload resumes as after an abort that made progress
	// (3 windows left a 7 MiB tail: the CI saw that twice, for c and d).
	pStall, dataStall := localFile(t, 5*bulkWindow)
	file := p
	upload := func(ctx context.Context, rate float64, id string, progress func(int64, int64)) (Result, int64, error) {
		c := New(cfg)
		defer c.Close()
		c.bulkRate = rate
		res, err := c.Upload(ctx, Job{LocalPath: file, Remote: "bulk/" + id + ".mov", TempID: id, Progress: progress})
		return res, c.bulkWindows.Load(), err
	}

	if _, w, err := upload(context.Background(), 1, "a", nil); err != nil || w != 2 {
		t.Fatalf("upload in bulk mode: %v, %d windows in bulk mode (want 2: the first is measured)", err, w)
	}
	wantFile(t, tg, "bulk/a.mov", data)
	if _, w, err := upload(context.Background(), 1e18, "b", nil); err != nil || w != 0 {
		t.Fatalf("upload below the rate: %v, %d windows in bulk mode (want 0)", err, w)
	}
	wantFile(t, tg, "bulk/b.mov", data)

	// Stalled in the third window (bulk mode since the second).
	tg.inproc.SetFaults(ftpstest.Faults{Stall: true, StallAfterBytes: 2*bulkWindow + 1<<20})
	start := time.Now()
	file = pStall
	_, w, err := upload(context.Background(), 1, "c", nil)
	el := time.Since(start)
	// Bulk mode was on (w >= 1); how many windows it entered before the
	// writes blocked depends on how much the kernel's socket buffers took
	// (1 or 2 seen on this machine).
	if err == nil || ClassOf(err) != Transient || !strings.Contains(err.Error(), "stalled") || el > within(4*time.Second) || w < 1 {
		t.Fatalf("stall in bulk mode: %v (%v) after %v, %d windows in bulk mode", err, ClassOf(err), el, w)
	}

	// Canceled while blocked on the stalled server: 300 ms after the
	// client wrote past the stall point, its send buffer is full.
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	canceledAt := make(chan time.Time, 1)
	var once sync.Once
	stallAt := int64(2*bulkWindow + 1<<20)
	file = pStall // the same 23 MiB after the stall point: the writes block
	_, w, err = upload(ctx, 1, "d", func(sent, _ int64) {
		if sent >= stallAt {
			once.Do(func() { time.AfterFunc(300*time.Millisecond, func() { canceledAt <- time.Now(); cancel() }) })
		}
	})
	var canceled time.Time
	select {
	case canceled = <-canceledAt:
	default: // not canceled: el is huge and the test fails
	}
	el = time.Since(canceled)
	if !errors.Is(err, context.Canceled) || el > within(300*time.Millisecond) || w < 1 {
		t.Fatalf("cancel in a blocked bulk write: %v after %v, %d windows in bulk mode", err, el, w)
	}
	goroutines(t, base)

	tg.inproc.SetFaults(ftpstest.Faults{})
	for _, id := range []string{"c", "d"} {
		file = pStall // c and d stalled on it
		res, _, err := upload(context.Background(), 1, id, nil)
		if err != nil || res.ResumedFrom <= 0 {
			t.Fatalf("%s after the stall: %+v %v, want a resumed upload", id, res, err)
		}
		wantFile(t, tg, "bulk/"+id+".mov", dataStall)
	}
}
