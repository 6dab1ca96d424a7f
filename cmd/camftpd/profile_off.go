//go:build !profile

package main

import (
	"fmt"
	"io"
	"os"
)

// Without -tags profile the daemon has no profiler: runtime/pprof (and the
// compression and encoding it pulls in) put the stripped arm64 binary
// over its 8 MiB goal (8,454,306 bytes with it). A variable set for a
// binary built without it gets one line saying so.

func startCPUProfile(stderr io.Writer) (stop func()) {
	noProfiler(stderr, "CAMFTPD_CPUPROFILE")
	return func() {}
}

func writeMemProfile(stderr io.Writer) { noProfiler(stderr, "CAMFTPD_MEMPROFILE") }

func noProfiler(stderr io.Writer, env string) {
	if os.Getenv(env) != "" {
		fmt.Fprintf(stderr, "camftpd: %s is ignored: this binary was built without profiling (go build -tags profile ./cmd/camftpd)\n", env)
	}
}
