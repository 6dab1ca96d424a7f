package transfer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camftpd/camftpd/transfer/ftpstest"

	"github.com/camftpd/camftpd/internal/testtime"
)

// hostileBound is how much more one attempt against a hostile server may
// allocate than the same attempt against a server that sends one byte of
// the flood and closes (TLS handshake and login cost the same in both).
// What is allocated bounds the heap's growth. goftp's textproto holds at
// most about two windows of 32 KiB (replyLimit) of one reply, and
// allocates several times what it holds (the message builder's growth, a
// string per line, an error per FEAT line). Measured: 150-250 KiB over
// baseline (160-400 KiB under -race); 100 MiB for a 16 MiB flood without
// the guard (TestHostileRepliesWithoutGuard).
const hostileBound = 1 << 20

var hostileModes = []ftpstest.HostileMode{
	ftpstest.EndlessGreeting, ftpstest.EndlessGreetingLines,
	ftpstest.EndlessUserLine, ftpstest.EndlessFeat, ftpstest.EndlessType,
}

// hostileAttempt runs one Upload against a Hostile server with the guard
// at limit (< 0: none) and returns its error, its duration and the bytes
// this process allocated meanwhile (runtime.MemStats.TotalAlloc). The
// server runs in a child process, so that only the client's allocations
// are counted.
func hostileAttempt(t *testing.T, o ftpstest.HostileOptions, limit int64) (time.Duration, uint64, error) {
	t.Helper()
	port, capem := hostileChild(t, o)
	tg := &target{name: "hostile", host: "127.0.0.1", port: port, capem: capem, serverName: "localhost", user: "u", pass: "p"}
	cfg := tg.config(t, o.MaxTLS12)
	p, _ := localFile(t, 1000)
	c := New(cfg)
	c.guardLimit = limit
	defer c.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := c.Upload(context.Background(), Job{LocalPath: p, Remote: "x.jpg"})
	el := time.Since(start)
	runtime.ReadMemStats(&after)
	t.Logf("%v (flood %d): %v after %v; %.0f KiB allocated", o.Mode, o.Flood, err, el.Round(time.Millisecond),
		float64(after.TotalAlloc-before.TotalAlloc)/1024)
	return el, after.TotalAlloc - before.TotalAlloc, err
}

// hostileChild starts this test binary as a Hostile server (see
// hostileServe) and returns its port and CA; the server ends with the test.
func hostileChild(t *testing.T, o ftpstest.HostileOptions) (int, []byte) {
	t.Helper()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	env := append(os.Environ(), "CAMFTPD_HOSTILE_CHILD="+fmt.Sprintf("%d %d %v", o.Mode, o.Flood, o.MaxTLS12), "CAMFTPD_HOSTILE_CA="+caFile)
	args := []string{"-test.run=^TestHostileReplies$"}
	cmd := exec.Command(os.Args[0], args...)
	if q := qemuUser(); q != "" {
		cmd = exec.Command(q, append([]string{os.Args[0]}, args...)...)
	}
	cmd.Env = env
	cmd.Stderr = tWriter{t}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		if _, err := io.Copy(io.Discard, out); err != nil {
			t.Errorf("hostile server's output: %v", err)
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("hostile server: %v", err)
		}
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "HOSTILE-PORT "); ok {
			port, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			pem, err := os.ReadFile(caFile)
			if err != nil {
				t.Fatal(err)
			}
			return port, pem
		}
	}
	t.Fatalf("hostile server did not start: %v", sc.Err())
	return 0, nil
}

// qemuUser names the emulator to run this binary with when the host cannot
// run it (make test-arm64 without binfmt_misc), as runSelf does.
func qemuUser() string {
	if !testtime.Emulated() {
		return ""
	}
	if err := exec.Command(os.Args[0], "-test.run=^$").Run(); err == nil {
		return ""
	}
	return map[string]string{"arm64": "qemu-aarch64-static", "arm": "qemu-arm-static"}[runtime.GOARCH]
}

// hostileServe is the child of hostileChild: it runs the server until its
// standard input closes.
func hostileServe(t *testing.T, spec string) {
	var o ftpstest.HostileOptions
	var mode int
	if _, err := fmt.Sscanf(spec, "%d %d %t", &mode, &o.Flood, &o.MaxTLS12); err != nil {
		t.Fatalf("CAMFTPD_HOSTILE_CHILD=%q: %v", spec, err)
	}
	o.Mode = ftpstest.HostileMode(mode)
	h, err := ftpstest.StartHostile(o)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := os.WriteFile(os.Getenv("CAMFTPD_HOSTILE_CA"), h.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("HOSTILE-PORT %d\n", h.Port)
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		t.Error(err)
	}
}

// TestHostileReplies: a server that floods a reply (an endless greeting
// line, an endless multi-line greeting, and after AUTH TLS with a valid
// certificate an endless USER reply line, FEAT listing (read by goftp's
// login) or multi-line TYPE reply (read by our session)) fails the attempt
// at once as a transient error naming the cause, and the attempt allocates
// less than hostileBound over a baseline. Over TLS 1.3 and 1.2.
func TestHostileReplies(t *testing.T) {
	if spec := os.Getenv("CAMFTPD_HOSTILE_CHILD"); spec != "" {
		hostileServe(t, spec)
		return
	}
	base := runtime.NumGoroutine()
	// One attempt first, so that what a first connect initializes once is
	// in no baseline.
	t.Run("warm-up", func(t *testing.T) {
		if _, _, err := hostileAttempt(t, ftpstest.HostileOptions{Mode: ftpstest.EndlessFeat, Flood: 1}, 0); err == nil {
			t.Fatal("login to a server that sends one byte of FEAT succeeded")
		}
	})
	for _, m := range hostileModes {
		for _, max12 := range []bool{false, true} {
			if max12 && m < ftpstest.EndlessUserLine {
				continue
			}
			t.Run(fmt.Sprintf("%v/tls12=%v", m, max12), func(t *testing.T) {
				_, baseline, _ := hostileAttempt(t, ftpstest.HostileOptions{Mode: m, MaxTLS12: max12, Flood: 1}, 0)
				el, alloc, err := hostileAttempt(t, ftpstest.HostileOptions{Mode: m, MaxTLS12: max12}, 0)
				if ClassOf(err) != Transient || !errors.Is(err, errReplyTooLong) || !strings.Contains(err.Error(), "32 KiB") {
					t.Fatalf("%v (%v), want a transient error: reply over 32 KiB", err, ClassOf(err))
				}
				if el > within(2*time.Second) {
					t.Errorf("failed after %v, want well within the 5 s timeout", el)
				}
				if alloc > baseline+hostileBound {
					t.Errorf("%d bytes allocated, %d over the baseline attempt's %d, want < %d over", alloc, int64(alloc)-int64(baseline), baseline, hostileBound)
				}
			})
		}
	}
	goroutines(t, base)
}

// TestHostileRepliesWithoutGuard shows that the bound of TestHostileReplies
// measures something: without the guard, goftp takes a 16 MiB flood whole
// (the server then closes), and the attempt allocates more than the flood.
func TestHostileRepliesWithoutGuard(t *testing.T) {
	const flood = 16 << 20
	for _, m := range hostileModes {
		t.Run(m.String(), func(t *testing.T) {
			_, alloc, err := hostileAttempt(t, ftpstest.HostileOptions{Mode: m, Flood: flood}, -1)
			if err == nil || errors.Is(err, errReplyTooLong) {
				t.Fatalf("%v, want a failure of goftp's own", err)
			}
			if alloc < flood {
				t.Errorf("%d bytes allocated, want more than the %d flooded", alloc, flood)
			}
		})
	}
}

// TestGuardWindow drives a guard over real sockets: a command opens a new
// window (plain text before TLS; after a TLS handshake record, an
// application data record of a command's size), a TLS 1.3 KeyUpdate-sized
// record does not, and the window's bytes beyond the limit cut both sides.
func TestGuardWindow(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	toServer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	g, err := newGuard(toServer, 1000, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	cli, err := net.Dial("tcp", g.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for _, c := range []net.Conn{cli, srv} {
		if err := c.SetDeadline(time.Now().Add(within(10 * time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	reply := make([]byte, 600)
	// send writes p as the client; the server reads it (the guard has
	// seen it), then sends 600 bytes, which the client reads.
	send := func(step string, p []byte) {
		t.Helper()
		if _, err := cli.Write(p); err != nil {
			t.Fatalf("%s: client write: %v", step, err)
		}
		if _, err := io.ReadFull(srv, make([]byte, len(p))); err != nil {
			t.Fatalf("%s: server read: %v", step, err)
		}
		if _, err := srv.Write(reply); err != nil {
			t.Fatalf("%s: server write: %v", step, err)
		}
	}
	read := func() error { _, err := io.ReadFull(cli, make([]byte, len(reply))); return err }
	record := func(typ byte, n int) []byte {
		return append([]byte{typ, 3, 3, byte(n >> 8), byte(n)}, make([]byte, n)...)
	}
	steps := []struct {
		name string
		p    []byte
	}{
		{"greeting", nil}, // 600 of 1000
		{"plain command", []byte("NOOP\r\n")},
		{"client hello", record(22, 200)},
		{"command record", record(23, minCommandRecord)},
	}
	for _, s := range steps {
		if s.p == nil {
			if _, err := srv.Write(reply); err != nil {
				t.Fatal(err)
			}
		} else {
			send(s.name, s.p)
		}
		if err := read(); err != nil || g.err() != nil {
			t.Fatalf("%s: %v, guard: %v (each reply is in a window of its own)", s.name, err, g.err())
		}
	}
	// A KeyUpdate reply (22 bytes) opens no window: 1,200 bytes in one.
	send("key update", record(23, minCommandRecord-1))
	if err := read(); err == nil {
		t.Fatal("client read 1,200 bytes in one window of 1,000")
	}
	if !errors.Is(g.err(), errReplyTooLong) || ClassOf(g.err()) != Transient {
		t.Fatalf("guard: %v, want a transient reply-too-long error", g.err())
	}
	if _, err := srv.Read(make([]byte, 1)); err == nil {
		t.Fatal("server side still open after the cut")
	}
}

// BenchmarkGuardOverhead: with and without the guard, against vsftpd on
// a warm Client: "files" sends 100 small files (10 kB) per iteration;
// "noop" is one NOOP round trip per iteration (the guard's cost is per
// control round trip: a file takes four). cpu-ms/op is this process's
// user+system time (the client's: vsftpd is another process).
func BenchmarkGuardOverhead(b *testing.B) {
	tg := startTarget(b, "vsftpd", false)
	p, _ := localFile(b, 10_000)
	for _, mode := range []struct {
		name  string
		limit int64
	}{{"guard", 0}, {"direct", -1}} {
		cfg := tg.config(b, false)
		cfg.Logger = nil
		c := New(cfg)
		c.guardLimit = mode.limit
		defer c.Close()
		b.Run(mode.name+"/files", func(b *testing.B) {
			cpu0 := cpuTime(b)
			for i := 0; b.Loop(); i++ {
				for k := range 100 {
					if _, err := c.Upload(b.Context(), Job{LocalPath: p, Remote: fmt.Sprintf("go/%s-%d-%d.jpg", mode.name, i, k), Fresh: true}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
		b.Run(mode.name+"/noop", func(b *testing.B) {
			s, err := c.dial(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			defer s.close()
			cpu0 := cpuTime(b)
			for b.Loop() {
				if _, err := s.expect("NOOP", 2); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

// cpuTime is this process's user and system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
