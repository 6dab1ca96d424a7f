package tlspolicy

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

var (
	orderOnce sync.Once
	order     []uint16
)

// TLS13Order returns the TLS 1.3 suites this device's crypto/tls offers,
// in its order of preference: AES-GCM first on CPUs with AES instructions,
// ChaCha20 first without (always on GOARCH=arm). crypto/tls does not say;
// it is read, once, from a ClientHello crypto/tls writes into a pipe (the
// TLS wire format, RFC 8446). Nil if that fails.
func TLS13Order() []uint16 {
	orderOnce.Do(func() { order = measureTLS13Order() })
	return slices.Clone(order)
}

// ChaChaFirst reports whether this device offers ChaCha20 first in TLS 1.3.
func ChaChaFirst() bool {
	o := TLS13Order()
	return len(o) > 0 && o[0] == tls.TLS_CHACHA20_POLY1305_SHA256
}

func measureTLS13Order() []uint16 {
	cc, sc := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := tls.Client(cc, &tls.Config{ServerName: "order.invalid", MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}) //nolint:gosec // never completes: only its ClientHello is read
		// Fails when the pipe closes, after the ClientHello was read.
		_ = c.Handshake()
	}()
	defer func() { sc.Close(); cc.Close(); <-done }()
	_ = sc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var h [5]byte
	if _, err := io.ReadFull(sc, h[:]); err != nil || h[0] != 0x16 {
		return nil
	}
	rec := make([]byte, binary.BigEndian.Uint16(h[3:]))
	if _, err := io.ReadFull(sc, rec); err != nil || len(rec) < 39 || rec[0] != 1 {
		return nil
	}
	p := 39 + int(rec[38]) // type, length, version, random, then the session id
	if len(rec) < p+2 {
		return nil
	}
	n := int(binary.BigEndian.Uint16(rec[p:]))
	if len(rec) < p+2+n {
		return nil
	}
	var out []uint16
	for i := p + 2; i+1 < p+2+n; i += 2 {
		if id := binary.BigEndian.Uint16(rec[i:]); isTLS13(id) {
			out = append(out, id)
		}
	}
	return out
}
