package queue

import (
	"os"
	"runtime/debug"
	"sync"
	"time"
)

// within stretches a wall-clock bound of these tests as transfer's within
// does: 2 times under -race, 4 times when the test binary runs under a
// user-mode emulator (its machine differs from the host's /bin/sh), 8 times
// under both. The bounds say "not hung", not how fast this machine is.
func within(d time.Duration) time.Duration {
	stretchOnce.Do(func() {
		if raceBuild() {
			stretch *= 2
		}
		exe, err := os.Executable()
		if err != nil {
			return
		}
		if ours, host := elfMachine(exe), elfMachine("/bin/sh"); ours != 0 && host != 0 && ours != host {
			stretch *= 4
		}
	})
	return time.Duration(stretch) * d
}

// raceBuild tells whether this test binary was built with -race.
func raceBuild() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				return true
			}
		}
	}
	return false
}

var (
	stretchOnce sync.Once
	stretch     = 1
)
