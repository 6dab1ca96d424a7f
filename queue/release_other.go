//go:build !linux

package queue

import bolt "go.etcd.io/bbolt"

// releasePages is a no-op where madvise is not available.
func (q *Queue) releasePages() {}

func releaseMapped(*bolt.Tx) {}
