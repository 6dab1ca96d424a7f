//go:build profile

package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
)

// This file is built only with -tags profile (scripts/bench adds the tag
// when CAMFTPD_CPUPROFILE or CAMFTPD_MEMPROFILE is set): runtime/pprof
// would cost the firmware binary its 8 MiB size goal (see profile_off.go).

// cpuProfileEnv names the environment variable that, when set to a file
// path, makes the daemon write a CPU profile (pprof format) of its whole
// run to that file. Off unless set; for measuring (BENCHMARKS.md, "Where
// the per-file CPU goes"), not for cameras.
const cpuProfileEnv = "CAMFTPD_CPUPROFILE"

// memProfileEnv names the environment variable that, when set to a file
// path, makes the daemon write a heap profile (pprof format, with the
// allocations of its whole run: go tool pprof -sample_index=alloc_space)
// to that file when it ends. Off unless set; for measuring, like
// cpuProfileEnv.
const memProfileEnv = "CAMFTPD_MEMPROFILE"

// startCPUProfile starts the CPU profile that CAMFTPD_CPUPROFILE asks for
// and returns the function that stops it and closes the file; without the
// variable it does nothing.
func startCPUProfile(stderr io.Writer) (stop func()) {
	path := os.Getenv(cpuProfileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "camftpd: %s: %v (unset %s or give a writable path)\n", cpuProfileEnv, err, cpuProfileEnv)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(stderr, "camftpd: %s: %v\n", cpuProfileEnv, err)
		_ = f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "camftpd: %s: %v\n", cpuProfileEnv, err)
		}
	}
}

// writeMemProfile writes the heap profile CAMFTPD_MEMPROFILE asks for;
// without the variable it does nothing.
func writeMemProfile(stderr io.Writer) {
	path := os.Getenv(memProfileEnv)
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "camftpd: %s: %v (unset %s or give a writable path)\n", memProfileEnv, err, memProfileEnv)
		return
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		fmt.Fprintf(stderr, "camftpd: %s: %v\n", memProfileEnv, err)
	}
	if err := f.Close(); err != nil {
		fmt.Fprintf(stderr, "camftpd: %s: %v\n", memProfileEnv, err)
	}
}
