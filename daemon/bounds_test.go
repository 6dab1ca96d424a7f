package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// heapInuse is the heap in use after a collection.
func heapInuse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// statusOnly serves the status socket of a daemon that runs nothing else.
func statusOnly(t *testing.T, d *Daemon) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done, err := d.serveStatus(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done })
	return sock
}

// openEvents sends GET /events on a new connection and reads the answer's
// head only.
func openEvents(t *testing.T, sock string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprint(c, "GET /events HTTP/1.1\r\nHost: camftpd\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, br, resp
}

// TestEventsSlowSubscribersDropped: 500 subscribers that never read. Only
// maxEventStreams are accepted (503 for the rest); 20,000 events are
// published without blocking; the heap grows by less than 8 MiB (the
// unbounded hub kept 256 events for each of the 500: about 27 MiB); every
// accepted stream, once read, ends with a "dropped" line.
func TestEventsSlowSubscribersDropped(t *testing.T) {
	d := New(&Config{}, nil)
	sock := statusOnly(t, d)
	before := heapInuse()
	var open []io.ReadCloser // the accepted streams' bodies
	refused := 0
	for i := 0; i < 500; i++ {
		c, _, resp := openEvents(t, sock)
		switch resp.StatusCode {
		case http.StatusOK:
			open = append(open, resp.Body)
		case http.StatusServiceUnavailable:
			refused++
			c.Close()
			resp.Body.Close() // after the connection: it reads nothing more
		default:
			t.Fatalf("subscriber %d: %s", i, resp.Status)
		}
	}
	if len(open) != maxEventStreams || refused != 500-maxEventStreams {
		t.Fatalf("%d accepted, %d refused; want %d and %d", len(open), refused, maxEventStreams, 500-maxEventStreams)
	}
	name := strings.Repeat("x", 200)
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := 0; i < 20000; i++ {
			d.hub.publish(Event{Type: "progress", ID: fmt.Sprint(i), File: name, Sent: int64(i)})
		}
	}()
	select {
	case <-published:
	case <-time.After(within(time.Minute)):
		t.Fatal("publishing 20,000 events did not end within a minute: a subscriber blocks the publisher")
	}
	grew := heapInuse() - before
	t.Logf("heap in use grew by %.1f MiB with %d subscribers that do not read", float64(grew)/(1<<20), len(open))
	if grew > 8<<20 {
		t.Fatalf("heap grew by %.1f MiB, want < 8 MiB", float64(grew)/(1<<20))
	}
	for i, body := range open {
		sc := bufio.NewScanner(body)
		var last Event
		lines := 0
		for sc.Scan() {
			lines++
			if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
				t.Fatalf("stream %d line %d: %v", i, lines, err)
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("stream %d: %v after %d lines", i, err, lines)
		}
		if last.Type != "dropped" || !strings.Contains(last.Error, "behind") {
			t.Fatalf("stream %d ended after %d lines with %+v, want a dropped line", i, lines, last)
		}
		body.Close() // read to its end
	}
	// The slots are free again.
	waitFor(t, 10*time.Second, "the dropped streams unsubscribed", func() bool {
		d.hub.mu.Lock()
		defer d.hub.mu.Unlock()
		return d.hub.streams == 0
	})
	c, _, resp := openEvents(t, sock)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after the drops: %s", resp.Status)
	}
	// The stream does not end: close the connection first, so that closing
	// the body does not wait to read it to its end.
	c.Close()
	resp.Body.Close()
}
