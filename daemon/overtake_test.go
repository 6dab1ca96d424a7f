package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// otEvents records a daemon's events, in order, until the test ends.
type otEvents struct {
	mu  sync.Mutex
	evs []Event
}

func recordEvents(t *testing.T, d *Daemon) *otEvents {
	l := &otEvents{}
	events, stop := d.Subscribe()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case e := <-events:
				l.mu.Lock()
				l.evs = append(l.evs, e)
				l.mu.Unlock()
			case <-quit:
				return
			}
		}
	}()
	t.Cleanup(func() {
		stop()
		close(quit)
		<-done
	})
	return l
}

// find returns the first event of type typ for file (base name), and its index.
func (l *otEvents) find(typ, file string) (Event, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range l.evs {
		if e.Type == typ && filepath.Base(e.File) == file {
			return e, i
		}
	}
	return Event{}, -1
}

func (l *otEvents) has(typ, file string) bool { _, i := l.find(typ, file); return i >= 0 }

// sentOver reports whether a progress event of file shows more than n bytes sent.
func (l *otEvents) sentOver(file string, n int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.evs {
		if e.Type == "progress" && filepath.Base(e.File) == file && e.Sent > n {
			return true
		}
	}
	return false
}

// doneOrder lists the files done, in order.
func (l *otEvents) doneOrder() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.evs {
		if e.Type == "done" {
			out = append(out, filepath.Base(e.File))
		}
	}
	return out
}

// placeCapture writes a capture under a hidden name and renames it into
// place: the watcher never sees it half written (under -race a slow
// writer outlasts the tests' 50 ms settle window, and a capture queued
// early is regrown, which restarts its upload from 0 by design).
func placeCapture(t *testing.T, path string, size int, seed uint64) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".part")
	writeCapture(t, tmp, size, seed)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// checkOvertaken asserts what overtaking promises for a large upload big
// overtaken by the still small: big was paused for small, small finished
// first, big was resumed from an offset > 0 (no restart from 0) that the
// pause had reached, its attempt was not counted, and the status showed
// the pause while it lasted (paused, seen by the caller).
func checkOvertaken(t *testing.T, d *Daemon, l *otEvents, big, small string) (resumed int64) {
	t.Helper()
	p, pi := l.find("paused", big)
	if pi < 0 {
		t.Fatalf("%s was not paused for %s; done order %v", big, small, l.doneOrder())
	}
	if want := "overtaken by 100TEST/" + small; p.Reason != want || p.State != "paused: "+want {
		t.Errorf("paused event: reason %q state %q, want %q", p.Reason, p.State, want)
	}
	_, si := l.find("start", small)
	_, sd := l.find("done", small)
	bd, bi := l.find("done", big)
	if si < pi || sd < 0 || bi < 0 || sd > bi {
		t.Fatalf("order: %s paused at event %d, %s started at %d and done at %d, %s done at %d; want the still started after the pause and done first",
			big, pi, small, si, sd, big, bi)
	}
	if bd.Resumed <= 0 || bd.Resumed > p.Sent {
		t.Fatalf("%s done with resumed_from %d, paused at %d sent: want a resume with REST from 0 < offset <= sent", big, bd.Resumed, p.Sent)
	}
	items, err := d.Queue().List()
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if filepath.Base(it.Capture.Rel) == big && it.Attempts != 1 {
			t.Errorf("%s: %d attempts recorded, want 1 (a pause is no failed attempt)", big, it.Attempts)
		}
	}
	queued, _ := l.find("queued", small)
	start, _ := l.find("start", small)
	t.Logf("%s paused at %d bytes, resumed from %d; %s queued -> upload start %v", big, p.Sent, bd.Resumed, small, start.Time.Sub(queued.Time))
	return bd.Resumed
}

// TestOvertakeMovie: with the only worker busy on a movie, a JPEG that
// arrives pauses it (in-process server, throttled to 4 MB/s): the JPEG is
// done first, the movie resumes with REST from where the server stopped,
// the server holds both files byte-identical, and no byte is stored twice.
// The status, read without pause by a second client, shows the paused
// movie while the server holds the JPEG (it forgot the pause when read
// between the pause and the queue's release: 3 runs in 6 failed so).
func TestOvertakeMovie(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.server().SetFaults(ftpstest.Faults{DataRate: 4 << 20})
	cfg := e.writeConfig("50ms", 1)
	d, _, _ := startDaemon(t, cfg, testLogger(t))
	l := recordEvents(t, d)
	const movie, shot = 12 << 20, 1 << 20
	placeCapture(t, filepath.Join(e.media, "100TEST", "C0001.MP4"), movie, 1)
	waitFor(t, 20*time.Second, "the movie upload under way", func() bool { return l.sentOver("C0001.MP4", 1<<20) })
	// The server holds the JPEG at half until the test has seen the pause
	// in the status (the JPEG alone takes 0.25 s: a poll under QEMU can
	// miss that window); the movie's STOR, opened before, goes on.
	e.server().SetFaults(ftpstest.Faults{DataRate: 4 << 20, Stall: true, StallNew: true, StallAfterBytes: shot / 2})
	// A client reading the status without pause while the movie is paused
	// and released must not make the status forget the pause.
	polling, polled := make(chan struct{}), make(chan struct{})
	stopPolling := sync.OnceFunc(func() { close(polling); <-polled })
	defer stopPolling()
	go func() {
		defer close(polled)
		for {
			select {
			case <-polling:
				return
			default:
				d.Status()
			}
		}
	}()
	placeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), shot, 2)
	waitFor(t, 10*time.Second, "the paused movie in the status while the JPEG uploads", func() bool {
		st := d.Status()
		p, up := st.PausedUploads, st.Uploads
		return len(p) == 1 && p[0].File == "100TEST/C0001.MP4" && p[0].State == "paused: overtaken by 100TEST/DSC00001.JPG" &&
			len(up) == 1 && up[0].File == "100TEST/DSC00001.JPG"
	})
	stopPolling()
	e.server().SetFaults(ftpstest.Faults{DataRate: 4 << 20})
	waitAllDone(t, d, 2, 30*time.Second)
	resumed := checkOvertaken(t, d, l, "C0001.MP4", "DSC00001.JPG")
	verifyArrived(t, e.media, e.root)
	st := e.server().Stats()
	if st.BytesReceived != movie+shot {
		t.Errorf("server stored %d bytes, want %d: a byte was sent twice", st.BytesReceived, movie+shot)
	}
	if !slices.Contains(st.Commands, "REST "+strconv.FormatInt(resumed, 10)) {
		t.Errorf("no REST %d in the server's commands", resumed)
	}
	if len(d.Status().PausedUploads) != 0 {
		t.Errorf("status still shows paused uploads after the resume: %+v", d.Status().PausedUploads)
	}
}

// TestOvertakeMovieVsftpd is TestOvertakeMovie against vsftpd (throttled
// with local_max_rate): vsftpd keeps the aborted temporary file, the
// resume's REST is in its log, and the file is byte-identical.
func TestOvertakeMovieVsftpd(t *testing.T) {
	t.Parallel()
	rig := vsftpdDaemonConfig(t, ftpstest.RealOptions{Extra: []string{"local_max_rate=4000000"}},
		"workers = 1\nlog_level = \"debug\"", "timeout = \"5s\"\nconnect_timeout = \"3s\"")
	r, media, cfg := rig.r, rig.media, rig.cfg
	d, _, _ := startDaemon(t, cfg, testLogger(t))
	l := recordEvents(t, d)
	placeCapture(t, filepath.Join(media, "100TEST", "C0001.MP4"), 12<<20, 1)
	waitFor(t, 20*time.Second, "the movie upload under way", func() bool { return l.sentOver("C0001.MP4", 1<<20) })
	placeCapture(t, filepath.Join(media, "100TEST", "DSC00001.JPG"), 300<<10, 2)
	waitAllDone(t, d, 2, 30*time.Second)
	resumed := checkOvertaken(t, d, l, "C0001.MP4", "DSC00001.JPG")
	verifyArrived(t, media, r.Root)
	if log := r.LogText(); !strings.Contains(log, "REST "+strconv.FormatInt(resumed, 10)) {
		t.Errorf("vsftpd's log has no REST %d", resumed)
	}
}

// TestOvertakeRawJPEG: with one worker busy on a RAW file, a JPEG pauses
// it under raw_jpeg = "jpeg-first" (the RAW is back-filled after it), and
// does not under "both" (a still never pauses a still of its rank).
func TestOvertakeRawJPEG(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"jpeg-first", "both"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.server().SetFaults(ftpstest.Faults{DataRate: 4 << 20})
			e.extra = fmt.Sprintf("raw_jpeg = %q", mode)
			cfg := e.writeConfig("50ms", 1)
			d, _, _ := startDaemon(t, cfg, testLogger(t))
			l := recordEvents(t, d)
			placeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.ARW"), 6<<20, 1)
			waitFor(t, 20*time.Second, "the RAW upload under way", func() bool { return l.sentOver("DSC00001.ARW", 512<<10) })
			placeCapture(t, filepath.Join(e.media, "100TEST", "DSC00002.JPG"), 300<<10, 2)
			waitAllDone(t, d, 2, 30*time.Second)
			verifyArrived(t, e.media, e.root)
			if mode == "jpeg-first" {
				checkOvertaken(t, d, l, "DSC00001.ARW", "DSC00002.JPG")
				return
			}
			if l.has("paused", "DSC00001.ARW") {
				t.Fatalf("raw_jpeg = \"both\": the RAW was paused for a JPEG (same rank)")
			}
			if got := l.doneOrder(); !slices.Equal(got, []string{"DSC00001.ARW", "DSC00002.JPG"}) {
				t.Fatalf("done order %v, want the RAW first (not overtaken)", got)
			}
		})
	}
}

// TestOvertakeBurstJPEGFirst: under raw_jpeg = "jpeg-first" with one
// worker, a burst of RAW+JPEG pairs (RAW written first) sends every JPEG
// before any RAW is done: the RAW under way is paused for the JPEGs and
// the RAW files are back-filled.
func TestOvertakeBurstJPEGFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.server().SetFaults(ftpstest.Faults{DataRate: 2 << 20}) // a RAW takes 1.5 s: the burst is written meanwhile
	e.extra = `raw_jpeg = "jpeg-first"`
	cfg := e.writeConfig("50ms", 1)
	d, _, _ := startDaemon(t, cfg, testLogger(t))
	l := recordEvents(t, d)
	for i := range 4 {
		placeCapture(t, filepath.Join(e.media, "100TEST", fmt.Sprintf("DSC%05d.ARW", i)), 3<<20, uint64(2*i))
		time.Sleep(100 * time.Millisecond) // the camera writes the RAW, then the JPEG
		placeCapture(t, filepath.Join(e.media, "100TEST", fmt.Sprintf("DSC%05d.JPG", i)), 200<<10, uint64(2*i+1))
	}
	waitAllDone(t, d, 8, 60*time.Second)
	verifyArrived(t, e.media, e.root)
	order := l.doneOrder()
	lastJPEG, firstRAW := -1, len(order)
	for i, f := range order {
		if strings.HasSuffix(f, ".JPG") {
			lastJPEG = i
		} else if i < firstRAW {
			firstRAW = i
		}
	}
	if lastJPEG > firstRAW {
		t.Fatalf("done order %v: a RAW was done before a JPEG", order)
	}
	if !l.has("paused", "DSC00000.ARW") {
		t.Fatalf("the first RAW was not paused for the JPEGs; done order %v", order)
	}
}

// TestOvertakeProtected: a protected still (read-only, the camera's
// "protect") overtakes an unprotected still under way; it is ranked first.
func TestOvertakeProtected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.server().SetFaults(ftpstest.Faults{DataRate: 4 << 20})
	cfg := e.writeConfig("50ms", 1)
	d, _, _ := startDaemon(t, cfg, testLogger(t))
	l := recordEvents(t, d)
	placeCapture(t, filepath.Join(e.media, "100TEST", "DSC00001.JPG"), 12<<20, 1)
	waitFor(t, 20*time.Second, "the first JPEG under way", func() bool { return l.sentOver("DSC00001.JPG", 1<<20) })
	p := filepath.Join(e.media, "100TEST", "DSC00002.JPG")
	tmp := filepath.Join(e.media, "100TEST", ".DSC00002.JPG.part")
	writeCapture(t, tmp, 300<<10, 2)
	if err := os.Chmod(tmp, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	waitAllDone(t, d, 2, 30*time.Second)
	checkOvertaken(t, d, l, "DSC00001.JPG", "DSC00002.JPG")
	verifyArrived(t, e.media, e.root)
}
