// Command shutter is the emulated camera's timed shutter (scripts/qemu
// build-image installs it as /usr/bin/shutter in the arm64 guest). It
// subscribes to the daemon's /events stream on its status socket, then
// writes COUNT captures PREFIX0001.JPG ... of KB KiB of random bytes into
// DIR the way a camera does (create, 1 MiB writes, fsync, close), taking the
// guest's clock right after close(). It prints, on stdout:
//
//	SYNCED <name> <sha256>     each capture, once written and synced
//	SHOOT-DONE <prefix>        after the last capture
//	DESK <name> <closed> <start> <done>
//	                           each capture: when close() returned and the
//	                           daemon's first start and done events for it,
//	                           in Unix nanoseconds of the guest's clock (0:
//	                           no such event)
//	SHUTTER-DONE <prefix> <done>/<count> [<why>]
//
// It waits up to -wait for a done event of every capture. The driver of
// scripts/qemu (steady scenario) turns the DESK lines into file closed ->
// upload start and file closed -> complete on the server.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

const chunk = 1 << 20 // a camera writes a capture in chunks; 1 MiB here

type options struct {
	prefix, dir, socket string
	count, kb           int
	delay, wait         time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.prefix, "prefix", "DSC", "capture names: PREFIX0001.JPG ...")
	flag.IntVar(&o.count, "count", 1, "captures to write")
	flag.IntVar(&o.kb, "kb", 200, "size of each capture in KiB")
	flag.DurationVar(&o.delay, "delay", 0, "pause after each capture")
	flag.StringVar(&o.dir, "dir", "/media/DCIM/100TEST", "folder the captures go into")
	flag.StringVar(&o.socket, "socket", "/run/camftpd.sock", "the daemon's status socket")
	flag.DurationVar(&o.wait, "wait", 3*time.Minute, "how long to wait for the daemon's done events after the last capture")
	flag.Parse()
	if o.count < 1 || o.kb < 1 || o.prefix == "" {
		fmt.Fprintln(os.Stderr, "shutter: -count and -kb must be at least 1 and -prefix not empty")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "shutter:", err)
		os.Exit(1)
	}
}

// shot is what is known of one capture, on the guest's clock.
type shot struct{ closed, start, done time.Time }

// desk collects the daemon's start and done events of the captures.
type desk struct {
	mu     sync.Mutex
	shots  map[string]*shot
	done   int
	all    chan struct{} // closed when every capture has a done event
	broken error         // the stream ended or dropped us
}

func run(ctx context.Context, o options) error {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	names := make([]string, o.count)
	d := &desk{shots: map[string]*shot{}, all: make(chan struct{})}
	for i := range names {
		names[i] = fmt.Sprintf("%s%04d.JPG", o.prefix, i+1)
		d.shots[names[i]] = &shot{}
	}
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	body, err := subscribe(ectx, o.socket)
	if err != nil {
		return err
	}
	reader := make(chan struct{})
	go func() {
		defer close(reader)
		d.read(body)
	}()
	defer func() { cancel(); body.Close(); <-reader }()

	buf := make([]byte, o.kb<<10)
	for _, n := range names {
		closed, sum, err := writeCapture(filepath.Join(o.dir, n), buf)
		if err != nil {
			return err
		}
		d.mu.Lock()
		d.shots[n].closed = closed
		d.mu.Unlock()
		fmt.Printf("SYNCED %s %s\n", n, sum)
		if err := sleep(ctx, o.delay); err != nil {
			return err
		}
	}
	fmt.Printf("SHOOT-DONE %s\n", o.prefix)
	why := ""
	select {
	case <-d.all:
	case <-reader:
		why = "the event stream ended"
	case <-time.After(o.wait):
		why = fmt.Sprintf("not every capture had a done event within %v", o.wait)
	case <-ctx.Done():
		return ctx.Err()
	}
	cancel()
	body.Close()
	<-reader
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.broken != nil && why != "" {
		why += ": " + d.broken.Error()
	}
	for _, n := range names {
		s := d.shots[n]
		fmt.Printf("DESK %s %d %d %d\n", n, nanos(s.closed), nanos(s.start), nanos(s.done))
	}
	fmt.Printf("SHUTTER-DONE %s %d/%d %s\n", o.prefix, d.done, o.count, why)
	return nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// subscribe opens GET /events on the daemon's status socket and returns the
// stream once its first line (the daemon's state) has come, so that no
// event of a capture written after it can be missed.
func subscribe(ctx context.Context, socket string) (*stream, error) {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", socket)
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://camftpd/events", nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("the daemon's event stream on %s: %w (is the daemon running?)", socket, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("the daemon's event stream on %s: %s", socket, resp.Status)
	}
	s := &stream{sc: bufio.NewScanner(resp.Body), body: resp.Body}
	s.sc.Buffer(make([]byte, 64<<10), 1<<20)
	if !s.sc.Scan() {
		resp.Body.Close()
		return nil, fmt.Errorf("the daemon's event stream on %s ended before its first line: %w", socket, ended(s.sc.Err()))
	}
	return s, nil
}

type stream struct {
	sc   *bufio.Scanner
	body interface{ Close() error }
	once sync.Once
}

func (s *stream) Close() { s.once.Do(func() { _ = s.body.Close() }) }

// event is what the shutter reads of a line of /events (its public JSON).
type event struct {
	Time  time.Time `json:"time"`
	Type  string    `json:"type"`
	File  string    `json:"file"`
	Error string    `json:"error"`
}

// read records the first start and done event of each capture until the
// stream ends.
func (d *desk) read(s *stream) {
	for s.sc.Scan() {
		var e event
		if err := json.Unmarshal(s.sc.Bytes(), &e); err != nil {
			d.fail(fmt.Errorf("an event line is not JSON: %w", err))
			return
		}
		if e.Type == "dropped" {
			d.fail(errors.New("the daemon dropped this subscriber: " + e.Error))
			return
		}
		d.mu.Lock()
		sh, ok := d.shots[path.Base(e.File)]
		switch {
		case !ok:
		case e.Type == "start" && sh.start.IsZero():
			sh.start = e.Time
		case e.Type == "done" && sh.done.IsZero():
			sh.done = e.Time
			d.done++
			if d.done == len(d.shots) {
				close(d.all)
			}
		}
		d.mu.Unlock()
	}
	d.fail(fmt.Errorf("the event stream ended: %w", ended(s.sc.Err())))
}

// ended is why a stream ended: its read error, or the daemon closed it.
func ended(err error) error {
	if err == nil {
		return errors.New("closed by the daemon")
	}
	return err
}

func (d *desk) fail(err error) {
	d.mu.Lock()
	if d.broken == nil {
		d.broken = err
	}
	d.mu.Unlock()
}

// writeCapture writes p as a camera does: create, random content in 1 MiB
// writes, fsync, close; it returns the time close() returned and the
// content's SHA-256. The folder is synced after that time is taken.
func writeCapture(p string, buf []byte) (time.Time, string, error) {
	if _, err := rand.Read(buf); err != nil {
		return time.Time{}, "", err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return time.Time{}, "", err
	}
	for off := 0; off < len(buf); off += chunk {
		if _, err := f.Write(buf[off:min(off+chunk, len(buf))]); err != nil {
			f.Close()
			return time.Time{}, "", err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return time.Time{}, "", err
	}
	if err := f.Close(); err != nil {
		return time.Time{}, "", err
	}
	closed := time.Now()
	dir, err := os.Open(filepath.Dir(p))
	if err != nil {
		return time.Time{}, "", err
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return time.Time{}, "", err
	}
	sum := sha256.Sum256(buf)
	return closed, hex.EncodeToString(sum[:]), nil
}
