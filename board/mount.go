package board

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// MountEvent says whether something is mounted on Path.
type MountEvent struct {
	Path    string
	Mounted bool
}

// mountinfoPath is the file the kernel flags (POLLPRI) on every change of
// the process's mount table.
var mountinfoPath = "/proc/self/mountinfo"

// WatchMount follows whether a filesystem is mounted on path (a card being
// inserted, removed or remounted). It waits in epoll for the kernel's
// POLLPRI on /proc/self/mountinfo, which fires on every mount table change,
// and reads the table again then. The first event is the current state;
// later events only on change. The channel is closed when ctx is done.
func WatchMount(ctx context.Context, path string) (<-chan MountEvent, error) {
	if path == "" || !filepath.IsAbs(path) {
		return nil, fmt.Errorf("board: storage mount %q is not an absolute path: set it to the card's mount point, e.g. /mnt/media", path)
	}
	path = filepath.Clean(path)
	w, err := openMountWatch(path)
	if err != nil {
		return nil, err
	}
	first, err := mounted(path)
	if err != nil {
		w.close()
		return nil, err
	}

	ch := make(chan MountEvent, 1)
	stop := make(chan struct{})    // the watcher ended by itself
	stopped := make(chan struct{}) // the waker is done with the eventfd
	go w.wakeOnDone(ctx, stop, stopped)
	go func() {
		defer func() {
			close(stop)
			<-stopped
			w.close()
			close(ch)
		}()
		w.follow(ctx, ch, MountEvent{Path: path, Mounted: first})
	}()
	return ch, nil
}

// mountWatch is the epoll set WatchMount waits in: the mountinfo fd, which
// the kernel flags on every change of the mount table, and an eventfd that
// ends the wait when ctx is done. Raw fds, not *os.File: the runtime's
// poller must not take them.
type mountWatch struct {
	mi, ep, wake int
	events       [2]unix.EpollEvent
}

// The epoll data of each fd in a mountWatch.
const (
	mountinfoFd = 0
	wakeFd      = 1
)

// openMountWatch opens the mountinfo fd, the epoll set and the eventfd for
// following path, and registers both fds; on an error it closes what it
// opened.
func openMountWatch(path string) (*mountWatch, error) {
	mi, err := unix.Open(mountinfoPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("board: open %s to follow mount %s: %w (is /proc mounted?)", mountinfoPath, path, err)
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		unix.Close(mi)
		return nil, fmt.Errorf("board: epoll for mount events: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(mi)
		unix.Close(ep)
		return nil, fmt.Errorf("board: eventfd for mount events: %w", err)
	}
	w := &mountWatch{mi: mi, ep: ep, wake: wake}
	// Each poll of the mountinfo fd consumes the change it reports, so
	// epoll reports one event per batch of changes, not a level.
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, mi, &unix.EpollEvent{Events: unix.EPOLLPRI | unix.EPOLLERR, Fd: mountinfoFd}); err != nil {
		w.close()
		return nil, fmt.Errorf("board: watch %s: %w", mountinfoPath, err)
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeFd}); err != nil {
		w.close()
		return nil, fmt.Errorf("board: watch eventfd: %w", err)
	}
	return w, nil
}

func (w *mountWatch) close() { unix.Close(w.mi); unix.Close(w.ep); unix.Close(w.wake) }

// wakeOnDone writes the eventfd when ctx is done, which ends the watcher's
// epoll_wait, or returns when the watcher ended by itself (stop). It
// closes stopped once it no longer uses the eventfd.
func (w *mountWatch) wakeOnDone(ctx context.Context, stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	select {
	case <-ctx.Done():
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		// The eventfd stays open until this goroutine ends, so the write
		// can fail only with EAGAIN, when the counter is already at its
		// maximum: a wake-up is pending anyway.
		_, _ = unix.Write(w.wake, one[:])
	case <-stop:
	}
}

// follow sends last, then an event at each change of whether last.Path is
// mounted. It returns when ctx is done, the eventfd wakes it, or epoll or
// the mount table cannot be read.
func (w *mountWatch) follow(ctx context.Context, ch chan<- MountEvent, last MountEvent) {
	if !send(ctx, ch, last) {
		return
	}
	for {
		if changed, err := w.waitChange(); err != nil || !changed {
			return
		}
		m, err := mounted(last.Path)
		if err != nil {
			return
		}
		if m != last.Mounted {
			last.Mounted = m
			if !send(ctx, ch, last) {
				return
			}
		}
	}
}

// waitChange waits in epoll until the mount table changed (true) or the
// eventfd was written (false); err is epoll's error other than EINTR.
func (w *mountWatch) waitChange() (bool, error) {
	for {
		n, err := unix.EpollWait(w.ep, w.events[:], -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, err
		}
		changed := false
		for _, ev := range w.events[:n] {
			if ev.Fd == wakeFd {
				return false, nil
			}
			changed = true
		}
		if changed {
			return true, nil
		}
	}
}

// mounted reads the mount table and reports whether path is a mount point.
func mounted(path string) (bool, error) {
	b, err := os.ReadFile(mountinfoPath)
	if err != nil {
		return false, fmt.Errorf("board: read %s: %w", mountinfoPath, err)
	}
	return mountinfoHas(b, path), nil
}

// mountinfoHas reports whether the mountinfo text lists path as a mount
// point (field 5, with the kernel's octal escapes for space, tab, newline
// and backslash).
func mountinfoHas(b []byte, path string) bool {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		if unescapeMountinfo(f[4]) == path {
			return true
		}
	}
	return false
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			out.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		out.WriteByte(s[i])
	}
	return out.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
