package daemon

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/camftpd/camftpd/queue"
)

// BenchmarkPublishState is the cost of one state event with the queue
// read it takes (truth.go), on a queue of 1,000 done items, 3 parked and
// 3 retrying: "retry" reads the retrying items (nothing else to send),
// "upload" has a shot pending as during a burst (counters only, the
// parked items cached). publishState runs about three times per upload
// (start, end, last ack).
func BenchmarkPublishState(b *testing.B) {
	e := newEnv(b)
	cfg := e.writeConfig("200ms", 1)
	d := New(cfg, nil)
	q, err := queue.Open(filepath.Join(b.TempDir(), "queue.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	for i := range 1006 {
		it, _, err := q.Enqueue(queue.Capture{Path: fmt.Sprintf("/m/DSC%05d.JPG", i), Rel: fmt.Sprintf("DSC%05d.JPG", i), Size: 1, ModTime: time.Unix(int64(i), 0), Inode: uint64(i + 1), Fingerprint: []byte{byte(i), byte(i >> 8)}})
		if err != nil {
			b.Fatal(err)
		}
		if _, ok, err := q.Lease("w"); err != nil || !ok {
			b.Fatal(err)
		}
		switch {
		case i < 1000:
			err = q.Ack(it.ID, "r", "")
		case i < 1003:
			err = q.Park(it.ID, "553 no")
		default:
			_, err = q.Fail(it.ID, "451 busy")
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	d.q = q
	run := func(b *testing.B) {
		for range b.N {
			d.publishState()
		}
	}
	b.Run("retry", run)
	if _, _, err := q.Enqueue(queue.Capture{Path: "/m/X.JPG", Rel: "X.JPG", Size: 1, ModTime: time.Unix(1, 0), Inode: 9999, Fingerprint: []byte{9}}); err != nil {
		b.Fatal(err)
	}
	b.Run("upload", run)
}
