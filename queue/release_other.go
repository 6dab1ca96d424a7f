//go:build !linux

package queue

// releasePages is a no-op where madvise is not available.
func (q *Queue) releasePages() {}
