package daemon

import (
	"debug/elf"
	"os"
	"sync"
	"time"
)

// within stretches a wall-clock bound of these tests as transfer's and
// queue's within do: 2 times under -race (raceBuild, from the build info), 4
// times when the test binary runs under a user-mode emulator (its machine
// differs from the host's /bin/sh), 8 times under both. The bounds say
// "not hung", not how fast this machine is. waitFor applies it to its
// timeout; a bound that is the product's own promise says so where it is
// asserted.
func within(d time.Duration) time.Duration {
	stretchOnce.Do(func() {
		if raceBuild() {
			stretchBy *= 2
		}
		exe, err := os.Executable()
		if err != nil {
			return
		}
		if ours, host := elfMachine(exe), elfMachine("/bin/sh"); ours != 0 && host != 0 && ours != host {
			stretchBy *= 4
		}
	})
	return time.Duration(stretchBy) * d
}

var (
	stretchOnce sync.Once
	stretchBy   = 1
)

func elfMachine(path string) elf.Machine {
	f, err := elf.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	return f.Machine
}
