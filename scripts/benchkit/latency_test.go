package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestArrivalsStart watches a real folder with inotify while two uploads
// land the way camftpd and curl make them: one written under a temporary
// name in a subfolder and renamed to its final name, one written under its
// final name. The start of each is when its file was created on the
// server, not when it got its final name; an unwanted file has no start.
func TestArrivalsStart(t *testing.T) {
	root := t.TempDir()
	content := []byte(strings.Repeat("x", 1000))
	arr, err := watchArrivals(root, map[string]int64{"A.JPG": 1000, "B.JPG": 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer arr.Close()
	sub := filepath.Join(root, "DCIM")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the watch on the new folder

	before := time.Now()
	tmp := filepath.Join(sub, ".camftpd-42.part")
	if err := os.WriteFile(tmp, content, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	renamedAt := time.Now()
	if err := os.Rename(tmp, filepath.Join(sub, "A.JPG")); err != nil {
		t.Fatal(err)
	}
	bBefore := time.Now()
	if err := os.WriteFile(filepath.Join(root, "B.JPG"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "OTHER.JPG"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := arr.Wait(5*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	starts, got := arr.Starts(), arr.Times()
	a, ok := starts["A.JPG"]
	if !ok {
		t.Fatalf("no start for the renamed upload: %v", starts)
	}
	if a.Before(before) || !a.Before(renamedAt) {
		t.Errorf("A.JPG started %v after the write began, want before the rename (%v after)", a.Sub(before), renamedAt.Sub(before))
	}
	if !got["A.JPG"].After(renamedAt) && !got["A.JPG"].Equal(renamedAt) {
		t.Errorf("A.JPG complete %v before the rename", renamedAt.Sub(got["A.JPG"]))
	}
	b, ok := starts["B.JPG"]
	if !ok || b.Before(bBefore) || b.After(got["B.JPG"]) {
		t.Errorf("B.JPG started at %v (ok %v), want between its write (%v) and its arrival (%v)", b, ok, bBefore, got["B.JPG"])
	}
	if _, ok := starts["OTHER.JPG"]; ok {
		t.Error("a file nobody waits for has a start")
	}
}

// TestLatencyGoals judges made-up single shots: the goals are met or
// missed by camftpd's own figures and by its ratio to curl's, and both
// reports carry the figures, curl's beside them, and the verdicts.
func TestLatencyGoals(t *testing.T) {
	ds := func(ms ...float64) []time.Duration {
		var v []time.Duration
		for _, m := range ms {
			v = append(v, time.Duration(m*float64(time.Millisecond)))
		}
		return v
	}
	curl := latencyResult{Tool: toolCurl, Start: ds(200, 201, 205), Samples: ds(230, 231, 240)}
	for _, c := range []struct {
		name string
		cam  latencyResult
		curl []time.Duration // curl's complete, if not the default
		want []string        // verdict of each goal
	}{
		{"settle window", latencyResult{Tool: toolCamftpd, Start: ds(1001, 1002, 1010), Samples: ds(1020, 1026, 1042)}, nil,
			[]string{"missed", "missed", "missed", "missed"}},
		{"leases", latencyResult{Tool: toolCamftpd, Start: ds(2, 3, 40), Samples: ds(30, 35, 90)}, nil,
			[]string{"met", "met", "met", "met"}},
		{"slow tail", latencyResult{Tool: toolCamftpd, Start: ds(5, 9, 60), Samples: ds(90, 110, 130)}, nil,
			[]string{"met", "missed", "missed", "met"}},
		{"not half of curl's", latencyResult{Tool: toolCamftpd, Start: ds(1, 1, 1), Samples: ds(99, 99, 99)}, ds(150, 160, 170),
			[]string{"met", "met", "met", "missed"}},
	} {
		curl := curl
		if c.curl != nil {
			curl.Samples = c.curl
		}
		r := &results{Latency: []latencyResult{c.cam, curl}, Sizes: quick}
		var got []string
		for _, g := range r.latencyGoals() {
			got = append(got, g.Verdict)
		}
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%s: verdicts %v, want %v", c.name, got, c.want)
		}
		md, txt := r.latencyMarkdown(), r.latencyText()
		for _, s := range []string{
			ms(percentile(c.cam.Start, 50)), ms(percentile(curl.Start, 50)), sec(percentile(c.cam.Samples, 50)),
			"| " + c.want[0] + " |", "| " + c.want[3] + " |",
		} {
			if !strings.Contains(md, s) {
				t.Errorf("%s: markdown lacks %q:\n%s", c.name, s, md)
			}
		}
		if !strings.Contains(txt, strings.ToUpper(c.want[3])) || !strings.Contains(txt, "[curl "+ms(percentile(curl.Start, 99))+"]") {
			t.Errorf("%s: text report lacks the verdict or curl's figure:\n%s", c.name, txt)
		}
	}
	r := &results{Latency: []latencyResult{{Tool: toolCamftpd, Start: ds(1), Samples: ds(50)}}}
	if g := r.latencyGoals()[3]; g.Judged || g.Verdict != "not judged (no run)" {
		t.Errorf("without curl the ratio goal was judged: %+v", g)
	}
}
