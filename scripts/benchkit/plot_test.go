package main

import (
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWritePlot draws the two burst panels from made-up runs and checks the
// PNG: one 1400x560 panel per workload, each tool's line in its colour,
// nothing for a workload without runs.
func TestWritePlot(t *testing.T) {
	files := make([]srcFile, 10)
	burst := &workload{Key: "b", Title: "(b) burst of 10 files", Files: files, Tools: []string{toolCamftpd, toolCurl}}
	link := &workload{Key: "d", Title: "(d) burst of 4 files over the link", Files: files[:4], Link: true, Bytes: 40_000_000,
		Tools: []string{toolCamftpd, toolCurl, toolCurl12}}
	r := &results{Workloads: []*workload{burst, link}}
	steps := func(n int, every time.Duration) []time.Duration {
		var ts []time.Duration
		for i := 1; i <= n; i++ {
			ts = append(ts, time.Duration(i)*every)
		}
		return ts
	}
	r.Runs_ = []runResult{
		{Work: "b", Tool: toolCamftpd, Wall: 5 * time.Second, Times: steps(10, 500*time.Millisecond)},
		{Work: "b", Tool: toolCurl, Wall: 20 * time.Second, Times: steps(10, 2*time.Second)},
		{Work: "d", Tool: toolCamftpd, Wall: 4 * time.Second, Times: steps(4, time.Second)},
		{Work: "d", Tool: toolCurl12, Wall: 8 * time.Second, Times: steps(4, 2*time.Second)},
	}
	r.fail("d", toolCurl, errors.New("550 upload lost"))
	r.summarize()

	path := filepath.Join(t.TempDir(), "plot", "burst.png")
	if err := r.writePlot(path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the plot is not a PNG: %v", err)
	}
	if got, want := img.Bounds().Size(), image.Pt(1400, 2*560); got != want {
		t.Errorf("size %v, want %v (two panels of 1400x560)", got, want)
	}
	top := image.Rect(0, 0, 1400, 560)
	bottom := image.Rect(0, 560, 1400, 1120)
	for _, c := range []struct {
		tool string
		in   image.Rectangle
	}{{toolCamftpd, top}, {toolCurl, top}, {toolCamftpd, bottom}, {toolCurl12, bottom}} {
		if n := countColor(img, c.in, toolColors[c.tool]); n < 50 {
			t.Errorf("%s: %d pixels of its colour in %v, want a line", c.tool, n, c.in)
		}
	}
	if n := countColor(img, bottom, toolColors[toolCurl]); n != 0 {
		t.Errorf("curl failed on (d) but %d pixels of its colour are in the panel", n)
	}
	if path2 := filepath.Join(t.TempDir(), "none.png"); (&results{}).writePlot(path2) != nil {
		t.Error("no workloads: writePlot failed")
	} else if _, err := os.Stat(path2); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no workloads: a plot was written (%v)", err)
	}
}

func countColor(img image.Image, in image.Rectangle, want color.RGBA) int {
	n := 0
	for y := in.Min.Y; y < in.Max.Y; y++ {
		for x := in.Min.X; x < in.Max.X; x++ {
			if color.RGBAModel.Convert(img.At(x, y)) == want {
				n++
			}
		}
	}
	return n
}

func TestTicks(t *testing.T) {
	for _, c := range []struct {
		tk     ticks
		lo, hi float64
		want   []string
	}{
		{ticks{n: 10}, 0, 9.49, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
		{ticks{n: 10}, 0, 68.1, []string{"0", "10", "20", "30", "40", "50", "60"}},
		{ticks{n: 10}, 0, 0.3, []string{"0", "0.05", "0.1", "0.15", "0.2", "0.25", "0.3"}},
		{ticks{n: 8, minStep: 1}, 0, 3, []string{"0", "1", "2", "3"}},
		{ticks{n: 8, minStep: 1}, 0, 300, []string{"0", "50", "100", "150", "200", "250", "300"}},
	} {
		var got []string
		for _, tk := range c.tk.Ticks(c.lo, c.hi) {
			got = append(got, tk.Label)
		}
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%+v on [%g, %g]: %v, want %v", c.tk, c.lo, c.hi, got, c.want)
		}
	}
}
