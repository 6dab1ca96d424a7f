// Package wallclock holds the one threshold by which camftpd judges whether
// the device's wall clock has been set: board waits for it at boot, and
// tlspolicy does not judge certificates against a clock before it. It
// imports nothing, so that both may import it.
package wallclock

import "time"

// SaneAfter is the earliest time camftpd believes. A camera that booted
// without a battery-backed clock starts in 1970 (or at its build date);
// certificates judged then are "not yet valid", so the daemon waits for the
// clock (board.WaitClock) and tlspolicy reports such a clock as a clock
// problem, not a certificate one.
var SaneAfter = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Sane reports whether t can be the real time: after SaneAfter.
func Sane(t time.Time) bool { return t.After(SaneAfter) }
