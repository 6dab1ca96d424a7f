// Command camftpd is the camera's FTPES upload daemon; see package daemon.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/camftpd/camftpd/daemon"
)

// gcPercent is the GOGC the daemon runs with unless the environment sets
// one: a heap that grows by three quarters (Go's default: doubles) before a
// collection. The collector's CPU goes with the bytes allocated divided by
// GOGC, and peak RSS with the garbage it lets pile up. Measured
// 2026-11-30 on the benchmark's 1,000 files of 100 kB (about 120 kB
// allocated per file, 40 % of it in the data connection's TLS handshake),
// alternated: GOGC 50 1.52-1.56x goftp-naive's CPU at 14.4-14.5 MiB peak
// RSS, 75 1.39-1.51x at 15.3-15.4 MiB, 100 1.53x at 16.2 MiB (over the
// 16 MiB goal; 8.5 MiB of it is the binary's file-backed pages). A memory
// limit (GOMEMLIMIT) instead made the collector run without pause under
// load (8 MiB: CPU x2.3; 6 MiB: x20) and is not set.
const gcPercent = 75

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	stopProfile := startCPUProfile(os.Stderr)
	code := daemon.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	writeMemProfile(os.Stderr)
	stop()
	os.Exit(code)
}
