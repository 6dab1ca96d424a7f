//go:build openssl

package transfer

import (
	"context"
	"log/slog"
	"testing"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// BenchmarkEngineConnect: one logged-in control connection (connect, AUTH
// TLS, handshake, login, PBSZ/PROT, FEAT, TYPE I, then QUIT) per
// iteration, TLS 1.2, vsftpd: crypto/tls on an ECDHE-RSA-AES256-GCM-SHA384
// server (the peer), OpenSSL on an AES256-SHA256-only server with the
// choice remembered, and the first connect of a Client there (crypto/tls
// refused, then OpenSSL: the fallback's cost).
func BenchmarkEngineConnect(b *testing.B) {
	for _, bc := range []struct {
		name, ciphers string
		remembered    bool
	}{
		{"crypto-tls", "ECDHE-RSA-AES256-GCM-SHA384", false},
		{"openssl-remembered", "AES256-SHA256", true},
		{"openssl-fallback", "AES256-SHA256", false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tg := startTargetWith(b, "vsftpd", ftpstest.Options{}, ftpstest.RealOptions{MaxTLS12: true, Ciphers: bc.ciphers, NoLog: true, AnyPassword: true})
			p, err := tlspolicy.New(tlspolicy.Options{ServerName: tg.serverName, CAPEM: [][]byte{tg.capem}, MaxTLS12: true, Engine: Engine(), Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			cfg := Config{Host: tg.host, Port: tg.port, User: tg.user, Password: tg.pass, TLS: p.Config(), Policy: p}
			c := New(cfg)
			defer c.Close()
			b.ResetTimer()
			for range b.N {
				c.viaEngine.Store(bc.remembered)
				s, err := c.dial(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				s.close()
			}
			b.StopTimer()
			b.ReportMetric(float64(c.engineDials.Load())/float64(b.N), "openssl-dials/op")
			b.ReportMetric(float64(c.goDials.Load())/float64(b.N), "go-dials/op")
		})
	}
}
