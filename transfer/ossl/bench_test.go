//go:build openssl

package ossl

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkUpload writes 32 MiB in 128 KiB chunks (transfer's chunk size)
// over one TLS connection to an in-process crypto/tls sink on loopback,
// through this engine and through crypto/tls side by side: the per-byte
// cost of the engine against the peer the daemon uses today. Handshake
// and close are inside each op.
func BenchmarkUpload(b *testing.B) {
	for _, v := range []struct {
		name string
		max  uint16
	}{{"tls12", tls.VersionTLS12}, {"tls13", tls.VersionTLS13}} {
		addr, stop := sink(b, v.max)
		b.Run("openssl-"+v.name, func(b *testing.B) { benchUpload(b, addr, true) })
		b.Run("cryptotls-"+v.name, func(b *testing.B) { benchUpload(b, addr, false) })
		stop()
	}
}

const benchSize = 32 << 20

func benchUpload(b *testing.B, addr string, engine bool) {
	c, err := NewCtx(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Free()
	chunk := make([]byte, 128<<10)
	b.SetBytes(benchSize)
	cpu0 := cpuTime(b)
	for b.Loop() {
		raw, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		var w net.Conn
		if engine {
			oc, err := c.Client(raw.(*net.TCPConn), "localhost", nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := oc.Handshake(context.Background()); err != nil {
				b.Fatal(err)
			}
			w = oc
		} else {
			tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost",
				CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}})
			if err := tc.Handshake(); err != nil {
				b.Fatal(err)
			}
			w = tc
		}
		for sent := 0; sent < benchSize; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	// Process CPU (user+sys, the sink's decryption included, the same for
	// both clients) per MiB sent: less noisy than wall time on a busy machine.
	b.ReportMetric(float64((cpuTime(b)-cpu0).Milliseconds())/float64(b.N*benchSize>>20), "cpu-ms/MiB")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sink serves TLS (capped at max) on loopback, reading and dropping
// everything; ECDHE-RSA-AES256-GCM-SHA384 in TLS 1.2 for both clients.
func sink(b *testing.B, max uint16) (string, func()) {
	cert, ln := certListener(b)
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: max,
		CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				tc := tls.Server(c, cfg)
				_ = tc.SetDeadline(time.Now().Add(time.Minute))
				_, _ = io.Copy(io.Discard, tc)
				_ = tc.CloseWrite()
			})
		}
	})
	return ln.Addr().String(), func() { ln.Close(); wg.Wait() }
}
