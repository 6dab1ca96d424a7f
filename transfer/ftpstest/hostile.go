package ftpstest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
)

// HostileMode is what a Hostile server does wrong. Each mode floods one
// reply; everything before it is answered as a well-behaved server would.
type HostileMode int

const (
	// EndlessGreeting: "220 " and then bytes without a newline.
	EndlessGreeting HostileMode = iota
	// EndlessGreetingLines: a multi-line greeting, "220-..." lines that
	// never reach the final "220 " line.
	EndlessGreetingLines
	// EndlessUserLine: after AUTH TLS (a valid certificate), the reply to
	// USER is one line without a newline.
	EndlessUserLine
	// EndlessFeat: after AUTH TLS and the login, the reply to FEAT is
	// "211-" followed by feature lines that never end.
	EndlessFeat
	// EndlessType: FEAT is answered; the reply to TYPE is "200-" lines
	// that never end.
	EndlessType
)

func (m HostileMode) String() string {
	switch m {
	case EndlessGreeting:
		return "endless-greeting-line"
	case EndlessGreetingLines:
		return "endless-greeting-lines"
	case EndlessUserLine:
		return "endless-line-after-tls"
	case EndlessFeat:
		return "endless-feat-after-tls"
	case EndlessType:
		return "endless-type-reply"
	}
	return fmt.Sprintf("HostileMode(%d)", int(m))
}

// HostileOptions configure StartHostile.
type HostileOptions struct {
	Mode HostileMode
	// Flood is how many bytes of the endless reply are sent before the
	// server closes the connection; 0: until the client goes away.
	Flood int64
	// MaxTLS12 refuses TLS 1.3.
	MaxTLS12 bool
}

// Hostile is a raw FTPS server on 127.0.0.1 that floods one reply (see
// HostileMode), for tests that bound what a client reads. It accepts any
// user and password and holds an ECDSA certificate (quick to make in a
// child process) for "localhost" and 127.0.0.1 signed by CAPEM.
type Hostile struct {
	Addr       string
	Host       string
	Port       int
	CAPEM      []byte
	ServerName string

	opts HostileOptions
	cfg  *tls.Config
	ln   net.Listener
	sent atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
	wg     sync.WaitGroup
}

// StartHostile runs a Hostile server; Close stops it.
func StartHostile(o HostileOptions) (*Hostile, error) {
	ca, err := NewCA(true)
	if err != nil {
		return nil, err
	}
	cert, err := ca.IssueCert(CertOptions{ECDSA: true})
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS12}
	if o.MaxTLS12 {
		cfg.MaxVersion = tls.VersionTLS12
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ftpstest: listen: %w", err)
	}
	h := &Hostile{Addr: ln.Addr().String(), Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port,
		CAPEM: ca.PEM, ServerName: "localhost", opts: o, cfg: cfg, ln: ln, conns: map[net.Conn]bool{}}
	h.wg.Go(h.acceptLoop)
	return h, nil
}

// Sent is the number of flood bytes written to clients so far (accepted by
// the kernel; a client that cut the connection did not read them all).
func (h *Hostile) Sent() int64 { return h.sent.Load() }

// Close stops the server and cuts every connection.
func (h *Hostile) Close() error {
	h.mu.Lock()
	h.closed = true
	for c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	err := h.ln.Close()
	h.wg.Wait()
	return err
}

func (h *Hostile) acceptLoop() {
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			c.Close()
			return
		}
		h.conns[c] = true
		h.mu.Unlock()
		h.wg.Go(func() {
			defer func() {
				h.mu.Lock()
				delete(h.conns, c)
				h.mu.Unlock()
				c.Close()
			}()
			h.serve(c)
		})
	}
}

func (h *Hostile) serve(c net.Conn) {
	switch h.opts.Mode {
	case EndlessGreeting:
		h.flood(c, "220 ", "")
		return
	case EndlessGreetingLines:
		h.flood(c, "220-ftpstest hostile greeting\r\n", "220-one more line of the greeting, and more to come\r\n")
		return
	}
	if _, err := io.WriteString(c, "220 ftpstest hostile\r\n"); err != nil {
		return
	}
	r := bufio.NewReader(io.LimitReader(c, 4096))
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(strings.ToUpper(line), "AUTH TLS") {
		_, _ = io.WriteString(c, "530 AUTH TLS first\r\n") // the connection ends either way
		return
	}
	if _, err := io.WriteString(c, "234 AUTH TLS OK\r\n"); err != nil {
		return
	}
	tc := tls.Server(c, h.cfg)
	if err := tc.Handshake(); err != nil {
		return
	}
	h.commands(tc)
}

// commands answers the client over TLS until the flood.
func (h *Hostile) commands(tc *tls.Conn) {
	r := bufio.NewReader(tc)
	for {
		line, err := readLine(r)
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.ToUpper(line), " ")
		var reply string
		switch verb {
		case "USER":
			if h.opts.Mode == EndlessUserLine {
				h.flood(tc, "331 ", "")
				return
			}
			reply = "331 password please"
		case "PASS":
			reply = "230 logged in"
		case "TYPE":
			if h.opts.Mode == EndlessType {
				h.flood(tc, "200-TYPE\r\n", "200-and one more line\r\n")
				return
			}
			reply = "200 OK"
		case "PBSZ", "PROT", "NOOP":
			reply = "200 OK"
		case "FEAT":
			if h.opts.Mode == EndlessFeat {
				h.flood(tc, "211-Features:\r\n", " XFEATURE with an argument\r\n")
				return
			}
			reply = "211 no features"
		case "QUIT":
			_, _ = io.WriteString(tc, "221 bye\r\n") // the connection ends either way
			return
		default:
			reply = "502 not implemented"
		}
		if _, err := io.WriteString(tc, reply+"\r\n"); err != nil {
			return
		}
	}
}

// readLine reads one command line of at most 4096 bytes.
func readLine(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for b.Len() < 4096 {
		c, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		if c == '\n' {
			return strings.TrimRight(b.String(), "\r"), nil
		}
		b.WriteByte(c)
	}
	return "", errors.New("ftpstest: command line too long")
}

// flood writes head and then unit over and over (or 'x' bytes when unit
// is empty) until Flood bytes were sent or a write fails. The units go out
// in writes of 256 KiB from one buffer filled once per connection (few
// writes: tests measure the client's allocations in the same process, and
// each TLS write may allocate a record buffer).
func (h *Hostile) flood(w io.Writer, head, unit string) {
	if unit == "" {
		unit = "x"
	}
	buf := make([]byte, 0, 256<<10+len(unit))
	for len(buf) < 256<<10 {
		buf = append(buf, unit...)
	}
	var total int64
	for b := []byte(head); ; b = buf {
		if f := h.opts.Flood; f > 0 && total+int64(len(b)) > f {
			b = b[:f-total]
		}
		n, err := w.Write(b)
		total += int64(n)
		h.sent.Add(int64(n))
		if err != nil || h.opts.Flood > 0 && total >= h.opts.Flood {
			return
		}
	}
}
