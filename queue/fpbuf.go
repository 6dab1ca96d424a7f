package queue

import "sync"

// fingerprintBufs holds Fingerprint's read buffers between calls: one of
// fingerprintBlock bytes per capture found was about a third of the
// daemon's allocations on the benchmark's 1,000 small files (BENCHMARKS.md,
// "Where the per-file CPU goes"), and so of its garbage collection. A
// buffer is only read into and hashed while held, never kept by a caller.
var fingerprintBufs = sync.Pool{New: func() any {
	b := make([]byte, fingerprintBlock)
	return &b
}}
