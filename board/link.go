package board

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// LinkEvent says whether the interface can carry traffic: administratively
// up and with carrier (operstate "up", or "unknown" for drivers that do not
// report it). A missing interface is down.
type LinkEvent struct {
	Iface string
	Up    bool
}

// sysClassNet is the sysfs folder read for the current link state.
var sysClassNet = "/sys/class/net"

// WatchLink follows the link state of iface as kernel events. It subscribes
// to rtnetlink link notifications (RTMGRP_LINK) first, then reads the
// current state from /sys/class/net/<iface>, so no change between the two
// is lost. The first event is the current state; later events are sent only
// when the state changes. The channel is closed when ctx is done or the
// socket fails. There is no polling: the goroutine sleeps in recvfrom.
//
// Opening a netlink socket needs no privilege; it fails only where the
// kernel has no rtnetlink (a seccomp or namespace sandbox), and the error
// says so.
func WatchLink(ctx context.Context, iface string) (<-chan LinkEvent, error) {
	if iface == "" || len(iface) >= unix.IFNAMSIZ || strings.ContainsAny(iface, "/ \t\n") {
		return nil, fmt.Errorf("board: bad interface name %q: set a kernel interface name such as wlan0 or eth0", iface)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("board: open rtnetlink socket to follow %s: %w (is the process in a sandbox without netlink?)", iface, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("board: subscribe to link events for %s: %w", iface, err)
	}
	// A larger buffer makes ENOBUFS (lost events) rarer on busy systems;
	// when it happens anyway the state is read again from sysfs.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	f := os.NewFile(uintptr(fd), "rtnetlink")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("board: link events for %s: %w", iface, err)
	}

	ch := make(chan LinkEvent, 1)
	stop := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		f.Close() // wakes the reader
	}()
	go func() {
		defer close(ch)
		defer close(stop)
		last := LinkEvent{Iface: iface, Up: sysfsLinkUp(iface)}
		if !send(ctx, ch, last) {
			return
		}
		buf := make([]byte, 64<<10)
		for {
			var n int
			var rerr error
			err := rc.Read(func(fd uintptr) bool {
				n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
				return rerr != unix.EAGAIN && rerr != unix.EINTR
			})
			if err == nil {
				err = rerr
			}
			var up bool
			switch {
			case errors.Is(err, unix.ENOBUFS):
				// The kernel dropped events: the current state is the truth.
				up = sysfsLinkUp(iface)
			case err != nil:
				return // closed by ctx, or the socket failed
			default:
				seen := false
				for _, m := range parseLinkMessages(buf[:n]) {
					if m.Name == iface {
						up, seen = m.Up, true
					}
				}
				if !seen {
					continue
				}
			}
			if up != last.Up {
				last.Up = up
				if !send(ctx, ch, last) {
					return
				}
			}
		}
	}()
	return ch, nil
}

func send[T any](ctx context.Context, ch chan<- T, v T) bool {
	select {
	case ch <- v:
		return true
	case <-ctx.Done():
		return false
	}
}

// sysfsLinkUp reads the link state the way the netlink flags report it:
// carrier 1 (the file cannot be read while the interface is down) and an
// operstate of up or unknown.
func sysfsLinkUp(iface string) bool {
	dir := sysClassNet + "/" + iface + "/"
	carrier, err := os.ReadFile(dir + "carrier")
	if err != nil || strings.TrimSpace(string(carrier)) != "1" {
		return false
	}
	op, err := os.ReadFile(dir + "operstate")
	if err != nil {
		return false
	}
	s := strings.TrimSpace(string(op))
	return s == "up" || s == "unknown"
}

// linkMsg is what WatchLink needs from one RTM_NEWLINK/RTM_DELLINK message.
type linkMsg struct {
	Name  string
	Index int32
	Up    bool
}

// parseLinkMessages decodes a datagram of rtnetlink messages. It never
// panics on short or malformed input: what cannot be decoded is dropped.
func parseLinkMessages(b []byte) []linkMsg {
	var out []linkMsg
	ne := binary.NativeEndian
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(ne.Uint32(b[0:4]))
		typ := ne.Uint16(b[4:6])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			break
		}
		msg := b[unix.NLMSG_HDRLEN:l]
		if (typ == unix.RTM_NEWLINK || typ == unix.RTM_DELLINK) && len(msg) >= unix.SizeofIfInfomsg {
			m := linkMsg{Index: int32(ne.Uint32(msg[4:8]))}
			flags := ne.Uint32(msg[8:12])
			m.Up = typ == unix.RTM_NEWLINK && flags&unix.IFF_UP != 0 && flags&unix.IFF_RUNNING != 0
			attrs := msg[unix.SizeofIfInfomsg:]
			for len(attrs) >= unix.SizeofRtAttr {
				al := int(ne.Uint16(attrs[0:2]))
				at := ne.Uint16(attrs[2:4])
				if al < unix.SizeofRtAttr || al > len(attrs) {
					break
				}
				if at == unix.IFLA_IFNAME {
					m.Name = strings.TrimRight(string(attrs[unix.SizeofRtAttr:al]), "\x00")
				}
				adv := (al + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
				if adv > len(attrs) {
					break
				}
				attrs = attrs[adv:]
			}
			if m.Name != "" {
				out = append(out, m)
			}
		}
		adv := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if adv > len(b) {
			break
		}
		b = b[adv:]
	}
	return out
}
