//go:build linux

package transfer

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpenCaptureRefuses: a symbolic link (to a 0600 file of another user
// outside the folder), a folder on the path that is a symbolic link, a
// FIFO (the open does not block), a socket and a path with ".." are
// refused with ErrRefused; a missing file is fs.ErrNotExist; a regular
// file opens.
func TestOpenCaptureRefuses(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	secret := filepath.Join(outside, "shadow")
	if err := os.WriteFile(secret, []byte("root only"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(secret, 65534, 65534); err != nil && !errors.Is(err, unix.EPERM) {
		t.Fatal(err)
	}
	mk := func(rel string) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := os.WriteFile(mk("100CANON/IMG_1.JPG"), []byte("jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, mk("100CANON/LINK.JPG")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, mk("LINKDIR")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(mk("100CANON/FIFO.JPG"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", mk("100CANON/SOCK.JPG"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	for _, rel := range []string{"100CANON/LINK.JPG", "LINKDIR/shadow", "100CANON/FIFO.JPG", "100CANON/SOCK.JPG", "100CANON/../100CANON/IMG_1.JPG"} {
		f, _, err := OpenCapture(root, rel)
		if f != nil {
			f.Close()
		}
		if !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v, want ErrRefused", rel, err)
		}
	}
	if _, _, err := OpenCapture(root, "100CANON/GONE.JPG"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	f, st, err := OpenCapture(root, "100CANON/IMG_1.JPG")
	if err != nil || st.Size() != 4 {
		t.Fatalf("regular file: %v", err)
	}
	f.Close()
}

// TestWriterActive: the lease check sees a writer while it holds the file
// open, and none once it closed it.
func TestWriterActive(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.jpg")
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := OpenCapture(filepath.Dir(p), "a.jpg")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if active, ok, err := WriterActive(r); !active || !ok || err != nil {
		t.Fatalf("writer open: active %v supported %v err %v", active, ok, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if active, ok, err := WriterActive(r); active || !ok || err != nil {
		t.Fatalf("writer closed: active %v supported %v err %v", active, ok, err)
	}
}

// TestUploadRefusesSymlink: Upload given a path that is a symbolic link
// (no Job.File) sends nothing and says ErrRefused.
func TestUploadRefusesSymlink(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	p, _ := localFile(t, 1000)
	link := filepath.Join(t.TempDir(), "IMG_2.JPG")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	_, err := uploadOnce(t, tg.config(t, false), Job{LocalPath: link, Remote: "sl/x.jpg", TempID: "sl1"})
	if ClassOf(err) != Local || !errors.Is(err, ErrRefused) {
		t.Fatalf("upload of a symbolic link: %v, want class Local, ErrRefused", err)
	}
	if _, err := os.Stat(tg.inproc.Path("sl")); err == nil {
		t.Fatal("something was sent for a symbolic link")
	}
}

// TestUploadWriterStillOpen: a capture held open for writing is not sent;
// one that a writer opens during the upload (without writing: size and
// time unchanged) is not renamed into place, its temporary file is kept,
// and once the writer closed it the next upload sends nothing more and
// renames it.
func TestUploadWriterStillOpen(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	p, data := localFile(t, 1<<20)
	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tg.config(t, false)
	res, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: "wo/x.jpg", TempID: "wo1"})
	if !errors.Is(err, ErrStillWriting) || ClassOf(err) != Local || res.DataConns != 0 {
		t.Fatalf("writer open at the start: %v (%d data connections), want ErrStillWriting before sending", err, res.DataConns)
	}
	w.Close()

	var w2 *os.File
	job := Job{LocalPath: p, Remote: "wo/x.jpg", TempID: "wo1", Progress: func(sent, total int64) {
		if w2 == nil && sent > total/2 {
			if w2, err = os.OpenFile(p, os.O_WRONLY, 0); err != nil {
				t.Error(err)
			}
		}
	}}
	_, err = uploadOnce(t, cfg, job)
	if !errors.Is(err, ErrStillWriting) || !strings.Contains(err.Error(), "kept") {
		t.Fatalf("writer opened during the upload: %v, want ErrStillWriting, temporary file kept", err)
	}
	if _, err := os.Stat(tg.inproc.Path("wo/x.jpg")); err == nil {
		t.Fatal("renamed into place while a writer held the file open")
	}
	if _, err := os.Stat(tg.inproc.Path("wo/" + tempPrefix + "wo1" + tempSuffix)); err != nil {
		t.Fatalf("temporary file not kept: %v", err)
	}
	w2.Close()
	job.Progress = nil
	res, err = uploadOnce(t, cfg, job)
	if err != nil || res.DataConns != 0 {
		t.Fatalf("after the writer closed: %v, %d data connections (want 0: the kept temporary file is whole)", err, res.DataConns)
	}
	wantFile(t, tg, "wo/x.jpg", data)
	noTemp(t, tg, "wo")
}
