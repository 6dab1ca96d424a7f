package daemon

import (
	"sort"
	"sync"
	"time"
)

// stats are the daemon's figures since start, for the status and the
// latency measurements. mu guards every field; it is never held with
// Daemon.mu.
type stats struct {
	mu           sync.Mutex
	completedAt  map[string]time.Time // capture path -> when it was found complete, until its upload starts
	latencies    []time.Duration      // capture complete to upload start
	doneFiles    int64
	skippedFiles int64 // captures not sent under same_name skip
	doneBytes    int64
	rate         rateMeter
	tls          *TLSInfo // what the last handshake negotiated
}

// TLSInfo is what the last handshake negotiated.
type TLSInfo struct {
	Server  string `json:"server"`
	Version string `json:"version"`
	Suite   string `json:"suite"`
	SuiteID string `json:"suite_id"`
	Class   string `json:"class"`
	Engine  string `json:"engine,omitempty"` // "crypto/tls", or "openssl" (the openssl build's fallback)
	Warning string `json:"warning,omitempty"`
	Resumed bool   `json:"resumed"`
	// Pinned: the certificate was accepted on a pin (pins or camftpd
	// trust), not on its chain and name. CertWarning is set while it
	// expires within cert_warn_days.
	Pinned       bool      `json:"pinned,omitempty"`
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`
	CertDaysLeft int       `json:"cert_days_left"`
	CertWarning  string    `json:"cert_warning,omitempty"`
}

// statsKeep bounds completedAt and latencies.
const statsKeep = 100000

// completed notes when the capture at path became complete.
func (s *stats) completed(path string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.completedAt == nil {
		s.completedAt = map[string]time.Time{}
	}
	if len(s.completedAt) < statsKeep {
		s.completedAt[path] = at
	}
}

// forget drops the completion time of a capture that will not be uploaded.
func (s *stats) forget(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.completedAt, path)
}

// started records the latency of the upload of path starting at start
// (0 when its completion was not seen).
func (s *stats) started(path string, start time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.completedAt[path]
	if !ok {
		return 0
	}
	lat := start.Sub(at)
	delete(s.completedAt, path)
	if len(s.latencies) < statsKeep {
		s.latencies = append(s.latencies, lat)
	}
	return lat
}

func (s *stats) sent(now time.Time, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rate.add(now, n)
}

func (s *stats) uploaded(size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doneFiles++
	s.doneBytes += size
}

func (s *stats) skipped() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skippedFiles++
}

// setTLS records the last handshake and returns the one before.
func (s *stats) setTLS(info *TLSInfo) (prev *TLSInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, s.tls = s.tls, info
	return prev
}

func (s *stats) latencyList() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.latencies...)
}

// rateMeter sums bytes sent over the last 10 one-second buckets.
type rateMeter struct {
	sec   [10]int64
	bytes [10]int64
}

func (r *rateMeter) add(now time.Time, n int64) {
	s := now.Unix()
	i := s % 10
	if r.sec[i] != s {
		r.sec[i], r.bytes[i] = s, 0
	}
	r.bytes[i] += n
}

func (r *rateMeter) perSec(now time.Time) float64 {
	s := now.Unix()
	var sum int64
	for i := range r.sec {
		if r.sec[i] > s-10 && r.sec[i] < s { // whole seconds only
			sum += r.bytes[i]
		}
	}
	return float64(sum) / 9
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}
