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
		releaseMapped(tx)
		return nil
	})
}

// releaseMapped does the same inside a transaction the caller holds (bbolt
// remaps only while committing a write transaction, never inside one), so
// that a long pass over a folder's index can shed its pages as it goes.
func releaseMapped(tx *bolt.Tx) {
	if size := tx.Size(); size > 0 {
		// An error (no madvise on this kernel) only costs memory.
		_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, tx.DB().Info().Data, uintptr(size), syscall.MADV_DONTNEED)
	}
}
