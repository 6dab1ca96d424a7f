package transfer

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// replyLimit is the most a server may send on the control connection
// between two of our commands (bytes on the wire: plain text before AUTH
// TLS, TLS records after it). Real servers' longest flights are a
// certificate chain during the handshake (a few KiB) and a FEAT reply (about
// 1 KiB); a banner of a few KiB passes too (`camftpd check` refuses a reply
// line over 4 KiB).
const replyLimit = 32 << 10

// guard bounds what goftp reads from the server. goftp reads control
// replies with net/textproto, which buffers a line or a multi-line reply
// whole, however long, and it dials the server itself (no dial hook). So
// dial connects to the server first, and goftp connects to the guard's
// loopback listener instead; the guard relays both ways and cuts both
// connections when the server sends more than limit bytes since our last
// command. goftp then never holds more than about twice limit of one reply
// (what was in flight before the command, and the limit after it).
//
// Our commands are told from what else we write by their size: before TLS
// every write is a command; after it, a TLS record of application data of
// at least minCommandRecord bytes (the shortest command, "NOOP\r\n", plus
// the TLS 1.3 content type and AEAD tag), or a handshake record. TLS 1.3
// KeyUpdate replies (22 bytes) and alerts (19) are not commands: a server
// that requests key updates cannot extend the window with them.
//
// The listener takes one connection: a local process that connects first
// is relayed to the server in goftp's place, and goftp's connect fails
// (refused) and is retried; nothing leaks, since TLS authenticates the
// server end to end and the password is only sent over it.
//
// The guard never sees plain text after AUTH TLS: goftp's TLS runs through
// it end to end, with the server's name set in the TLS config. Data
// connections do not pass through it (they go to the server's address, see
// session.passive) and are read into fixed buffers.
type guard struct {
	limit   int64
	srv     net.Conn // to the server
	ln      net.Listener
	window  atomic.Int64 // bytes from the server since our last command
	tripped atomic.Bool
	// plainCmds counts our writes holding a command before TLS (AUTH TLS
	// is the first): the connection test tells a refused greeting from a
	// refused AUTH TLS by it.
	plainCmds atomic.Int32

	mu     sync.Mutex
	cli    net.Conn // goftp's connection, once accepted
	closed bool
	wg     sync.WaitGroup
}

const (
	minCommandRecord = len("NOOP\r\n") + 1 + 16
	guardBuf         = 8 << 10 // per direction
)

// newGuard listens on loopback for goftp's connection and relays it to
// srv. accept bounds how long it waits for goftp to connect.
func newGuard(srv net.Conn, limit int64, accept time.Duration) (*guard, error) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		ln, err = net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv6loopback})
	}
	if err != nil {
		return nil, &Error{Class: Transient, Op: "connect", Msg: "cannot listen on loopback for the control connection's guard (" + oneLine(err.Error()) + "): is the loopback interface up? will retry", Err: err}
	}
	if err := ln.SetDeadline(time.Now().Add(accept)); err != nil {
		ln.Close()
		return nil, &Error{Class: Transient, Op: "connect", Msg: "cannot bound the control connection guard's accept (" + oneLine(err.Error()) + "); will retry", Err: err}
	}
	g := &guard{limit: limit, srv: srv, ln: ln}
	g.wg.Go(g.serve)
	return g, nil
}

// addr is where goftp connects.
func (g *guard) addr() string { return g.ln.Addr().String() }

// serve accepts goftp's connection (only one) and relays it.
func (g *guard) serve() {
	cli, err := g.ln.Accept()
	g.ln.Close()
	if err != nil {
		g.shut()
		return
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		cli.Close()
		return
	}
	g.cli = cli
	g.mu.Unlock()
	g.wg.Go(g.fromClient)
	g.fromServer()
}

// fromServer relays the server's bytes to goftp while the window allows.
// When the server ends its side, goftp reads what was sent, then EOF.
func (g *guard) fromServer() {
	buf := make([]byte, guardBuf)
	for {
		n, err := g.srv.Read(buf)
		if n > 0 {
			if g.window.Add(int64(n)) > g.limit {
				g.tripped.Store(true)
				g.shut()
				return
			}
			if _, werr := g.cli.Write(buf[:n]); werr != nil {
				g.shut()
				return
			}
		}
		if err != nil {
			closeWrite(g.cli)
			return
		}
	}
}

// fromClient relays goftp's bytes to the server; a command opens a new
// window (before it is sent: the reply counts in the new window).
func (g *guard) fromClient() {
	buf := make([]byte, guardBuf)
	var cmds commandTracker
	for {
		n, err := g.cli.Read(buf)
		if n > 0 {
			if cmds.feed(buf[:n]) {
				g.window.Store(0)
				if !cmds.tls {
					g.plainCmds.Add(1)
				}
			}
			if _, werr := g.srv.Write(buf[:n]); werr != nil {
				g.shut()
				return
			}
		}
		if err != nil {
			closeWrite(g.srv)
			return
		}
	}
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok && tc.CloseWrite() == nil {
		return
	}
	c.Close()
}

// shut closes every socket of the guard (its goroutines then end).
func (g *guard) shut() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.closed = true
	cli := g.cli
	g.mu.Unlock()
	g.ln.Close()
	g.srv.Close()
	if cli != nil {
		cli.Close()
	}
}

// close shuts the guard and waits for its goroutines. Safe to call more
// than once, from any goroutine but the guard's own, and on nil.
func (g *guard) close() {
	if g == nil {
		return
	}
	g.shut()
	g.wg.Wait()
}

// err is the error that explains a failed control connection when the
// guard cut it, else nil.
func (g *guard) err() error {
	if g == nil || !g.tripped.Load() {
		return nil
	}
	return &Error{Class: Transient, Err: errReplyTooLong,
		Msg: fmt.Sprintf("the server sent more than %d KiB without ending its reply (an endless line or multi-line reply: a broken server, or someone on the path); connection cut; will retry", g.limit>>10)}
}

var errReplyTooLong = errors.New("control reply over the limit")

// commandTracker tells our commands in the client's byte stream (see
// guard). It switches to TLS records at a 0x16 byte (TLS handshake) at the
// start of a line: FTP commands are text.
type commandTracker struct {
	tls     bool
	midLine bool
	hdr     [5]byte
	hn      int // header bytes seen
	body    int // body bytes of the current record still to skip
}

// feed reports whether p holds (part of) a command.
func (t *commandTracker) feed(p []byte) (cmd bool) {
	for len(p) > 0 {
		if !t.tls {
			if !t.midLine && p[0] == 0x16 {
				t.tls = true
				continue
			}
			cmd = true
			t.midLine = p[0] != '\n'
			p = p[1:]
			continue
		}
		if t.body > 0 {
			k := min(t.body, len(p))
			t.body -= k
			p = p[k:]
			continue
		}
		k := copy(t.hdr[t.hn:], p)
		t.hn += k
		p = p[k:]
		if t.hn < len(t.hdr) {
			break
		}
		t.hn = 0
		t.body = int(t.hdr[3])<<8 | int(t.hdr[4])
		switch typ := t.hdr[0]; {
		case typ == 22: // handshake: our flight; the server's answer follows
			cmd = true
		case typ == 23 && t.body >= minCommandRecord:
			cmd = true
		}
	}
	return cmd
}
