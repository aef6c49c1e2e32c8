package benchcore

import (
	"errors"
	"fmt"
	"image/color"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// ErrChart is matched by WriteChart's error for input it cannot draw.
var ErrChart = errors.New("benchcore: cannot draw chart")

// minLatency keeps latencies positive on the chart's log scale.
const minLatency = 0.001 // ms

// WriteChart draws publish→consume latency (P50 dashed, P99 solid, log
// scale) against achieved throughput, one pair of lines per mode joining
// the steps in order of offered rate, and saves it to path as PNG or SVG
// (by extension).
func WriteChart(path, title string, results []Result) error {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".png" && ext != ".svg" {
		return fmt.Errorf("%w: %s: want a .png or .svg file", ErrChart, path)
	}
	if len(results) == 0 {
		return fmt.Errorf("%w: no results", ErrChart)
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "throughput (events/s consumed)"
	p.Y.Label.Text = "publish→consume latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.X.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())

	var modes []string
	for _, r := range results {
		if !slices.Contains(modes, r.Mode) {
			modes = append(modes, r.Mode)
		}
	}
	palette := []color.Color{
		color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // blue
		color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, // red
		color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, // green
	}
	for i, mode := range modes {
		var rs []Result
		for _, r := range results {
			if r.Mode == mode {
				rs = append(rs, r)
			}
		}
		// In the order of the sweep (offered rate, "max" last): past
		// saturation the line turns back on itself, which is the point.
		slices.SortStableFunc(rs, func(a, b Result) int { return cmpOffered(a.OfferedRate, b.OfferedRate) })
		col := palette[i%len(palette)]
		for _, q := range []struct {
			name   string
			pick   func(Latency) float64
			dashed bool
		}{{"P99", func(l Latency) float64 { return l.P99 }, false}, {"P50", func(l Latency) float64 { return l.P50 }, true}} {
			pts := make(plotter.XYs, len(rs))
			for j, r := range rs {
				pts[j] = plotter.XY{X: r.Throughput, Y: max(q.pick(r.EndToEnd), minLatency)}
			}
			line, scatter, err := plotter.NewLinePoints(pts)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrChart, err)
			}
			line.Color, scatter.Color = col, col
			line.Width = vg.Points(1.5)
			scatter.Shape = draw.CircleGlyph{}
			if q.dashed {
				line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			}
			p.Add(line, scatter)
			p.Legend.Add(fmt.Sprintf("%s %s", mode, q.name), line, scatter)
		}
	}
	if err := p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("benchcore: save chart %s: %w", path, err)
	}
	return nil
}

// cmpOffered orders offered rates with 0 (as fast as possible) last.
func cmpOffered(a, b float64) int {
	switch {
	case a == b:
		return 0
	case a == 0:
		return 1
	case b == 0:
		return -1
	case a < b:
		return -1
	}
	return 1
}
