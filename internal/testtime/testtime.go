// Package testtime is what the tests of every package share about time: a
// wall-clock bound in a test says "not hung", not how fast this machine is,
// so it stretches where the code runs slower than on the device's own
// core: 2 times under the race detector, 4 times when the test binary runs
// under a user-mode emulator (make test-arm64), 8 times under both. Tests
// import it; the firmware does not (layout_test.go).
package testtime

import (
	"debug/elf"
	"os"
	"runtime/debug"
	"sync"
	"time"
)

// Within stretches the bound d as the package doc says.
func Within(d time.Duration) time.Duration {
	factorOnce.Do(func() {
		if Race() {
			factor *= 2
		}
		if Emulated() {
			factor *= 4
		}
	})
	return time.Duration(factor) * d
}

var (
	factorOnce sync.Once
	factor     = 1
)

// Race tells whether this binary was built with -race (read from its build
// information).
func Race() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				return true
			}
		}
	}
	return false
}

// Emulated tells whether this binary runs under a user-mode emulator: its
// machine differs from that of the host's /bin/sh.
func Emulated() bool {
	exe, err := os.Executable()
	if err != nil {
		return false
	}
	ours, host := ELFMachine(exe), ELFMachine("/bin/sh")
	return ours != 0 && host != 0 && ours != host
}

// ELFMachine returns the machine an ELF file is built for, 0 when path is
// not a readable ELF file.
func ELFMachine(path string) elf.Machine {
	f, err := elf.Open(path)
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }() // read-only
	return f.Machine
}
