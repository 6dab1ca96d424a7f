//go:build !linux

package transfer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrRefused: see localfile_linux.go.
var ErrRefused = errors.New("refused")

// ErrStillWriting: see localfile_linux.go.
var ErrStillWriting = errors.New("local file still being written")

// OpenCapture without openat: refuses a symbolic link at the file itself
// (Lstat) and a non-regular file (fstat); a symbolic link on a folder of the
// path is not detected here. camftpd runs on Linux; this is for tests on
// other systems.
func OpenCapture(root, rel string) (*os.File, os.FileInfo, error) {
	for _, p := range strings.Split(rel, "/") {
		if p == "" || p == "." || p == ".." {
			return nil, nil, fmt.Errorf("%s: %w: path leaves the media folder", rel, ErrRefused)
		}
	}
	p := filepath.Join(root, filepath.FromSlash(rel))
	if st, err := os.Lstat(p); err != nil {
		return nil, nil, err
	} else if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: %w: not a regular file", rel, ErrRefused)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s: %w: not a regular file", rel, ErrRefused)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, st, nil
}

func openLocal(p string) (*os.File, os.FileInfo, error) {
	return OpenCapture(filepath.Dir(p), filepath.Base(p))
}

// WriterActive: leases are Linux's; elsewhere the caller compares fstat.
func WriterActive(f *os.File) (active, supported bool, err error) {
	return false, false, errors.New("file leases are a Linux feature")
}
