package queue

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
)

// fingerprintRef is Fingerprint written out plainly: SHA-256 of the size,
// then the whole file up to two blocks, else its first and last block.
func fingerprintRef(data []byte) []byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(data)))
	h.Write(n[:])
	if len(data) <= 2*fingerprintBlock {
		h.Write(data)
	} else {
		h.Write(data[:fingerprintBlock])
		h.Write(data[len(data)-fingerprintBlock:])
	}
	return h.Sum(nil)[:FingerprintSize]
}

// TestFingerprintPooledBuffers: with buffers shared between calls (and
// goroutines), each fingerprint is still that of its own file, and a call
// does not allocate its 64 KiB read buffer (under -race, sync.Pool drops
// a quarter of what is put back on purpose: half a buffer a call is the
// bound).
func TestFingerprintPooledBuffers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var files [][]byte
	for _, size := range []int{0, 1, 100_000, 2 * fingerprintBlock, 2*fingerprintBlock + 1, 3 * fingerprintBlock} {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		files = append(files, b)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				f := files[(g+i)%len(files)]
				got, err := Fingerprint(bytes.NewReader(f), int64(len(f)))
				if err != nil {
					t.Error(err)
					return
				}
				if want := fingerprintRef(f); !bytes.Equal(got, want) {
					t.Errorf("size %d: fingerprint %x, want %x", len(f), got, want)
					return
				}
			}
		})
	}
	wg.Wait()

	f := files[2]
	const calls = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range calls {
		if _, err := Fingerprint(bytes.NewReader(f), int64(len(f))); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / calls; per > fingerprintBlock/2 {
		t.Errorf("Fingerprint allocates %d bytes a call, want its read buffer reused (under %d)", per, fingerprintBlock/2)
	}
}
