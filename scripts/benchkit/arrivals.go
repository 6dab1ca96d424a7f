package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// arrivals watches the server's folder (recursively, with inotify) and
// records when each expected file is complete there: closed after writing,
// or renamed into place, with its full size. It judges every tool the same
// way, whatever names or temp files the tool uses. It also records when
// each expected file's upload started on the server: when the file that
// becomes it was created (IN_CREATE, by the server's STOR), under its final
// name or under a temporary name renamed to it later (followed through
// IN_MOVED_FROM/IN_MOVED_TO's cookie).
type arrivals struct {
	f    *os.File
	root string

	mu    sync.Mutex
	want  map[string]int64 // base name -> size
	got   map[string]time.Time
	first time.Time // first file activity on the server (any name)
	// created is when each server-side path was created; started, when
	// the file that became each wanted base name was created; moving, the
	// creation time of a file renamed away, by the rename's cookie.
	created map[string]time.Time
	started map[string]time.Time
	moving  map[uint32]time.Time
	dirs    map[int32]string
	all     chan struct{}
	done    chan struct{}
	errMu   sync.Mutex
	err     error
}

const watchMask = syscall.IN_CLOSE_WRITE | syscall.IN_MOVED_TO | syscall.IN_CREATE | syscall.IN_MOVED_FROM

func watchArrivals(root string, want map[string]int64) (*arrivals, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	a := &arrivals{
		f: os.NewFile(uintptr(fd), "inotify"), root: root, want: want,
		got: map[string]time.Time{}, dirs: map[int32]string{},
		created: map[string]time.Time{}, started: map[string]time.Time{}, moving: map[uint32]time.Time{},
		all: make(chan struct{}), done: make(chan struct{}),
	}
	if len(want) == 0 {
		close(a.all)
	}
	if err := a.addTree(root); err != nil {
		a.f.Close()
		return nil, err
	}
	go a.loop()
	return a, nil
}

func (a *arrivals) addTree(dir string) error {
	wd, err := syscall.InotifyAddWatch(int(a.f.Fd()), dir, watchMask)
	if err != nil {
		return fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	a.mu.Lock()
	a.dirs[int32(wd)] = dir
	a.mu.Unlock()
	// Files and folders made before the watch existed.
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			if err := a.addTree(p); err != nil {
				return err
			}
			continue
		}
		a.check(p, time.Now())
	}
	return nil
}

// check records p as arrived if it is wanted and has its full size.
func (a *arrivals) check(p string, at time.Time) {
	name := filepath.Base(p)
	a.mu.Lock()
	size, ok := a.want[name]
	_, seen := a.got[name]
	a.mu.Unlock()
	if !ok || seen {
		return
	}
	st, err := os.Stat(p)
	if err != nil || st.Size() != size {
		return
	}
	a.mu.Lock()
	if _, seen := a.got[name]; !seen {
		a.got[name] = at
		if len(a.got) == len(a.want) {
			close(a.all)
		}
	}
	a.mu.Unlock()
}

func (a *arrivals) loop() {
	defer close(a.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := a.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				a.setErr(err)
			}
			return
		}
		at := time.Now()
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
			off += syscall.SizeofInotifyEvent + int(ev.Len)
			name := cString(nameBytes)
			if ev.Mask&syscall.IN_Q_OVERFLOW != 0 {
				a.rescan(at)
				continue
			}
			a.mu.Lock()
			dir, ok := a.dirs[ev.Wd]
			a.mu.Unlock()
			if !ok || name == "" {
				continue
			}
			p := filepath.Join(dir, name)
			if ev.Mask&syscall.IN_ISDIR != 0 {
				if ev.Mask&(syscall.IN_CREATE|syscall.IN_MOVED_TO) != 0 {
					if err := a.addTree(p); err != nil {
						a.setErr(err)
					}
				}
				continue
			}
			a.mu.Lock()
			if a.first.IsZero() {
				a.first = at
			}
			a.noteStart(p, ev.Mask, ev.Cookie, at)
			a.mu.Unlock()
			if ev.Mask&(syscall.IN_CLOSE_WRITE|syscall.IN_MOVED_TO) != 0 {
				a.check(p, at)
			}
		}
	}
}

// noteStart follows a file from its creation to its final name (a.mu
// held): a created path keeps its creation time through renames, and a
// wanted base name takes the creation time of the first file that became
// it. A file that was already there when the watch began, or was renamed
// in from outside the watched tree, starts when it showed up.
func (a *arrivals) noteStart(p string, mask, cookie uint32, at time.Time) {
	switch {
	case mask&syscall.IN_CREATE != 0:
		if _, ok := a.created[p]; !ok {
			a.created[p] = at
		}
	case mask&syscall.IN_MOVED_FROM != 0:
		if t, ok := a.created[p]; ok {
			a.moving[cookie] = t
			delete(a.created, p)
		}
		return
	case mask&syscall.IN_MOVED_TO != 0:
		t, ok := a.moving[cookie]
		if !ok {
			t = at
		}
		delete(a.moving, cookie)
		a.created[p] = t
	default:
		if _, ok := a.created[p]; !ok {
			a.created[p] = at
		}
	}
	name := filepath.Base(p)
	if _, want := a.want[name]; want {
		if _, ok := a.started[name]; !ok {
			a.started[name] = a.created[p]
		}
	}
}

func (a *arrivals) rescan(at time.Time) {
	_ = filepath.WalkDir(a.root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			a.check(p, at)
		}
		return nil
	})
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

func (a *arrivals) setErr(err error) {
	a.errMu.Lock()
	if a.err == nil {
		a.err = err
	}
	a.errMu.Unlock()
}

// Wait returns when every wanted file arrived, or an error after timeout
// (listing how many arrived), or early if stop is closed.
func (a *arrivals) Wait(timeout time.Duration, stop <-chan error) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-a.all:
		return nil
	case err := <-stop:
		// The tool ended; give the last files a moment (a rename or close
		// racing the exit), then judge.
		select {
		case <-a.all:
			return nil
		case <-time.After(2 * time.Second):
		}
		a.rescan(time.Now())
		select {
		case <-a.all:
			return nil
		default:
		}
		got, want := a.count()
		if err != nil {
			return fmt.Errorf("%d of %d files arrived; the tool failed: %w", got, want, err)
		}
		return fmt.Errorf("%d of %d files arrived, and the tool exited", got, want)
	case <-t.C:
		got, want := a.count()
		return fmt.Errorf("%d of %d files arrived within %v", got, want, timeout)
	}
}

func (a *arrivals) count() (int, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.got), len(a.want)
}

// First returns when the first file appeared on the server: the start of
// the first transfer, whatever name the tool gives it.
func (a *arrivals) First() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.first
}

// Times returns the arrival time of every file that arrived.
func (a *arrivals) Times() map[string]time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := make(map[string]time.Time, len(a.got))
	for k, v := range a.got {
		m[k] = v
	}
	return m
}

// Starts returns, for every wanted file whose upload was seen starting,
// when the file that became it was created on the server.
func (a *arrivals) Starts() map[string]time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := make(map[string]time.Time, len(a.started))
	for k, v := range a.started {
		m[k] = v
	}
	return m
}

// Add expects one more file (latency runs add files one by one).
func (a *arrivals) Add(name string, size int64) {
	a.mu.Lock()
	a.want[name] = size
	a.mu.Unlock()
}

func (a *arrivals) Close() error {
	err := a.f.Close()
	<-a.done
	a.errMu.Lock()
	defer a.errMu.Unlock()
	if a.err != nil {
		return a.err
	}
	return err
}
