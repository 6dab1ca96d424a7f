// Package linkemu is a user-space link emulator for benchmarks and tests
// (netem is not available where they run): a TCP proxy on its own loopback
// address that delays and rate-limits the bytes as one shared link would.
// scripts/benchkit's link workload and the daemon's link-speed tests use
// it. No firmware package imports it (layout_test.go).
package linkemu

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Link is a user-space link emulator: a
// TCP proxy on its own loopback address that forwards to the server's
// control port and to every passive data port, and delays and rate-limits
// the bytes as one shared link would.
//
// Model: each direction is one FIFO bottleneck of Rate bytes/s shared by all
// connections; a chunk read from a socket is serialized after whatever is
// queued on its direction, then delivered RTT/2 later. The queue is bounded
// (Queue of transmission time): a reader that would queue more waits, which
// pushes back on the sender through TCP flow control. A new connection costs
// one round trip before the client's first byte leaves (the TCP handshake),
// and the server's first byte leaves 1.5 RTT after the client connected.
// Not modelled: loss, TCP slow start and congestion control of the
// end-to-end path (each side's TCP talks to the proxy over loopback).
type Link struct {
	IP     string        // where clients connect, e.g. "127.0.0.2"
	Target string        // server address, "127.0.0.1"
	Rate   float64       // bytes per second, each direction
	RTT    time.Duration // round-trip delay added
	Queue  time.Duration // most transmission time queued per direction

	up, down direction
	lns      []net.Listener
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
	closed   atomic.Bool
}

type direction struct {
	mu    sync.Mutex
	free  time.Time // when the link is free again
	bytes atomic.Int64
}

// reserve books n bytes on the link, not before earliest, and returns when
// their transmission ends.
func (d *direction) reserve(n int, earliest time.Time, rate float64) time.Time {
	now := time.Now()
	d.mu.Lock()
	start := now
	if earliest.After(start) {
		start = earliest
	}
	if d.free.After(start) {
		start = d.free
	}
	end := start.Add(time.Duration(float64(n) / rate * float64(time.Second)))
	d.free = end
	d.mu.Unlock()
	d.bytes.Add(int64(n))
	return end
}

// Start listens on ip for the given ports and forwards each to the same
// port on target, at rate bytes per second each way, with rtt added and at
// most queue of transmission time queued per direction.
func Start(ip, target string, rate float64, rtt, queue time.Duration, ports []int) (*Link, error) {
	l := &Link{IP: ip, Target: target, Rate: rate, RTT: rtt, Queue: queue, conns: map[net.Conn]struct{}{}}
	for _, p := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p)))
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("link emulator: listen on %s:%d: %w", ip, p, err)
		}
		l.lns = append(l.lns, ln)
		to := net.JoinHostPort(target, strconv.Itoa(p))
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.acceptLoop(ln, to)
		}()
	}
	return l, nil
}

// Bytes returns the bytes carried client->server and server->client.
func (l *Link) Bytes() (up, down int64) { return l.up.bytes.Load(), l.down.bytes.Load() }

func (l *Link) acceptLoop(ln net.Listener, to string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		t0 := time.Now()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.serve(c.(*net.TCPConn), to, t0)
		}()
	}
}

func (l *Link) track(c net.Conn, add bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if add {
		if l.closed.Load() {
			return false
		}
		l.conns[c] = struct{}{}
	} else {
		delete(l.conns, c)
	}
	return true
}

func (l *Link) serve(client *net.TCPConn, to string, t0 time.Time) {
	defer client.Close()
	if !l.track(client, true) {
		return
	}
	defer l.track(client, false)
	up, err := net.DialTimeout("tcp", to, 5*time.Second)
	if err != nil {
		return
	}
	server := up.(*net.TCPConn)
	defer server.Close()
	if !l.track(server, true) {
		return
	}
	defer l.track(server, false)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		l.pipe(client, server, &l.up, t0.Add(l.RTT))
	}()
	go func() {
		defer wg.Done()
		l.pipe(server, client, &l.down, t0.Add(l.RTT*3/2))
	}()
	wg.Wait()
}

type chunk struct {
	b   []byte
	at  time.Time
	eof bool // end of stream: pass the FIN on
	rst bool // the source was reset: reset the destination
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// pipe copies src to dst through direction d; nothing leaves before gate.
func (l *Link) pipe(src, dst *net.TCPConn, d *direction, gate time.Time) {
	oneWay := l.RTT / 2
	ch := make(chan chunk, 512)
	done := make(chan struct{})
	go func() {
		defer close(done)
		failed := false
		for c := range ch {
			if failed {
				continue
			}
			if w := time.Until(c.at); w > 0 {
				time.Sleep(w)
			}
			if c.rst {
				_ = dst.SetLinger(0)
				dst.Close()
				continue
			}
			if c.eof {
				_ = dst.CloseWrite()
				continue
			}
			if _, err := dst.Write(c.b); err != nil {
				failed = true
				src.Close()
				dst.Close()
			}
			b := c.b[:cap(c.b)]
			chunkPool.Put(&b)
		}
	}()
	for {
		bp := chunkPool.Get().(*[]byte)
		n, err := src.Read(*bp)
		if n > 0 {
			end := d.reserve(n, gate, l.Rate)
			ch <- chunk{b: (*bp)[:n], at: end.Add(oneWay)}
			if w := time.Until(end) - l.Queue; w > 0 {
				time.Sleep(w)
			}
		} else {
			chunkPool.Put(bp)
		}
		if err != nil {
			at := time.Now()
			if gate.After(at) {
				at = gate
			}
			ch <- chunk{eof: errors.Is(err, io.EOF), rst: !errors.Is(err, io.EOF), at: at.Add(oneWay)}
			break
		}
	}
	close(ch)
	<-done
}

// Close stops the listeners and cuts every proxied connection.
func (l *Link) Close() {
	l.closed.Store(true)
	for _, ln := range l.lns {
		ln.Close()
	}
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}
