package daemon

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/camftpd/camftpd/transfer"
)

// The camera's connection options of a [[server]]: secure (FTPES, or
// plain FTP only when set to false) and passive (EPSV/PASV, or active
// mode: EPRT/PORT, on a port of active_ports when set).

// tlsOnlyKeys mean nothing over plain FTP: set together with
// secure = false they are an error, not silently ignored.
var tlsOnlyKeys = []string{"tls_mode", "max_tls12", "ca_files", "pins"}

// connOptions reads secure, passive and active_ports into s.
func (p *cfgParser) connOptions(pre string, t map[string]any, s *Server) {
	k := func(key string) string { return pre + "." + key }
	s.Secure = p.boolean(t, pre, "secure", true)
	if !s.Secure {
		for _, key := range tlsOnlyKeys {
			if _, set := t[key]; set {
				p.add(k(key), key+" is set but secure = false: plain FTP has no TLS (no certificate to check, nothing to pin)",
					"remove "+key+", or set secure = true (FTPES)")
			}
		}
	}
	s.Passive = p.boolean(t, pre, "passive", true)
	ports := p.str(t, pre, "active_ports", "")
	switch {
	case ports == "":
	case s.Passive:
		p.add(k("active_ports"), "active_ports is set but passive = true (the server, not the camera, listens in passive mode)",
			"remove active_ports, or set passive = false")
	default:
		lo, hi, ok := portRange(ports)
		if !ok {
			p.add(k("active_ports"), strconv.Quote(ports)+" is not a port range within 1024-65535",
				`write active_ports = "50000-50099" (first-last, the ports the camera's firewall lets the server connect to)`)
		}
		s.ActivePorts = [2]int{lo, hi}
	}
}

// portRange parses "first-last" within 1024-65535.
func portRange(v string) (lo, hi int, ok bool) {
	a, b, found := strings.Cut(v, "-")
	if !found {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || lo < 1024 || hi > 65535 || lo > hi {
		return 0, 0, false
	}
	return lo, hi, true
}

// Security says how the server is reached, for status and check: FTPES,
// or the plain FTP warning.
func (s Server) Security() string {
	if !s.Secure {
		return transfer.PlainWarning
	}
	return "FTPES (explicit TLS)"
}

// DataMode says how data connections are opened, for status and check.
func (s Server) DataMode() string {
	if s.Passive {
		return "passive (EPSV/PASV)"
	}
	if s.ActivePorts[0] != 0 {
		return "active (EPRT/PORT), ports " + strconv.Itoa(s.ActivePorts[0]) + "-" + strconv.Itoa(s.ActivePorts[1])
	}
	return "active (EPRT/PORT)"
}

// applyConnOptions sets the transfer options of secure and passive: plain
// FTP drops the TLS configuration.
func (s Server) applyConnOptions(tc *transfer.Config) {
	if !s.Secure {
		tc.Plain, tc.TLS = true, nil
	}
	tc.Active = !s.Passive
	tc.ActivePorts = s.ActivePorts
}

// checkConnOptions prints the connection options for `camftpd check`;
// plain says the TLS steps do not apply (secure = false), and is a
// warning on every check, as the camera manual's precaution says.
func checkConnOptions(w io.Writer, s Server) (plain bool) {
	fmt.Fprintf(w, "data:         %s\n", s.DataMode())
	if s.Secure {
		return false
	}
	fmt.Fprintf(w, "security:     WARN: %s: anyone on the network path can read the password and the files; set secure = true and enable FTPES (explicit TLS) on the server\n", transfer.PlainWarning)
	return true
}
