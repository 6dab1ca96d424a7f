package transfer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrRefused marks a local path that camftpd never reads: a symbolic link
// (as the file or as a folder on the way from the media folder), a FIFO, a
// device, a socket, a path that leaves the media folder. Retrying does not
// help: the item is settled with the reason (errors.Is).
var ErrRefused = errors.New("refused")

// ErrStillWriting marks an attempt that ended before the rename because
// the local file is still open for writing or changed while it was sent:
// nothing was published under the final name (errors.Is on an *Error of
// class Local).
var ErrStillWriting = errors.New("local file still being written")

// OpenCapture opens the capture rel (slash-separated) under the folder
// root once, for one attempt: every folder on the way with O_NOFOLLOW,
// then the file with O_RDONLY|O_NOFOLLOW|O_NONBLOCK (a FIFO does not block
// the open, a symbolic link is not followed), and checks with fstat on the
// descriptor that it is a regular file. The caller reads only through the
// returned file. Errors: fs.ErrNotExist when a part of the path is gone,
// ErrRefused for anything that is not a regular file reached without a
// symbolic link, else the open's error. root itself may be a symbolic link
// (the configured media folder).
func OpenCapture(root, rel string) (*os.File, os.FileInfo, error) {
	parts := strings.Split(rel, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return nil, nil, refused(rel, "path element "+fmt.Sprintf("%q", p)+" leaves or does not name a file in the media folder")
		}
	}
	dir, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	for i, p := range parts[:len(parts)-1] {
		next, err := unix.Openat(dir, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(dir)
		if err != nil {
			return nil, nil, openErr(root, parts[:i+1], err, "a folder on its path is a symbolic link or not a folder")
		}
		dir = next
	}
	fd, err := unix.Openat(dir, parts[len(parts)-1], unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	unix.Close(dir)
	if err != nil {
		return nil, nil, openErr(root, parts, err, "it is a symbolic link")
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, nil, &os.PathError{Op: "fstat", Path: filepath.Join(root, rel), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, nil, refused(rel, "it is a "+kindOf(st.Mode)+", not a regular file")
	}
	// Reads of a regular file ignore O_NONBLOCK; cleared so that os.File
	// treats the descriptor as the ordinary blocking file it is.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, nil, &os.PathError{Op: "fcntl", Path: filepath.Join(root, rel), Err: err}
	}
	f := os.NewFile(uintptr(fd), filepath.Join(root, filepath.FromSlash(rel)))
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// openErr turns an open error of the path elements parts under root into
// OpenCapture's: ELOOP (O_NOFOLLOW met a symbolic link) and ENOTDIR (a
// file where a folder should be) are refusals.
func openErr(root string, parts []string, err error, loop string) error {
	rel := strings.Join(parts, "/")
	switch {
	case errors.Is(err, unix.ELOOP):
		return refused(rel, loop)
	case errors.Is(err, unix.ENOTDIR):
		return refused(rel, "a part of its path is not a folder")
	case errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENODEV):
		return refused(rel, "it is a device or socket, not a regular file")
	}
	return &os.PathError{Op: "open", Path: filepath.Join(root, filepath.FromSlash(rel)), Err: err}
}

func refused(rel, why string) error {
	return fmt.Errorf("%s: %w: %s; camftpd reads only regular files inside the media folder", rel, ErrRefused, why)
}

func kindOf(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return "symbolic link"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFDIR:
		return "folder"
	}
	return fmt.Sprintf("file of type %#o", mode&unix.S_IFMT)
}

// openLocal opens a path given whole (Job.LocalPath without Job.File):
// the last element is not followed and a FIFO does not block, and the
// descriptor must be a regular file.
func openLocal(p string) (*os.File, os.FileInfo, error) {
	return OpenCapture(filepath.Dir(p), filepath.Base(p))
}

// WriterActive reports whether some process holds f open for writing: a
// read lease (fcntl F_SETLEASE F_RDLCK) is refused with EAGAIN exactly
// then; it is released at once (about 5 µs in all). f must be open
// read-only. supported is false where leases are not available (a file
// system without them: EINVAL, ENOLCK; not the file's owner and no
// CAP_LEASE: EACCES, EPERM); err then says why and the caller falls back
// to comparing fstat.
func WriterActive(f *os.File) (active, supported bool, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return false, false, err
	}
	var lerr error
	if cerr := rc.Control(func(fd uintptr) {
		_, lerr = unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_RDLCK)
		if lerr == nil {
			_, lerr = unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_UNLCK)
			if lerr != nil {
				lerr = fmt.Errorf("releasing the read lease: %w", lerr)
			}
		}
	}); cerr != nil {
		return false, false, cerr
	}
	switch {
	case lerr == nil:
		return false, true, nil
	case errors.Is(lerr, unix.EAGAIN), errors.Is(lerr, unix.EBUSY):
		return true, true, nil
	case errors.Is(lerr, unix.EINVAL), errors.Is(lerr, unix.ENOLCK), errors.Is(lerr, unix.EACCES), errors.Is(lerr, unix.EPERM):
		return false, false, fmt.Errorf("file leases unavailable (%w): not the file's owner and no CAP_LEASE, or the file system has none", lerr)
	}
	return false, true, &os.PathError{Op: "fcntl F_SETLEASE", Path: f.Name(), Err: lerr}
}
