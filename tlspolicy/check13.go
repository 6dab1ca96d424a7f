package tlspolicy

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// crypto/tls offers all three TLS 1.3 suites and lets the server choose,
// in an order that depends on the CPU (ChaCha20 first without AES
// hardware, as on armv7). Check asks the server, with hand-written TLS 1.3
// ClientHellos, which suites it accepts and which it picks in either
// order: a server that follows the client's order gives ChaCha20 to
// devices without AES hardware.

// clientHello13 builds a TLS 1.3 ClientHello record offering suites in
// that order, with an X25519 key share (a real key: the server computes
// the shared secret before it answers).
func clientHello13(serverName string, suites []uint16) ([]byte, error) {
	key, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	var ext helloExts
	ext.addSNI(serverName)
	ext.add(0x000a, []byte{0, 4, 0x00, 0x1d, 0x00, 0x17})                                      // x25519, P-256
	ext.add(0x000d, []byte{0, 10, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x03, 0x05, 0x03}) // RSA-PSS, ECDSA
	ext.add(0x002b, []byte{2, 0x03, 0x04})                                                     // supported_versions: TLS 1.3
	ext.add(0x002d, []byte{1, 1})                                                              // psk_dhe_ke
	ks := append(binary.BigEndian.AppendUint16(nil, 36), 0x00, 0x1d, 0, 32)                    // one x25519 share
	ext.add(0x0033, append(ks, key.PublicKey().Bytes()...))

	body := []byte{0x03, 0x03}
	body = append(body, make([]byte, 32+1+32)...) // random, session id length, session id
	if _, err := rand.Read(body[2:34]); err != nil {
		return nil, err
	}
	body[34] = 32
	body = binary.BigEndian.AppendUint16(body, uint16(2*len(suites)))
	for _, s := range suites {
		body = binary.BigEndian.AppendUint16(body, s)
	}
	body = append(body, 1, 0) // null compression
	return helloRecord(body, ext), nil
}

// serverHello13 reads the server's first record: the suite of a TLS 1.3
// ServerHello (or HelloRetryRequest), helloRefused for an alert or a
// close, helloUnclear with an error for anything else.
func serverHello13(r io.Reader) (uint16, helloResult, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, helloRefused, nil
	}
	n := int(binary.BigEndian.Uint16(h[3:]))
	if n > 1<<14+2048 {
		return 0, helloUnclear, fmt.Errorf("record of %d bytes", n)
	}
	rec := make([]byte, n)
	if _, err := io.ReadFull(r, rec); err != nil {
		return 0, helloUnclear, err
	}
	if h[0] == 0x15 {
		return 0, helloRefused, nil
	}
	if h[0] != 0x16 || len(rec) < 39 || rec[0] != 2 {
		return 0, helloUnclear, errors.New("not a ServerHello")
	}
	p := 39 + int(rec[38]) // after the session id
	if len(rec) < p+5 {
		return 0, helloUnclear, errors.New("short ServerHello")
	}
	suite := binary.BigEndian.Uint16(rec[p:])
	for e := rec[p+5:]; len(e) >= 4; {
		typ, l := binary.BigEndian.Uint16(e), int(binary.BigEndian.Uint16(e[2:]))
		if len(e) < 4+l {
			break
		}
		if typ == 0x002b && l == 2 && binary.BigEndian.Uint16(e[4:]) == tls.VersionTLS13 {
			return suite, helloAccepted, nil
		}
		e = e[4+l:]
	}
	return 0, helloUnclear, errors.New("the server answered without TLS 1.3")
}

// hello13Probe sends one TLS 1.3 ClientHello offering suites (after AUTH
// TLS) and returns the suite the server chose.
func hello13Probe(ctx context.Context, addr, serverName string, suites []uint16, timeout time.Duration) (uint16, helloResult, error) {
	hello, err := clientHello13(serverName, suites)
	if err != nil {
		return 0, helloUnclear, err
	}
	s, err := dialFTP(ctx, addr, timeout)
	if err != nil {
		return 0, helloUnclear, err
	}
	defer s.stop()
	defer s.raw.Close()
	if err := s.deadline(); err != nil {
		return 0, helloUnclear, s.wrap("ClientHello", err)
	}
	if _, err := s.raw.Write(hello); err != nil {
		return 0, helloUnclear, s.wrap("ClientHello", err)
	}
	suite, res, err := serverHello13(s.raw)
	_, _ = s.raw.Write([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 90}) // user_canceled; best effort, as in helloProbe
	return suite, res, err
}

// probeTLS13 prints the TLS 1.3 table (each suite offered alone, with its
// class) and which suite the server picks when AES-GCM or ChaCha20 is
// offered first. Time running out and cancellation are handled as in
// probeUsable.
func (c *checkRun) probeTLS13() error {
	if c.p.maxVersion < tls.VersionTLS13 {
		fmt.Fprintf(c.w, "\nTLS 1.3 suites: not probed (this policy is capped at TLS 1.2)\n")
		return nil
	}
	fmt.Fprintf(c.w, "\nTLS 1.3 suites (crypto/tls offers all three; the server chooses), each offered alone:\n")
	tw := tabwriter.NewWriter(c.w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  SUITE\tCLASS\tSERVER\n")
	for _, su := range tls13 {
		word := notProbed
		if ctxErr(c.ctx) == nil {
			got, res, err := hello13Probe(c.ctx, c.addr, c.p.serverName, []uint16{su.ID}, c.timeout)
			word = helloWord(res, err)
			if res == helloAccepted && got == su.ID {
				word = "accepted"
			}
		}
		if errors.Is(ctxErr(c.ctx), context.Canceled) {
			tw.Flush()
			return ctxErr(c.ctx)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", su.Name, su.Class, word)
	}
	tw.Flush()
	var picks []string
	for _, o := range []struct {
		what   string
		suites []uint16
	}{
		{"AES-GCM first (CPUs with AES instructions)", []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256}},
		{"ChaCha20 first (no AES instructions: armv7)", []uint16{tls.TLS_CHACHA20_POLY1305_SHA256, tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384}},
	} {
		word := notProbed
		if ctxErr(c.ctx) == nil {
			got, res, err := hello13Probe(c.ctx, c.addr, c.p.serverName, o.suites, c.timeout)
			word = helloWord(res, err)
			if res == helloAccepted {
				s, _ := Lookup(got)
				word = s.Name + " (" + s.Class.String() + ")"
			}
		}
		picks = append(picks, o.what+": "+word)
	}
	fmt.Fprintf(c.w, "TLS 1.3 choice: %s\n", strings.Join(picks, "; "))
	if o := TLS13Order(); len(o) > 0 {
		fmt.Fprintf(c.w, "this device offers TLS 1.3 suites in the order %s\n", suiteNames(o))
	}
	return nil
}
