package queue

import (
	"bytes"
	"fmt"
)

// bucketOrphans holds the temporary files that uploads may have left on a
// server for captures that will not be sent any more:
//
//	orphans  server 0 path  -> time recorded (8)
//
// It is created by the first AddOrphans (older files have none).
var bucketOrphans = []byte("orphans")

// MaxOrphans bounds the orphan list: AddOrphans beyond it forgets the new
// ones (their files stay on the server) and says so.
const MaxOrphans = 10000

// Orphan is a temporary file on a server, named by the server's name and
// its remote path, that an upload of a capture that vanished, changed or
// was dropped may have left. The daemon deletes it at its next connection
// to that server.
type Orphan struct {
	Server, Path string
}

func orphanKey(o Orphan) []byte { return []byte(o.Server + "\x00" + o.Path) }

// AddOrphans records orphans durably (one transaction); those known
// already are kept as they are.
func (q *Queue) AddOrphans(orphans []Orphan) error {
	if len(orphans) == 0 {
		return nil
	}
	return q.update("add orphans", orphans[0].Path, func(t *txn) error {
		b, err := t.tx.CreateBucketIfNotExists(bucketOrphans)
		if err != nil {
			return err
		}
		n := b.Stats().KeyN
		for _, o := range orphans {
			k := orphanKey(o)
			if b.Get(k) != nil {
				continue
			}
			if n >= MaxOrphans {
				return fmt.Errorf("%d temporary files are waiting to be deleted from the servers already (is a server gone from the configuration?): %s on %s is not recorded", n, o.Path, o.Server)
			}
			if err := b.Put(k, key1(uint64(timeNs(q.now())))); err != nil {
				return err
			}
			n++
		}
		return nil
	})
}

// Orphans returns up to limit recorded orphan paths of server, oldest key
// first.
func (q *Queue) Orphans(server string, limit int) ([]string, error) {
	var paths []string
	err := q.view("orphans", server, func(t *txn) error {
		b := t.tx.Bucket(bucketOrphans)
		if b == nil {
			return nil
		}
		prefix := []byte(server + "\x00")
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(paths) < limit; k, _ = c.Next() {
			paths = append(paths, string(k[len(prefix):]))
		}
		return nil
	})
	return paths, err
}

// ForgetOrphans removes orphans of server from the list (deleted from the
// server, or not there).
func (q *Queue) ForgetOrphans(server string, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	return q.update("forget orphans", server, func(t *txn) error {
		b := t.tx.Bucket(bucketOrphans)
		if b == nil {
			return nil
		}
		for _, p := range paths {
			if err := b.Delete(orphanKey(Orphan{Server: server, Path: p})); err != nil {
				return err
			}
		}
		return nil
	})
}
