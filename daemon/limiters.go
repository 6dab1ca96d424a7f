package daemon

import (
	"sync"

	"github.com/camftpd/camftpd/transfer"
)

// limiters holds the daemon's bandwidth limiter of each server (by name),
// kept across reloads while the server's limit is unchanged.
type limiters struct {
	mu sync.Mutex
	m  map[string]*transfer.Limiter
}

// get returns server's limiter of rate bytes/s (nil for no limit).
func (ls *limiters) get(server string, rate int64) *transfer.Limiter {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l := ls.m[server]; l != nil && l.Rate() == rate {
		return l
	}
	if ls.m == nil {
		ls.m = map[string]*transfer.Limiter{}
	}
	l := transfer.NewLimiter(rate)
	ls.m[server] = l
	return l
}
