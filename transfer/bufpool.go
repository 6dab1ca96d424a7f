package transfer

import "sync"

// Chunk buffers are reused across uploads instead of being allocated per
// file. With a new 128 KiB read buffer per upload and a batchConn buffer
// grown by append per data connection, every 100 kB file allocated about
// 350 KiB: at GOGC 50 a garbage collection ran every few files, and the
// collector was the largest single item of camftpd's CPU per file on the
// benchmark's 1,000 small files (BENCHMARKS.md, "Where the per-file CPU
// goes"). Pooled, the steady state allocates neither.
var (
	chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}
	// A chunk's TLS records: the chunk plus 22 bytes of header, content
	// type and AEAD tag per 16 KiB record (TLS 1.2 GCM: 29); 1 KiB spare.
	batchPool = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize+1<<10); return &b }}
)

// getChunk returns a pooled buffer of chunkSize bytes for putChunk.
func getChunk() *[]byte { return chunkPool.Get().(*[]byte) }

func putChunk(b *[]byte) {
	if b != nil && len(*b) == chunkSize {
		chunkPool.Put(b)
	}
}
