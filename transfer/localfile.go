package transfer

import (
	"errors"
	"os"
	"sync/atomic"
)

// leaseWarned: the fall-back to fstat alone (no file leases) is logged once
// per process.
var leaseWarned atomic.Bool

// openJob returns the local file of job, opened for this attempt: Job.File,
// or Job.LocalPath opened without following a symbolic link.
func (c *Client) openJob(op string, job Job) (*os.File, os.FileInfo, error) {
	f := job.File
	var st os.FileInfo
	var err error
	if f == nil {
		f, st, err = openLocal(job.LocalPath)
	} else {
		st, err = f.Stat()
	}
	switch {
	case errors.Is(err, ErrRefused):
		return nil, nil, &Error{Class: Local, Op: op, Msg: oneLine(err.Error()), Err: err}
	case err != nil:
		return nil, nil, localErr(op, err, "cannot open the local file")
	case !st.Mode().IsRegular(): // a Job.File of the caller's
		if job.File == nil {
			f.Close()
		}
		return nil, nil, &Error{Class: Local, Op: op, Err: ErrRefused,
			Msg: "local path is not a regular file (" + st.Mode().Type().String() + "): refused, never read"}
	}
	return f, st, nil
}

// writerActive reports whether a process holds f open for writing (see
// WriterActive). Where leases are unavailable it says false and logs once
// that only fstat is compared.
func (c *Client) writerActive(f *os.File) bool {
	active, supported, err := WriterActive(f)
	if !supported || err != nil {
		if leaseWarned.CompareAndSwap(false, true) {
			c.log.Warn("cannot tell whether a capture is still open for writing; only its size and modification time are compared before the rename",
				"err", err)
		}
		return false
	}
	return active
}

// writerGone fails the attempt, before anything is sent, while a process
// holds the local file open for writing.
func (c *Client) writerGone(op string, f *os.File) error {
	if !c.writerActive(f) {
		return nil
	}
	return &Error{Class: Local, Op: op, Err: ErrStillWriting,
		Msg: "the local file is still open for writing by another process: not sent; will retry once it is closed"}
}
