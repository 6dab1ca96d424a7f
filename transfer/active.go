package transfer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"
)

// Active mode (Config.Active): for each data connection the session
// listens on the control connection's local address, announces it with
// EPRT (PORT once the server refused EPRT), and accepts the server's
// connection while the STOR or RETR that asked for it is answered. The
// rest is as in passive mode: the data connection's TLS handshake
// (session.handshake, we are its client), bulk mode, the limiter and the
// chunk buffers do not know which side connected.

// errNoConnectBack: in active mode the server did not connect to us
// within Timeout.
var errNoConnectBack = errors.New("the server did not connect back")

// checkOptions validates the data connection options.
func (c *Client) checkOptions() *Error {
	lo, hi := c.cfg.ActivePorts[0], c.cfg.ActivePorts[1]
	if lo == 0 && hi == 0 {
		return nil
	}
	if lo < 1024 || hi > 65535 || lo > hi {
		return &Error{Class: Permanent, Op: "config", Msg: fmt.Sprintf("active ports %d-%d: give a range within 1024-65535, first not above last", lo, hi)}
	}
	return nil
}

// localIP is the local address of the control connection to addr (the
// guard's socket to the server; without a guard, the address the kernel
// would route from): the address the server can reach us on.
func localIP(g *guard, addr string) (net.IP, error) {
	if g != nil {
		if a, ok := g.srv.LocalAddr().(*net.TCPAddr); ok {
			return a.IP, nil
		}
	}
	// A UDP "connect" sends nothing; it only picks the route's source.
	u, err := net.Dial("udp", addr)
	if err != nil {
		return nil, &Error{Class: Transient, Op: "active mode", Msg: "cannot tell the local address for active mode (" + oneLine(err.Error()) + "); will retry", Err: err}
	}
	defer u.Close()
	return u.LocalAddr().(*net.UDPAddr).IP, nil
}

// listenActive listens for the server's data connection on s.local, on a
// port of Config.ActivePorts when set.
func (s *session) listenActive() (*net.TCPListener, error) {
	lo, hi := s.c.cfg.ActivePorts[0], s.c.cfg.ActivePorts[1]
	if lo == 0 {
		ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: s.local})
		if err != nil {
			return nil, &Error{Class: Transient, Op: "active mode", Msg: fmt.Sprintf("cannot listen on %s for the data connection (%s); will retry", s.local, oneLine(err.Error())), Err: err}
		}
		return ln, nil
	}
	n := hi - lo + 1
	first := rand.IntN(n) // a port a closed connection left in TIME_WAIT is not tried first
	var err error
	for i := range n {
		var ln *net.TCPListener
		ln, err = net.ListenTCP("tcp", &net.TCPAddr{IP: s.local, Port: lo + (first+i)%n})
		if err == nil {
			return ln, nil
		}
	}
	return nil, &Error{Class: Transient, Op: "active mode", Err: err,
		Msg: fmt.Sprintf("no free port in active_ports %d-%d on %s (%s): widen the range; will retry", lo, hi, s.local, oneLine(err.Error()))}
}

// announce tells the server where to connect: EPRT, or PORT (IPv4 only)
// once the server refused EPRT.
func (s *session) announce(a *net.TCPAddr) error {
	if !s.eprtOff {
		af := "1"
		if a.IP.To4() == nil {
			af = "2"
		}
		code, msg, err := s.cmd(fmt.Sprintf("EPRT |%s|%s|%d|", af, a.IP, a.Port))
		if err != nil {
			return err
		}
		switch {
		case code/100 == 2:
			return nil
		case code/100 != 5: // 4xx: try again later, as for any command
			return &replyError{code: code, msg: msg}
		}
		// Unknown (500, 502) or refused (ProFTPD's <Limit EPRT>: 550):
		// PORT, which every server has.
		s.eprtOff = true
		s.c.log.Info("server refused EPRT: announcing data connections with PORT", "reply", oneLine(strconv.Itoa(code)+" "+msg))
	}
	ip4 := a.IP.To4()
	if ip4 == nil {
		return &Error{Class: Permanent, Op: "PORT", Msg: "the server has no EPRT and PORT cannot carry the IPv6 address " + a.IP.String() + ": use passive mode (passive = true)"}
	}
	_, err := s.expect(fmt.Sprintf("PORT %d,%d,%d,%d,%d,%d", ip4[0], ip4[1], ip4[2], ip4[3], a.Port>>8, a.Port&0xff), 2)
	return err
}

// openActive listens and announces the listener; the server connects
// once it got STOR or RETR (acceptData, run by handshake).
func (s *session) openActive() (*dataConn, error) {
	ln, err := s.listenActive()
	if err != nil {
		return nil, err
	}
	if !s.setData(ln) {
		ln.Close()
		return nil, context.Canceled
	}
	if err := s.announce(ln.Addr().(*net.TCPAddr)); err != nil {
		ln.Close()
		s.setData(nil)
		return nil, err
	}
	return &dataConn{ln: ln}, nil
}

// acceptData takes the server's data connection, within Timeout; when
// ctx ends, Upload's abort closes the listener (session.kill). A
// connection from another address is closed unread: in plain FTP it could
// otherwise feed or take the file.
func (s *session) acceptData(ctx context.Context, dc *dataConn) error {
	if err := dc.ln.SetDeadline(time.Now().Add(s.c.cfg.Timeout)); err != nil {
		return err
	}
	server := net.ParseIP(s.ip)
	for {
		c, err := dc.ln.AcceptTCP()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return errNoConnectBack
			}
			return err
		}
		if ra, ok := c.RemoteAddr().(*net.TCPAddr); !ok || !ra.IP.Equal(server) {
			s.c.log.Warn("active mode: refused a data connection from another address than the server's", "from", c.RemoteAddr().String(), "server", s.ip)
			c.Close()
			continue
		}
		dc.ln.Close()
		if !dc.set(c) || !s.setData(c) {
			c.Close()
			return context.Canceled
		}
		return nil
	}
}

// noConnectBackErr explains errNoConnectBack, with the server's reply
// to the transfer command when it sent one (it is read here, which keeps
// the control connection in step).
func (s *session) noConnectBackErr(op string) error {
	said := ""
	if code, msg, err := s.readReply(); err == nil {
		said = " (server said: " + strconv.Itoa(code) + " " + oneLine(strings.TrimSpace(msg)) + ")"
	}
	return &Error{Class: Transient, Op: op, Err: errNoConnectBack,
		Msg: fmt.Sprintf("active mode: the server did not connect back to %s within %s%s: a firewall or NAT between camera and server blocks it; open the port range (active_ports) or use passive mode (passive = true); will retry",
			s.local, s.c.cfg.Timeout, said)}
}
