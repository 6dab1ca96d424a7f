package queue

import (
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// releasePages drops the queue file's pages from this process's mapping
// (madvise MADV_DONTNEED on bbolt's read-only shared mapping, whose address
// DB.Info exports): they stay in the page cache and fault back in when read
// again, but no longer count in the process's resident set. A scan that
// reconciles every folder of a 250,000-shot card touches 25 MiB of index
// pages, and the kernel's fault-around maps about four times that; without
// this the daemon's RSS would keep them. It runs inside a read transaction,
// which holds off bbolt's remapping.
func (q *Queue) releasePages() {
	_ = q.db.View(func(tx *bolt.Tx) error {
		size := tx.Size()
		if size <= 0 {
			return nil
		}
		_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, q.db.Info().Data, uintptr(size), syscall.MADV_DONTNEED)
		if errno != 0 {
			q.log.Debug("queue: madvise of the queue file's mapping failed", "err", errno.Error())
		}
		return nil
	})
}
