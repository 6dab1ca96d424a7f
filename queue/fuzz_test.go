package queue

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzDecodeRec: a record read from the file never panics the decoder, and
// what decodes re-encodes to the same bytes. The fuzzer writes the record
// body; the test appends a valid CRC so the parser behind it is exercised.
func FuzzDecodeRec(f *testing.F) {
	r := &rec{Item: Item{ID: "0123456789abcdef", Seq: 7, Capture: capN(3), State: Done, Attempts: 2,
		Enqueued: time.Unix(1764000000, 5), DoneAt: time.Unix(1764000100, 0), Remote: "/r/x.jpg", Hash: "ab"}, doneSeq: 9, streak: 1}
	body := func(b []byte) []byte { return b[:len(b)-4] }
	f.Add(body(encodeRec(r)))
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0})
	f.Add([]byte{1, 9, 0, 0xff, 0xff, 0xff})
	r.Capture.Path = ""
	f.Add(body(encodeRec(r)))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
		if _, err := decodeRec(b[:len(b)-1]); err == nil {
			t.Fatal("a cut record decoded")
		}
		r, err := decodeRec(b)
		if err != nil {
			return
		}
		if got := encodeRec(r); string(got) != string(b) {
			// Non-canonical varints may decode; the re-encoding must decode
			// to the same record.
			r2, err := decodeRec(got)
			if err != nil || encodeRec(r2) == nil || r2.ID != r.ID || r2.State != r.State || r2.Capture.Path != r.Capture.Path {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}

// FuzzOpenFile: whatever bytes the queue file holds, Open returns a
// working queue (recovered if the bytes were not a good queue) or a clear
// error; it does not crash.
func FuzzOpenFile(f *testing.F) {
	dir := f.TempDir()
	good := filepath.Join(dir, "good.db")
	q, err := Open(good, &Options{Logger: quietLogger()})
	if err != nil {
		f.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, _, err := q.Enqueue(capN(i)); err != nil {
			f.Fatal(err)
		}
	}
	q.Close()
	data, _ := os.ReadFile(good)
	f.Add(data[:8192])
	f.Add(data[:16384])
	f.Add(append([]byte(nil), data[:4096]...))
	f.Add([]byte("not a database"))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "q.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		q, err := Open(path, &Options{Logger: quietLogger()})
		if err != nil {
			t.Fatalf("Open must recover from any content, got: %v", err)
		}
		defer q.Close()
		if _, _, err := q.Enqueue(capN(1)); err != nil {
			t.Fatal(err)
		}
		if err := q.Verify(); err != nil {
			t.Fatal(err)
		}
	})
}
