package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"time"
)

var toolColors = map[string]color.RGBA{
	toolCamftpd:  {0xd6, 0x27, 0x28, 0xff}, // red
	toolCurl:     {0x1f, 0x77, 0xb4, 0xff}, // blue
	toolCurl12:   {0x17, 0xbe, 0xcf, 0xff}, // cyan
	toolMirror:   {0x2c, 0xa0, 0x2c, 0xff}, // green
	toolPut:      {0xff, 0x7f, 0x0e, 0xff}, // orange
	toolNaive:    {0x94, 0x67, 0xbd, 0xff}, // purple
	toolCamftpd4: {0x8c, 0x1a, 0x1a, 0xff}, // dark red
	"(fallback)": {0x55, 0x55, 0x55, 0xff},
}

// series is one tool's burst timeline: files complete vs time since drop.
type series struct {
	Tool  string
	Times []time.Duration
}

// writePlot draws the burst timelines of (b) and (d) (files complete on the
// server vs seconds since the drop, median run of each tool) as one PNG.
func (r *results) writePlot(path string) error {
	var panels []panel
	for _, w := range r.Workloads {
		if w.Key != "b" && w.Key != "d" {
			continue
		}
		p := panel{Title: w.Title, Files: len(w.Files)}
		if w.Link {
			p.Ideal = float64(w.Bytes) / linkRate
		}
		for _, t := range r.toolsFor(w) {
			if rw := r.rows[key(w.Key, t)]; rw != nil && rw.N > 0 {
				p.Series = append(p.Series, series{Tool: t, Times: rw.Times})
			} else if rw != nil && rw.Failed != "" {
				p.Failed = append(p.Failed, t)
			}
		}
		panels = append(panels, p)
	}
	if len(panels) == 0 {
		return nil
	}
	const W, H = 1400, 560
	img := image.NewRGBA(image.Rect(0, 0, W, H*len(panels)))
	fillRect(img, 0, 0, W, H*len(panels), color.White)
	for i, p := range panels {
		p.draw(img, image.Rect(0, i*H, W, (i+1)*H))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type panel struct {
	Title  string
	Files  int
	Ideal  float64 // seconds the link needs for the bytes at full rate (0 = none)
	Series []series
	Failed []string // tools with no successful run
}

var (
	black = color.RGBA{0, 0, 0, 0xff}
	grey  = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	dark  = color.RGBA{0x66, 0x66, 0x66, 0xff}
)

func (p panel) draw(img *image.RGBA, b image.Rectangle) {
	left, right, top, bottom := b.Min.X+90, b.Max.X-340, b.Min.Y+70, b.Max.Y-70
	drawText(img, b.Min.X+20, b.Min.Y+16, 2, p.Title, black)
	drawText(img, left-60, top-24, 2, "files complete on the server (median run)", dark)
	maxT := p.Ideal
	for _, s := range p.Series {
		if n := len(s.Times); n > 0 {
			maxT = math.Max(maxT, s.Times[n-1].Seconds())
		}
	}
	xStep := niceStep(maxT, 10)
	xMax := math.Ceil(maxT/xStep) * xStep
	if xMax <= 0 {
		xMax = 1
	}
	yStep := math.Max(1, niceStep(float64(p.Files), 8))
	yMax := math.Ceil(float64(p.Files)/yStep) * yStep
	px := func(t float64) int { return left + int(t/xMax*float64(right-left)) }
	py := func(n float64) int { return bottom - int(n/yMax*float64(bottom-top)) }
	// grid and ticks
	for v := 0.0; v <= xMax+1e-9; v += xStep {
		x := px(v)
		fillRect(img, x, top, 1, bottom-top, grey)
		lbl := trimFloat(v)
		drawText(img, x-textWidth(lbl, 2)/2, bottom+10, 2, lbl, black)
	}
	for v := 0.0; v <= yMax+1e-9; v += yStep {
		y := py(v)
		fillRect(img, left, y, right-left, 1, grey)
		lbl := trimFloat(v)
		drawText(img, left-12-textWidth(lbl, 2), y-7, 2, lbl, black)
	}
	fillRect(img, left, top, 2, bottom-top, black)
	fillRect(img, left, bottom, right-left, 2, black)
	drawText(img, (left+right)/2-textWidth("seconds since drop", 2)/2, bottom+38, 2, "seconds since drop", black)
	if p.Ideal > 0 {
		// the link at full rate: a dashed line from 0 to all files
		x1, y1 := px(p.Ideal), py(float64(p.Files))
		steps := 60
		for i := 0; i < steps; i += 2 {
			xa := left + (x1-left)*i/steps
			ya := bottom + (y1-bottom)*i/steps
			xb := left + (x1-left)*(i+1)/steps
			yb := bottom + (y1-bottom)*(i+1)/steps
			line(img, xa, ya, xb, yb, 1, dark)
		}
	}
	for _, s := range p.Series {
		c, ok := toolColors[s.Tool]
		if !ok {
			c = toolColors["(fallback)"]
		}
		w := 1
		if s.Tool == toolCamftpd || s.Tool == toolCamftpd4 {
			w = 2
		}
		x0, y0 := px(0), py(0)
		for i, t := range s.Times {
			x := px(t.Seconds())
			line(img, x0, y0, x, y0, w, c) // flat until the next file completes
			y := py(float64(i + 1))
			line(img, x, y0, x, y, w, c)
			x0, y0 = x, y
		}
	}
	// legend, right of the plot
	lx, ly := right+30, top+10
	for _, s := range p.Series {
		c, ok := toolColors[s.Tool]
		if !ok {
			c = toolColors["(fallback)"]
		}
		fillRect(img, lx, ly+4, 30, 6, c)
		last := ""
		if n := len(s.Times); n > 0 {
			last = fmt.Sprintf(" %.1f s", s.Times[n-1].Seconds())
		}
		drawText(img, lx+40, ly, 2, s.Tool+last, black)
		ly += 24
	}
	if p.Ideal > 0 {
		for i := 0; i < 30; i += 6 {
			fillRect(img, lx+i, ly+6, 3, 2, dark)
		}
		drawText(img, lx+40, ly, 2, fmt.Sprintf("link at 100%% %.1f s", p.Ideal), black)
		ly += 24
	}
	for _, t := range p.Failed {
		drawText(img, lx+40, ly, 2, t+" failed", dark)
		ly += 24
	}
}

// line draws a straight line w pixels thick.
func line(img *image.RGBA, x0, y0, x1, y1, w int, c color.Color) {
	dx, dy := x1-x0, y1-y0
	n := max(abs(dx), abs(dy))
	if n == 0 {
		fillRect(img, x0, y0, w, w, c)
		return
	}
	for i := 0; i <= n; i++ {
		fillRect(img, x0+dx*i/n, y0+dy*i/n, w, w, c)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// niceStep is a 1, 2 or 5 times a power of ten giving at most n steps.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%g", math.Round(v*100)/100)
}
