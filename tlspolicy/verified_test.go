package tlspolicy

import (
	"crypto/x509"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestVerifiedChainRemembered: a chain that passed is not built again when
// it comes back (a resumed data connection), but the clock, another chain
// and a failed verification still count.
func TestVerifiedChainRemembered(t *testing.T) {
	ca, other := newTestCA(t, "verified"), newTestCA(t, "other")
	good := ca.issue(t, leafOpts{})
	wrongName := ca.issue(t, leafOpts{dns: []string{"elsewhere.example"}})
	stranger := other.issue(t, leafOpts{})
	var now atomic.Pointer[time.Time]
	setNow := func(at time.Time) { now.Store(&at) }
	setNow(time.Now())
	p, err := New(Options{ServerName: "localhost", CAPEM: [][]byte{ca.pem}, Now: func() time.Time { return *now.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	chain := []*x509.Certificate{good.Leaf}
	if err := p.verifyCert(chain); err != nil {
		t.Fatalf("first verification: %v", err)
	}
	// Remembered: the second look builds no chain (x509's Verify allocates
	// pools, chains and candidates: well over 20 allocations).
	if n := testing.AllocsPerRun(20, func() {
		if err := p.verifyCert(chain); err != nil {
			t.Fatal(err)
		}
	}); n > 2 {
		t.Errorf("verifying the same chain again: %.0f allocations, want it remembered (at most 2)", n)
	}
	// Equal bytes in another parse (a resumed session's certificates) hit too.
	again, err := x509.ParseCertificate(good.Leaf.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.verifyCert([]*x509.Certificate{again}); err != nil {
		t.Errorf("same chain, parsed again: %v", err)
	}
	for _, c := range []struct {
		name  string
		certs []*x509.Certificate
		at    time.Time
		kind  ErrorKind
	}{
		{"another CA", []*x509.Certificate{stranger.Leaf}, time.Now(), KindCertificate},
		{"another name", []*x509.Certificate{wrongName.Leaf}, time.Now(), KindCertificate},
		{"expired since", chain, good.Leaf.NotAfter.Add(time.Hour), KindCertificate},
		{"not valid yet", chain, good.Leaf.NotBefore.Add(-time.Hour), KindCertificate},
		{"clock unset", chain, time.Unix(0, 0), KindClock},
	} {
		setNow(c.at)
		err := p.verifyCert(c.certs)
		var pe *Error
		if !errors.As(err, &pe) || pe.Kind != c.kind {
			t.Errorf("%s: got %v, want a %v error", c.name, err, c.kind)
		}
		setNow(time.Now())
		if err := p.verifyCert(chain); err != nil {
			t.Errorf("after %s: the good chain: %v", c.name, err)
		}
	}
}

// TestVerifiedPinsStillChecked: a chain that failed its pin check is not
// remembered, so it fails every time.
func TestVerifiedPinsStillChecked(t *testing.T) {
	ca := newTestCA(t, "pinned")
	good := ca.issue(t, leafOpts{})
	p, err := New(Options{ServerName: "localhost", CAPEM: [][]byte{ca.pem}, Pins: []string{FormatPin(make([]byte, 32))}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := p.verifyCert([]*x509.Certificate{good.Leaf}); err == nil {
			t.Fatalf("look %d: a certificate matching no pin passed", i+1)
		}
	}
}

func BenchmarkVerifyCertAgain(b *testing.B) {
	ca := newTestCA(b, "bench")
	good := ca.issue(b, leafOpts{})
	p, err := New(Options{ServerName: "localhost", CAPEM: [][]byte{ca.pem}})
	if err != nil {
		b.Fatal(err)
	}
	chain := []*x509.Certificate{good.Leaf}
	for b.Loop() {
		if err := p.verifyCert(chain); err != nil {
			b.Fatal(err)
		}
	}
}
