package tlspolicy

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// The suites crypto/tls does not implement cannot be negotiated, but a
// server can still be asked whether it would pick one: helloProbe sends a
// hand-written TLS 1.2 ClientHello offering one suite and reads the
// server's first record. It never completes a handshake and sends no data.

// helloResult is what a server answered to a one-suite ClientHello.
type helloResult int

const (
	helloRefused  helloResult = iota // alert or close
	helloAccepted                    // ServerHello choosing the suite
	helloUnclear                     // anything else
)

// clientHello builds a TLS 1.2 ClientHello record offering suite (plus the
// renegotiation SCSV), with SNI for a host name and the extensions ECDHE
// and modern signatures need.
func clientHello(serverName string, suite uint16) []byte {
	var ext helloExts
	ext.addSNI(serverName)
	ext.add(0x000a, []byte{0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18}) // x25519, P-256, P-384
	ext.add(0x000b, []byte{1, 0})                                     // uncompressed points
	sigs := []uint16{0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0403, 0x0503, 0x0603, 0x0201, 0x0203}
	var sa []byte
	sa = binary.BigEndian.AppendUint16(sa, uint16(2*len(sigs)))
	for _, s := range sigs {
		sa = binary.BigEndian.AppendUint16(sa, s)
	}
	ext.add(0x000d, sa)
	ext.add(0x0017, nil) // extended master secret

	var body []byte
	body = append(body, 0x03, 0x03)
	random := make([]byte, 32)
	rand.Read(random)
	body = append(body, random...)
	body = append(body, 0)                                             // no session id
	body = append(body, 0, 4, byte(suite>>8), byte(suite), 0x00, 0xff) // suite + SCSV
	body = append(body, 1, 0)                                          // null compression
	return helloRecord(body, ext)
}

// helloExts is a ClientHello's extension block, built by add.
type helloExts []byte

func (e *helloExts) add(typ uint16, body []byte) {
	*e = binary.BigEndian.AppendUint16(*e, typ)
	*e = binary.BigEndian.AppendUint16(*e, uint16(len(body)))
	*e = append(*e, body...)
}

// addSNI adds server_name for a host name (not for an IP address, which
// SNI does not carry).
func (e *helloExts) addSNI(serverName string) {
	if serverName == "" || net.ParseIP(serverName) != nil || len(serverName) >= 256 {
		return
	}
	sni := binary.BigEndian.AppendUint16(nil, uint16(len(serverName)+3))
	sni = append(sni, 0)
	sni = binary.BigEndian.AppendUint16(sni, uint16(len(serverName)))
	e.add(0x0000, append(sni, serverName...))
}

// helloRecord is the TLS record of a ClientHello: body (version to
// compression methods) and the extensions, in a handshake message.
func helloRecord(body []byte, ext helloExts) []byte {
	body = binary.BigEndian.AppendUint16(body, uint16(len(ext)))
	body = append(body, ext...)
	hs := append([]byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
	rec := binary.BigEndian.AppendUint16([]byte{0x16, 0x03, 0x01}, uint16(len(hs)))
	return append(rec, hs...)
}

// parseServerHello reads the server's first record and says whether it is
// a ServerHello choosing want.
func parseServerHello(r io.Reader, want uint16) (helloResult, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return helloRefused, nil // closed: refused
	}
	n := int(binary.BigEndian.Uint16(h[3:]))
	if n > 1<<14+2048 {
		return helloUnclear, fmt.Errorf("record of %d bytes", n)
	}
	rec := make([]byte, n)
	if _, err := io.ReadFull(r, rec); err != nil {
		return helloUnclear, err
	}
	switch h[0] {
	case 0x15:
		return helloRefused, nil
	case 0x16:
	default:
		return helloUnclear, fmt.Errorf("record type %d", h[0])
	}
	// handshake: type(1) len(3) version(2) random(32) sid_len(1) sid suite(2)
	if len(rec) < 4+2+32+1 || rec[0] != 2 {
		return helloUnclear, fmt.Errorf("not a ServerHello")
	}
	sidLen := int(rec[38])
	if len(rec) < 39+sidLen+2 {
		return helloUnclear, fmt.Errorf("short ServerHello")
	}
	got := binary.BigEndian.Uint16(rec[39+sidLen:])
	if got == want {
		return helloAccepted, nil
	}
	return helloUnclear, fmt.Errorf("server chose 0x%04x", got)
}

// helloProbe asks the server at addr (after AUTH TLS) whether it would
// negotiate suite in TLS 1.2. Its FTP part is dialFTP, the one FTPES client
// of Check, Probe and HandshakeError; only what follows AUTH TLS is its
// own: crypto/tls cannot offer a suite it does not implement, so the
// ClientHello is written by hand and the ServerHello read raw.
func helloProbe(ctx context.Context, addr, serverName string, suite uint16, timeout time.Duration) (helloResult, error) {
	s, err := dialFTP(ctx, addr, timeout)
	if err != nil {
		return helloUnclear, err
	}
	defer s.stop()
	defer s.raw.Close()
	if err := s.deadline(); err != nil {
		return helloUnclear, s.wrap("ClientHello", err)
	}
	if _, err := s.raw.Write(clientHello(serverName, suite)); err != nil {
		return helloUnclear, s.wrap("ClientHello", err)
	}
	res, err := parseServerHello(s.raw, suite)
	// Abort politely: a fatal user_canceled alert, in the clear. Best
	// effort: the connection is closed next, and the answer is known.
	_, _ = s.raw.Write([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 90})
	return res, err
}
