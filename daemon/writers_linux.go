package daemon

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// errNoLease: the kernel gives no read lease on this file (leases need the
// file's owner or CAP_LEASE; some network and FUSE file systems refuse
// them), so whether a writer holds it cannot be told.
var errNoLease = errors.New("file leases not available")

// openForWriting reports whether any process has the regular file at p
// open for writing. It asks the kernel with a read lease on a read-only
// descriptor (fcntl F_SETLEASE F_RDLCK): Linux refuses it with EAGAIN
// while a writer holds the file and grants it otherwise; the lease is
// dropped at once. A writer opening the file in that moment waits until
// then (the kernel signals SIGIO, which the Go runtime ignores).
func openForWriting(p string) (bool, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return false, fmt.Errorf("%s: not a regular file", p)
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return false, err
	}
	var lerr error
	if err := sc.Control(func(fd uintptr) {
		_, lerr = unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_RDLCK)
		if lerr == nil {
			_, lerr = unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_UNLCK)
		}
	}); err != nil {
		return false, err
	}
	switch {
	case lerr == nil:
		return false, nil
	case errors.Is(lerr, unix.EAGAIN):
		return true, nil
	default:
		return false, fmt.Errorf("%w: %s: %w", errNoLease, p, lerr)
	}
}
