package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var toolColors = map[string]color.RGBA{
	toolCamftpd:  {0xd6, 0x27, 0x28, 0xff}, // red
	toolCurl:     {0x1f, 0x77, 0xb4, 0xff}, // blue
	toolCurl12:   {0x17, 0xbe, 0xcf, 0xff}, // cyan
	toolMirror:   {0x2c, 0xa0, 0x2c, 0xff}, // green
	toolPut:      {0xff, 0x7f, 0x0e, 0xff}, // orange
	toolNaive:    {0x94, 0x67, 0xbd, 0xff}, // purple
	toolCamftpd4: {0x8c, 0x1a, 0x1a, 0xff}, // dark red
}

var (
	fallbackColor = color.RGBA{0x55, 0x55, 0x55, 0xff}
	idealColor    = color.RGBA{0x66, 0x66, 0x66, 0xff}
)

// series is one tool's burst timeline: files complete vs time since drop.
type series struct {
	Tool  string
	Times []time.Duration
}

// panel is one workload's plot.
type panel struct {
	Title  string
	Files  int
	Ideal  float64 // seconds the link needs for the bytes at full rate (0 = none)
	Series []series
	Failed []string // tools with no successful run
}

// Size of one panel: 1400 x 560 pixels at 100 dpi, the right 340 for the
// legend.
const (
	plotDPI     = 100
	panelWidth  = 14 * vg.Inch
	panelHeight = 5.6 * vg.Inch
	legendWidth = 3.4 * vg.Inch
)

// burstPanels collects the timelines of (b) and (d): the median run of
// each tool that succeeded, and the tools that never did.
func (r *results) burstPanels() []panel {
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
	return panels
}

// writePlot draws the burst timelines of (b) and (d) (files complete on the
// server vs seconds since the drop, median run of each tool) as one PNG,
// one panel under the other.
func (r *results) writePlot(path string) error {
	panels := r.burstPanels()
	if len(panels) == 0 {
		return nil
	}
	img := vgimg.NewWith(vgimg.UseWH(panelWidth, panelHeight*vg.Length(len(panels))), vgimg.UseDPI(plotDPI))
	dc := draw.New(img)
	pad := vg.Points(10)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadTop: pad, PadBottom: pad, PadLeft: pad, PadRight: pad, PadY: 2 * pad}
	for i, p := range panels {
		if err := p.draw(tiles.At(dc, 0, i)); err != nil {
			return fmt.Errorf("%s: %w", p.Title, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// draw draws the panel into c: the step lines on the left, the legend (tool,
// last completion; the link at full rate; failed tools) on the right.
func (p panel) draw(c draw.Canvas) error {
	pl := plot.New()
	pl.Title.Text = p.Title
	pl.Title.TextStyle.Font.Size = vg.Points(15)
	pl.X.Label.Text = "seconds since drop"
	pl.Y.Label.Text = "files complete on the server (median run)"
	pl.X.Min, pl.Y.Min, pl.Y.Max = 0, 0, float64(p.Files)
	pl.X.Tick.Marker, pl.Y.Tick.Marker = ticks{n: 10}, ticks{n: 8, minStep: 1}
	pl.Add(plotter.NewGrid())
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	legend.TextStyle.Font.Size = vg.Points(13)
	legend.Padding = vg.Points(5)
	for _, s := range p.Series {
		l, err := stepLine(s)
		if err != nil {
			return err
		}
		pl.Add(l)
		legend.Add(fmt.Sprintf("%s %.1f s", s.Tool, s.Times[len(s.Times)-1].Seconds()), l)
	}
	if p.Ideal > 0 {
		// the link at full rate: a dashed line from 0 to all files
		l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: p.Ideal, Y: float64(p.Files)}})
		if err != nil {
			return err
		}
		l.Color, l.Dashes = idealColor, []vg.Length{vg.Points(4), vg.Points(3)}
		pl.Add(l)
		legend.Add(fmt.Sprintf("link at 100%% %.1f s", p.Ideal), l)
	}
	for _, t := range p.Failed {
		legend.Add(t + " failed")
	}
	pl.Draw(draw.Crop(c, 0, -legendWidth, 0, 0))
	legend.Draw(draw.Crop(c, c.Size().X-legendWidth+vg.Points(20), 0, 0, -vg.Points(30)))
	return nil
}

// stepLine is a tool's timeline: flat until the next file completes, then
// one file up. camftpd's lines are drawn thicker.
func stepLine(s series) (*plotter.Line, error) {
	xy := make(plotter.XYs, 0, len(s.Times)+1)
	xy = append(xy, plotter.XY{})
	for i, t := range s.Times {
		xy = append(xy, plotter.XY{X: t.Seconds(), Y: float64(i + 1)})
	}
	l, err := plotter.NewLine(xy)
	if err != nil {
		return nil, fmt.Errorf("timeline of %s: %w", s.Tool, err)
	}
	l.StepStyle = plotter.PostStep
	l.Color = fallbackColor
	if c, ok := toolColors[s.Tool]; ok {
		l.Color = c
	}
	if s.Tool == toolCamftpd || s.Tool == toolCamftpd4 {
		l.Width = vg.Points(2)
	}
	return l, nil
}

// ticks marks an axis every 1, 2 or 5 times a power of ten, at most n
// steps, each step at least minStep (files come whole).
type ticks struct {
	n       int
	minStep float64
}

func (t ticks) Ticks(lo, hi float64) []plot.Tick {
	step := math.Max(t.minStep, niceStep(hi-lo, t.n))
	var out []plot.Tick
	for i := math.Ceil(lo / step); i*step <= hi+step*1e-9; i++ {
		v := i * step
		out = append(out, plot.Tick{Value: v, Label: tickLabel(v, step)})
	}
	return out
}

// tickLabel prints v with as many decimals as step has ("0.15", not
// 0.15000000000000002), without trailing zeros.
func tickLabel(v, step float64) string {
	dec := max(0, int(-math.Floor(math.Log10(step))))
	l := strconv.FormatFloat(v, 'f', dec, 64)
	if dec > 0 {
		l = strings.TrimRight(strings.TrimRight(l, "0"), ".")
	}
	return l
}

// niceStep is a 1, 2 or 5 times a power of ten giving at most n steps.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}
