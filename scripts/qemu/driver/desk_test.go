package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestParseDesk turns the shutter's DESK lines into time-to-desk figures:
// a line behind a daemon log prefix counts, a capture without a start or
// done event (0) or not printed at all is left out and named, an event
// before the close is refused, and lines of other captures are ignored.
func TestParseDesk(t *testing.T) {
	const c = int64(1_700_000_000_000_000_000)
	ms := int64(time.Millisecond)
	lines := []string{
		"SYNCED A0001.JPG 00",
		"DESK A0001.JPG " + itoa(c) + " " + itoa(c+2*ms) + " " + itoa(c+40*ms),
		"time=... level=DEBUG msg=upload DESK A0002.JPG " + itoa(c) + " " + itoa(c+8*ms) + " " + itoa(c+90*ms),
		"DESK A0003.JPG " + itoa(c) + " 0 0",
		"DESK A0004.JPG " + itoa(c) + " " + itoa(c-ms) + " " + itoa(c+ms),
		"DESK OTHER.JPG " + itoa(c) + " " + itoa(c+ms) + " " + itoa(c+2*ms),
		"DESK A0001.JPG " + itoa(c) + " " + itoa(c+900*ms) + " " + itoa(c+990*ms),
	}
	want := map[string]string{"A0001.JPG": "", "A0002.JPG": "", "A0003.JPG": "", "A0004.JPG": "", "A0005.JPG": ""}
	d := parseDesk(lines, want)
	if len(d.start) != 2 || d.start[0] != 2*time.Millisecond || d.start[1] != 8*time.Millisecond ||
		d.done[0] != 40*time.Millisecond || d.done[1] != 90*time.Millisecond {
		t.Errorf("start %v done %v, want [2ms 8ms] [40ms 90ms]", d.start, d.done)
	}
	if strings.Join(d.missing, " ") != "A0003.JPG A0005.JPG" || strings.Join(d.negative, " ") != "A0004.JPG" {
		t.Errorf("missing %v negative %v, want [A0003.JPG A0005.JPG] [A0004.JPG]", d.missing, d.negative)
	}
	s := d.String()
	for _, part := range []string{"closed->start p50 2.0 ms p99 8.0 ms", "closed->complete p50 0.040 s p99 0.090 s", "3 captures left out"} {
		if !strings.Contains(s, part) {
			t.Errorf("figures %q lack %q", s, part)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
