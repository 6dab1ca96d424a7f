package daemon

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/camftpd/camftpd/queue"
)

// rescan adds watches for every directory and reconciles every folder's
// listing with the queue (queue.ScanDir), one folder at a time, so that
// memory follows the largest folder, not the card: a folder whose listing
// is as it was when all its captures were known costs no file read and no
// per-file lookup; a file the queue does not know is considered as new.
// Shots the queue knows from an earlier mount (another inode, mount point or
// time zone) are recognised by size and content fingerprint. After a scan
// that found captures, the history of folders that are gone is marked
// absent.
//
// It stops between two folders, and between two captures of a folder, when
// the watcher's context ends (SIGTERM during the first scan of a large
// card), and then reports false: what it queued is queued, folders it did
// not reach are left as they were (none is marked gone), and the next
// rescan goes on from the queue's state.
func (w *watcher) rescan(why string) (complete bool) {
	w.rescans.Add(1)
	sc := &scan{w: w, seen: map[string]bool{}}
	sc.dir(w.root)
	if w.stopped() {
		w.log.Info("rescan stopped before its end; the next one goes on", "why", why, "files", sc.files, "unknown", sc.unknown)
		return false
	}
	if sc.files > 0 {
		if err := w.q.DirsGone(sc.seen); err != nil {
			w.log.Warn("cannot record folders gone from the card", "err", err)
		}
	}
	w.log.Debug("rescanned media directory", "why", why, "files", sc.files, "unknown", sc.unknown)
	return true
}

// stopped reports whether the watcher's context ended (a scan stops).
func (w *watcher) stopped() bool { return w.ctx != nil && w.ctx.Err() != nil }

// scan is one rescan's walk.
type scan struct {
	w              *watcher
	seen           map[string]bool // folders (relative) that held captures
	files, unknown int
}

// dir watches abs, reconciles its captures and descends into its folders.
func (sc *scan) dir(abs string) {
	w := sc.w
	if w.stopped() {
		return
	}
	if err := w.fw.Add(abs); err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.log.Warn("cannot watch directory", "dir", abs, "err", err)
	}
	rel := ""
	if abs != w.root {
		rel, _ = w.rel(abs)
	}
	files, subdirs, err := sc.list(abs)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			w.log.Warn("cannot list directory", "dir", abs, "err", err)
		}
		return
	}
	// Every folder is reconciled, an emptied one too: its shots are gone
	// from the card (history absent, dropped in time).
	sc.seen[rel] = true
	sc.files += len(files)
	sc.reconcile(abs, rel, files)
	for _, d := range subdirs {
		sc.dir(d)
	}
}

// list reads folder abs in batches (a 10,000-shot folder is not held as
// 10,000 directory entries at once) and returns its wanted captures and
// its subfolders.
func (sc *scan) list(abs string) (files []queue.FileInfo, subdirs []string, err error) {
	d, err := os.Open(abs)
	if err != nil {
		return nil, nil, err
	}
	defer d.Close()
	for {
		batch, err := d.ReadDir(512)
		for _, e := range batch {
			switch {
			case e.IsDir():
				if !strings.HasPrefix(e.Name(), ".") {
					subdirs = append(subdirs, filepath.Join(abs, e.Name()))
				}
			case e.Type().IsRegular():
				if f, ok := sc.capture(abs, e); ok {
					files = append(files, f)
				}
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(batch) == 0) {
			return files, subdirs, nil
		}
		if err != nil {
			return files, subdirs, err
		}
	}
}

// capture describes entry e of abs for ScanDir, if it is a wanted capture
// that is not settling.
func (sc *scan) capture(abs string, e fs.DirEntry) (queue.FileInfo, bool) {
	w := sc.w
	p := filepath.Join(abs, e.Name())
	rel, ok := w.rel(p)
	if !ok || !w.match.wanted(rel) {
		return queue.FileInfo{}, false
	}
	w.probeLeases(p) // once a folder: its completion mode
	if _, busy := w.pending[p]; busy {
		return queue.FileInfo{}, false
	}
	st, err := e.Info()
	if err != nil || !st.Mode().IsRegular() {
		return queue.FileInfo{}, false
	}
	return queue.FileInfo{Name: path.Base(rel), Size: st.Size(), ModTime: st.ModTime()}, true
}

// reconcile hands one folder's listing to the queue and considers the
// captures it does not know.
func (sc *scan) reconcile(abs, rel string, files []queue.FileInfo) {
	w := sc.w
	idx, err := w.q.ScanDir(rel, files, func(name string) ([]byte, error) {
		return fingerprintFile(filepath.Join(abs, name))
	})
	if err != nil {
		w.log.Error("cannot reconcile a media folder with the queue; its files are considered one by one", "dir", rel, "err", err)
		idx = idx[:0]
		for i := range files {
			idx = append(idx, i)
		}
	}
	for _, i := range idx {
		if w.stopped() {
			return
		}
		sc.unknown++
		w.consider(filepath.Join(abs, files[i].Name))
	}
}
