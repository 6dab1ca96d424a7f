package daemon

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"

	"github.com/camftpd/camftpd/queue"
	"github.com/camftpd/camftpd/transfer"
)

// The opening and identity checks of capture files, shared by the watcher
// (watcher.go, rescan.go, backlog.go) and the workers (localfile.go).

// openQueued opens capture c under root once for an attempt
// (transfer.OpenCapture: no symbolic link followed, a FIFO does not block,
// only a regular file) and checks through the descriptor that it still
// holds the capture queued: same size and, unless size, modification
// time and inode all match the queued ones, the same fingerprint read
// through it. When it holds another file (same false) f stays open; on
// error f is nil.
func openQueued(root string, c queue.Capture) (f *os.File, st os.FileInfo, same bool, err error) {
	f, st, err = transfer.OpenCapture(root, c.Rel)
	if err != nil {
		return nil, nil, false, err
	}
	if same, err = isCapture(f, st, c); err != nil {
		f.Close()
		return nil, nil, false, err
	}
	return f, st, same, nil
}

// isCapture says whether the open file f (fstat st) is capture c.
func isCapture(f *os.File, st os.FileInfo, c queue.Capture) (bool, error) {
	if st.Size() != c.Size {
		return false, nil
	}
	if st.ModTime().Equal(c.ModTime) && c.Inode != 0 && inodeOf(st) == c.Inode {
		return true, nil
	}
	// Another inode (a file put in its place, a card mounted again) or
	// another time (a FAT card under another time zone offset): the
	// content decides.
	fp, err := queue.Fingerprint(f, st.Size())
	if err != nil {
		return false, err
	}
	return bytes.Equal(fp, c.Fingerprint), nil
}

// openNoFollow opens the file p for reading as OpenCapture does (no
// symbolic link followed at p, a FIFO does not block, only a regular file):
// for the watcher's, rescan's and backlog's fingerprint reads.
func openNoFollow(p string) (*os.File, error) {
	f, _, err := transfer.OpenCapture(filepath.Dir(p), filepath.Base(p))
	return f, err
}

func inodeOf(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Ino)
	}
	return 0
}

func nlinkOf(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Nlink)
	}
	return 1
}
