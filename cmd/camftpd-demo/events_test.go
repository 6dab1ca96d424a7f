package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/camftpd/camftpd/daemon"
)

// TestPrintEventsEscapes: the demo's event lines escape file names and
// server text (CR, LF, ESC, tab, invalid UTF-8): one line per event,
// no raw control byte.
func TestPrintEventsEscapes(t *testing.T) {
	bad := "A\rB\nC\x1b[2JD\tE\xffF.JPG"
	evs := []daemon.Event{
		{Type: "queued", File: bad, Total: 10},
		{Type: "held", File: bad, Reason: "backlog\x1b[31m"},
		{Type: "start", File: bad},
		{Type: "done", File: bad},
		{Type: "retry", File: bad, Error: "451 \x1b]0;x\x07 busy"},
		{Type: "parked", File: bad, Error: "553\r\nno"},
		{Type: "tls", State: "TLS 1.3\n", Error: "\x1b[5m"},
	}
	ch := make(chan daemon.Event)
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		printEvents(ctx, &out, ch)
	}()
	for _, e := range evs {
		ch <- e
	}
	cancel()
	<-done
	s := out.String()
	if !utf8.ValidString(s) {
		t.Fatalf("not valid UTF-8: %q", s)
	}
	for _, r := range s {
		if r != '\n' && unicode.IsControl(r) {
			t.Fatalf("raw %U in %q", r, s)
		}
	}
	if n := strings.Count(s, "\n"); n != len(evs) {
		t.Fatalf("%d lines for %d events:\n%s", n, len(evs), s)
	}
	if !strings.Contains(s, `A\rB\nC\x1b[2JD\tE\xffF.JPG`) {
		t.Fatalf("name not shown escaped:\n%s", s)
	}
}
