package tlspolicy

import (
	"crypto/x509"
	"fmt"
	"time"
)

// DefaultCertWarnDays is how many days before its expiry a server
// certificate is a warning when Options.CertWarnDays is 0.
const DefaultCertWarnDays = 30

// ExpiryClass is what a certificate's validity dates say at a given time.
type ExpiryClass int

const (
	ExpiryOK          ExpiryClass = iota // valid, and for longer than the warning period
	ExpiryWarn                           // valid, but expires within the warning period
	ExpiryExpired                        // past its NotAfter: an error, pinned or not
	ExpiryNotYetValid                    // before its NotBefore: an error (or a clock to set)
)

func (c ExpiryClass) String() string {
	switch c {
	case ExpiryOK:
		return "ok"
	case ExpiryWarn:
		return "warn"
	case ExpiryExpired:
		return "expired"
	}
	return "not yet valid"
}

// Expiry is a certificate's validity judged at one time.
type Expiry struct {
	Class     ExpiryClass
	NotBefore time.Time
	NotAfter  time.Time
	// DaysLeft is the number of whole days until NotAfter (negative once
	// expired: -1 on the day after).
	DaysLeft int
	// Msg says what is wrong and what to do; empty for ExpiryOK.
	Msg string
}

// CertExpiry judges c's validity at now with a warning period of warnDays
// (0 or less: no warning, only expired and not yet valid). It is what the
// policy logs and reports (Negotiated.CertWarning) and what `camftpd
// check` and `camftpd trust` show.
func CertExpiry(c *x509.Certificate, now time.Time, warnDays int) Expiry {
	left := c.NotAfter.Sub(now)
	days := int(left / (24 * time.Hour))
	if left < 0 {
		days = -int((-left + 24*time.Hour - 1) / (24 * time.Hour))
	}
	e := Expiry{NotBefore: c.NotBefore, NotAfter: c.NotAfter, DaysLeft: days}
	subj := printable(c.Subject.String())
	switch {
	case now.After(c.NotAfter):
		e.Class = ExpiryExpired
		e.Msg = fmt.Sprintf("certificate %q expired on %s: renew it on the server (an expired certificate is refused, pinned or not)", subj, stamp(c.NotAfter))
	case now.Before(c.NotBefore):
		e.Class = ExpiryNotYetValid
		e.Msg = fmt.Sprintf("certificate %q is not valid before %s (device clock %s): fix the device clock or the certificate's start date", subj, stamp(c.NotBefore), stamp(now))
	case warnDays > 0 && left < time.Duration(warnDays)*24*time.Hour:
		e.Class = ExpiryWarn
		in := fmt.Sprintf("in %d day(s)", days)
		if days == 0 {
			in = "within a day"
		}
		e.Msg = fmt.Sprintf("certificate %q expires on %s, %s (cert_warn_days %d): renew it on the server; if it is pinned (camftpd trust), trust the new one after the renewal", subj, stamp(c.NotAfter), in, warnDays)
	}
	return e
}
