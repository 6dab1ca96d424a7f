package transfer

import (
	"debug/elf"
	"os"
	"sync"
	"time"
)

// within stretches a wall-clock bound of these tests when the test binary
// runs under a user-mode emulator (its machine differs from the host's
// /bin/sh), 4 times: there a TLS handshake alone can take a second, and the
// claims are "cut and reported in about Timeout, not hung", not the
// emulator's speed. Under -race it stretches it 2 times (both: 8).
// Natively the bound stays as written.
func within(d time.Duration) time.Duration {
	if raceOn {
		d *= 2
	}
	emulatedOnce.Do(func() {
		exe, err := os.Executable()
		if err != nil {
			return
		}
		ours, host := machine(exe), machine("/bin/sh")
		emulated = ours != 0 && host != 0 && ours != host
	})
	if emulated {
		return 4 * d
	}
	return d
}

var (
	emulatedOnce sync.Once
	emulated     bool
)

func machine(path string) elf.Machine {
	f, err := elf.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	return f.Machine
}
