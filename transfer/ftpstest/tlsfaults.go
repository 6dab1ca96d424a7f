package ftpstest

import (
	"io"
	"time"
)

// HandshakeFault is what the server does instead of the control
// connection's TLS handshake after answering AUTH TLS with 234 (see
// Faults.HandshakeFault and Faults.HandshakeFaults).
type HandshakeFault int

const (
	// NoHandshakeFault: the handshake runs normally.
	NoHandshakeFault HandshakeFault = iota
	// AlertInternalError: the server reads the ClientHello and answers
	// with a fatal internal_error alert (what a glitching server or someone
	// on the path sends), then closes the connection.
	AlertInternalError
	// CloseMidHandshake: the server reads the ClientHello and closes the
	// connection without a word (a reset or EOF mid-handshake).
	CloseMidHandshake
)

// takeHandshakeFault returns the fault for this handshake and counts it
// down: HandshakeFaults > 0 faults that many handshakes, then the server
// behaves.
func (s *Server) takeHandshakeFault() HandshakeFault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.HandshakeFault == NoHandshakeFault || s.faults.HandshakeFaults <= 0 {
		return NoHandshakeFault
	}
	s.faults.HandshakeFaults--
	s.stats.HandshakeFaults++
	return s.faults.HandshakeFault
}

// failHandshake does fault f on the raw connection in place of the TLS
// handshake; the caller closes the connection after it.
func (x *session) failHandshake(f HandshakeFault) {
	_ = x.raw.SetDeadline(time.Now().Add(10 * time.Second))
	// The ClientHello: a record header, then its length.
	var hdr [5]byte
	if _, err := io.ReadFull(x.raw, hdr[:]); err != nil {
		return
	}
	n := int64(hdr[3])<<8 | int64(hdr[4])
	if _, err := io.CopyN(io.Discard, x.raw, n); err != nil {
		return
	}
	if f == AlertInternalError {
		// An alert record, TLS 1.2 record version: level fatal (2),
		// description internal_error (80).
		if _, err := x.raw.Write([]byte{21, 3, 3, 0, 2, 2, 80}); err != nil {
			x.s.log.Debug("ftpstest: writing the alert", "err", err)
		}
	}
}
