package tlspolicy

import (
	"crypto/tls"
	"slices"
	"testing"
)

// TestTableMatchesCryptoTLS checks the spec's table against crypto/tls:
// the ids are the IANA ids crypto/tls uses, and "Implemented" is true for
// exactly the suites crypto/tls can negotiate in TLS 1.2.
func TestTableMatchesCryptoTLS(t *testing.T) {
	goConst := map[string]uint16{
		"TLS_RSA_WITH_AES_128_CBC_SHA256":         tls.TLS_RSA_WITH_AES_128_CBC_SHA256,
		"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
		"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
	}
	goSuites := map[uint16]*tls.CipherSuite{}
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			goSuites[s.ID] = s
		}
	}
	tab := Table()
	if len(tab) != 13 {
		t.Fatalf("table has %d suites, the spec lists 13", len(tab))
	}
	var rec, dep, impl []uint16
	seen := map[uint16]bool{}
	for _, s := range tab {
		if seen[s.ID] {
			t.Errorf("duplicate id 0x%04x", s.ID)
		}
		seen[s.ID] = true
		switch s.Class {
		case Recommended:
			rec = append(rec, s.ID)
		case Deprecated:
			dep = append(dep, s.ID)
		default:
			t.Errorf("%s: class %v", s.Name, s.Class)
		}
		gs, inGo := goSuites[s.ID]
		if s.Implemented != inGo {
			t.Errorf("%s (0x%04x): Implemented=%v but crypto/tls has it: %v", s.Name, s.ID, s.Implemented, inGo)
		}
		if inGo {
			if gs.Name != s.Name {
				t.Errorf("0x%04x: table name %s, crypto/tls name %s", s.ID, s.Name, gs.Name)
			}
			if c, ok := goConst[s.Name]; !ok || c != s.ID {
				t.Errorf("%s: table id 0x%04x, crypto/tls constant 0x%04x (known %v)", s.Name, s.ID, c, ok)
			}
			impl = append(impl, s.ID)
		} else if n := tls.CipherSuiteName(s.ID); n == s.Name {
			t.Errorf("%s: crypto/tls knows this name but not as a TLS 1.2 suite", s.Name)
		}
		if got, ok := Lookup(s.ID); !ok || got != s {
			t.Errorf("Lookup(0x%04x) = %+v, %v", s.ID, got, ok)
		}
		if s.OpenSSL == "" {
			t.Errorf("%s: no OpenSSL name", s.Name)
		}
	}
	if len(rec) != 3 || len(dep) != 10 {
		t.Errorf("recommended %d, deprecated %d; the spec has 3 and 10", len(rec), len(dep))
	}
	slices.Sort(impl)
	want := []uint16{0x003c, 0xc023, 0xc027, 0xc02c, 0xc02f, 0xc030}
	if !slices.Equal(impl, want) {
		t.Errorf("implemented %04x, want %04x", impl, want)
	}
	slices.Sort(rec)
	if !slices.Equal(rec, []uint16{0xc02c, 0xc02f, 0xc030}) {
		t.Errorf("recommended %04x", rec)
	}
	if n := len(unimplemented()); n != 7 {
		t.Errorf("%d unimplemented, want 7", n)
	}
}

func TestLookupOutsideTable(t *testing.T) {
	for id, class := range map[uint16]Class{tls.TLS_AES_128_GCM_SHA256: Recommended, tls.TLS_AES_256_GCM_SHA384: Recommended, tls.TLS_CHACHA20_POLY1305_SHA256: NonNIST} {
		s, ok := Lookup(id)
		if !ok || s.Class != class || !s.Implemented || s.Name != tls.CipherSuiteName(id) {
			t.Errorf("TLS 1.3 suite 0x%04x: %+v %v, want class %v", id, s, ok, class)
		}
	}
	if got := TLS13Suites(); len(got) != 3 || got[2].Class != NonNIST {
		t.Errorf("TLS13Suites() = %+v", got)
	}
	for _, id := range []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA, 0x1234} {
		s, ok := Lookup(id)
		if ok || s.Class != NotAllowed || s.Name != tls.CipherSuiteName(id) {
			t.Errorf("0x%04x: %+v %v", id, s, ok)
		}
	}
	if NotAllowed.String() != "not allowed" || Recommended.String() != "recommended" || Deprecated.String() != "deprecated" || NonNIST.String() != "non-NIST" {
		t.Error("Class.String")
	}
}

func TestConfigByMode(t *testing.T) {
	for _, tc := range []struct {
		opts   Options
		suites []uint16
		max    uint16
	}{
		{Options{ServerName: "h"}, []uint16{0x003c, 0xc030, 0xc02f, 0xc027, 0xc02c, 0xc023}, tls.VersionTLS13},
		{Options{ServerName: "h", Mode: Compatible, MaxTLS12: true}, []uint16{0x003c, 0xc030, 0xc02f, 0xc027, 0xc02c, 0xc023}, tls.VersionTLS12},
		{Options{ServerName: "h", Mode: RecommendedOnly}, []uint16{0xc030, 0xc02f, 0xc02c}, tls.VersionTLS13},
	} {
		p, err := New(tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		c1, c2 := p.Config(), p.Config()
		if !slices.Equal(c1.CipherSuites, tc.suites) || c1.MaxVersion != tc.max || c1.MinVersion != tls.VersionTLS12 {
			t.Errorf("%+v: suites %04x max %x min %x", tc.opts, c1.CipherSuites, c1.MaxVersion, c1.MinVersion)
		}
		if c1.ServerName != "h" || c1.VerifyConnection == nil || c1.ClientSessionCache == nil {
			t.Errorf("config incomplete: %+v", c1)
		}
		if c1 == c2 || c1.ClientSessionCache != c2.ClientSessionCache {
			t.Error("configs must be distinct and share one ClientSessionCache")
		}
		for _, id := range c1.CipherSuites {
			if s, ok := Lookup(id); !ok || s.Class == NotAllowed || !s.Implemented {
				t.Errorf("offers 0x%04x outside the table", id)
			}
		}
	}
	p1, _ := New(Options{ServerName: "h"})
	p2, _ := New(Options{ServerName: "h"})
	if p1.Config().ClientSessionCache == p2.Config().ClientSessionCache {
		t.Error("two policies must not share a session cache")
	}
}
