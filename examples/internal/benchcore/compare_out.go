package benchcore

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Metric is one row of a comparison table: a figure of one backend's
// scenario, for every mode.
type Metric struct {
	Backend, Scenario string
	// Name is the row's label, e.g. "Kafka publish, events/s".
	Name string
	// Main rows make the table of issue #14; the others follow it.
	Main bool
	// LowerIsBetter for latencies and CPU.
	LowerIsBetter bool
	// Value reads the figure from a run (or a median).
	Value func(Result) float64
}

var backendNames = map[string]string{BackendKafka: "Kafka", BackendRabbitMQ: "RabbitMQ", BackendMemory: "memory"}

// ModeNames are the column titles of the modes.
var ModeNames = map[string]string{ModeSDK: "SDK", ModeWatermill: "watermill", ModeRaw: "raw client"}

func perEvent(cpu func(Result) float64, events func(Result) int64) func(Result) float64 {
	return func(r Result) float64 {
		if n := events(r); n > 0 {
			return cpu(r) / float64(n) * 1e6
		}
		return 0
	}
}

// Metrics returns the rows of rep's tables: the main ones first, in the
// order of issue #14 (Kafka, RabbitMQ, memory), then the others.
func (rep *ComparisonReport) Metrics() []Metric {
	var main, more []Metric
	add := func(m Metric) {
		has := false
		for _, c := range rep.Cells {
			if c.Backend == m.Backend && c.Scenario == m.Scenario && len(c.Runs) > 0 && m.Value(c.Median) != 0 {
				has = true
			}
		}
		if !has {
			return
		}
		if m.Main {
			main = append(main, m)
		} else {
			more = append(more, m)
		}
	}
	rate := commas(int64(math.Round(rep.LatencyRate)))
	for _, b := range []string{BackendKafka, BackendRabbitMQ, BackendMemory} {
		n := backendNames[b]
		add(Metric{Backend: b, Scenario: ScenarioPublish, Name: n + " publish, events/s", Main: true,
			Value: func(r Result) float64 { return r.PublishRate }})
		add(Metric{Backend: b, Scenario: ScenarioLatency, Name: n + " publish→handle P50 at " + rate + "/s, ms", Main: b == BackendKafka, LowerIsBetter: true,
			Value: func(r Result) float64 { return r.EndToEnd.P50 }})
		add(Metric{Backend: b, Scenario: ScenarioLatency, Name: n + " publish→handle P99 at " + rate + "/s, ms", Main: b == BackendKafka, LowerIsBetter: true,
			Value: func(r Result) float64 { return r.EndToEnd.P99 }})
		add(Metric{Backend: b, Scenario: ScenarioDrain, Name: n + " client CPU per published event, µs", Main: b == BackendRabbitMQ, LowerIsBetter: true,
			Value: perEvent(func(r Result) float64 { return r.PublishCPUSeconds }, func(r Result) int64 { return r.Acked })})
		add(Metric{Backend: b, Scenario: ScenarioDrain, Name: n + " publish-then-drain, events/s", Main: true,
			Value: func(r Result) float64 { return r.DrainRate }})
		add(Metric{Backend: b, Scenario: ScenarioDrain, Name: n + " client CPU per drained event, µs", LowerIsBetter: true,
			Value: perEvent(func(r Result) float64 { return r.DrainCPUSeconds }, func(r Result) int64 { return r.Consumed })})
		add(Metric{Backend: b, Scenario: ScenarioPublish, Name: n + " client CPU per event at full load (publish + handle), µs", LowerIsBetter: true,
			Value: perEvent(func(r Result) float64 { return r.CPUSeconds }, func(r Result) int64 { return r.Acked })})
		add(Metric{Backend: b, Scenario: ScenarioPublish, Name: n + " embedded broker CPU per event at full load, µs", LowerIsBetter: true,
			Value: perEvent(func(r Result) float64 { return r.BrokerCPUSeconds }, func(r Result) int64 { return r.Acked })})
		add(Metric{Backend: b, Scenario: ScenarioPublish, Name: n + " publish call P50 at full load, ms", LowerIsBetter: true,
			Value: func(r Result) float64 { return r.Publish.P50 }})
	}
	return append(main, more...)
}

// sig3 renders v with three significant figures (thousands separated),
// as the table does: 39,700; 1.19; 0.095.
func sig3(v float64) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return "0"
	}
	mag := int(math.Floor(math.Log10(math.Abs(v))))
	if mag >= 2 {
		p := math.Pow(10, float64(mag-2))
		return commas(int64(math.Round(v/p) * p))
	}
	return strconv.FormatFloat(v, 'f', 2-mag, 64)
}

// value returns the median of m for mode and whether there is one.
func (rep *ComparisonReport) value(m Metric, mode string) (float64, bool) {
	c := rep.Cell(m.Backend, m.Scenario, mode)
	if c == nil || len(c.Runs) == 0 {
		return 0, false
	}
	return m.Value(c.Median), true
}

func (rep *ComparisonReport) modes() []string {
	var out []string
	for _, m := range Modes {
		for _, c := range rep.Cells {
			if c.Mode == m {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// WriteMarkdown writes the comparison tables: the main rows, the others,
// the loss accounting and every run's value, with the ratios SDK ÷
// watermill and SDK ÷ raw.
func (rep *ComparisonReport) WriteMarkdown(w io.Writer) error {
	modes := rep.modes()
	var b strings.Builder
	metrics := rep.Metrics()
	table := func(main bool) {
		b.WriteString("| figure |")
		for _, m := range modes {
			b.WriteString(" " + ModeNames[m] + " |")
		}
		b.WriteString(" SDK ÷ watermill | SDK ÷ raw |\n|---|")
		for range modes {
			b.WriteString("---:|")
		}
		b.WriteString("---:|---:|\n")
		for _, m := range metrics {
			if m.Main != main {
				continue
			}
			b.WriteString("| " + m.Name + " |")
			for _, mode := range modes {
				if v, ok := rep.value(m, mode); ok && v != 0 {
					b.WriteString(" " + sig3(v) + " |")
				} else {
					b.WriteString(" – |")
				}
			}
			sdk, okS := rep.value(m, ModeSDK)
			for _, other := range []string{ModeWatermill, ModeRaw} {
				if v, ok := rep.value(m, other); ok && okS && v != 0 && sdk != 0 {
					fmt.Fprintf(&b, " %.2f× |", sdk/v)
				} else {
					b.WriteString(" – |")
				}
			}
			b.WriteString("\n")
		}
	}
	fmt.Fprintf(&b, "Medians of %d rounds, %d publishers each awaiting its acknowledgement, one event per call; arms alternated, their order rotated each round. Ratios above 1 favour the SDK for events/s, below 1 for ms and µs.\n\n", rep.Repeat, rep.Publishers)
	table(true)
	b.WriteString("\nMore figures of the same runs:\n\n")
	table(false)

	b.WriteString("\nAccounting (every run; lost and duplicates summed over the rounds, events are per run):\n\n")
	b.WriteString("| backend | scenario | arm | runs | events acknowledged (median) | consumed (median) | lost | duplicates | publish failed |\n|---|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range rep.Cells {
		var lost, dup, failed int64
		for _, r := range c.Runs {
			lost, dup, failed = lost+r.Lost, dup+r.Duplicates, failed+r.Failed
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s | %s | %s | %s |\n", backendNames[c.Backend], c.Scenario, ModeNames[c.Mode],
			len(c.Runs), commas(c.Median.Acked), commas(c.Median.Consumed), commas(lost), commas(dup), commas(failed))
	}

	b.WriteString("\nEvery run, in round order (the tables above show their medians):\n\n| figure | arm | runs |\n|---|---|---|\n")
	for _, m := range metrics {
		for _, mode := range modes {
			c := rep.Cell(m.Backend, m.Scenario, mode)
			if c == nil {
				continue
			}
			vs := make([]string, len(c.Runs))
			for i, r := range c.Runs {
				vs[i] = sig3(m.Value(r))
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", m.Name, ModeNames[mode], strings.Join(vs, " · "))
		}
	}
	if len(rep.Errors) > 0 {
		b.WriteString("\nRuns that failed:\n\n")
		for _, e := range rep.Errors {
			b.WriteString("- " + e + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteCSV writes one line per figure and mode: the median and every run.
func (rep *ComparisonReport) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	runs := rep.Repeat
	head := []string{"figure", "backend", "scenario", "main", "lower_is_better", "mode", "median"}
	for i := range runs {
		head = append(head, "run"+strconv.Itoa(i+1))
	}
	head = append(head, "lost", "duplicates")
	if err := cw.Write(head); err != nil {
		return err
	}
	for _, m := range rep.Metrics() {
		for _, mode := range rep.modes() {
			c := rep.Cell(m.Backend, m.Scenario, mode)
			if c == nil || len(c.Runs) == 0 {
				continue
			}
			rec := []string{m.Name, m.Backend, m.Scenario, strconv.FormatBool(m.Main), strconv.FormatBool(m.LowerIsBetter), mode, fmtF(m.Value(c.Median))}
			var lost, dup int64
			for i := range runs {
				v := ""
				if i < len(c.Runs) {
					v = fmtF(m.Value(c.Runs[i]))
					lost, dup = lost+c.Runs[i].Lost, dup+c.Runs[i].Duplicates
				}
				rec = append(rec, v)
			}
			rec = append(rec, strconv.FormatInt(lost, 10), strconv.FormatInt(dup, 10))
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes the whole report (every run's full Result) as JSON.
func (rep *ComparisonReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

var modeColors = map[string]color.Color{
	ModeSDK:       color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // blue
	ModeWatermill: color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, // red
	ModeRaw:       color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, // green
}

// WriteChart draws one bar panel per main figure (the median of each arm,
// every run as a dot) and saves them, tiled, to path as PNG.
func (rep *ComparisonReport) WriteChart(path, title string) error {
	if ext := strings.ToLower(filepath.Ext(path)); ext != ".png" {
		return fmt.Errorf("%w: %s: want a .png file", ErrChart, path)
	}
	var metrics []Metric
	for _, m := range rep.Metrics() {
		if m.Main {
			metrics = append(metrics, m)
		}
	}
	if len(metrics) == 0 {
		return fmt.Errorf("%w: no figures", ErrChart)
	}
	modes := rep.modes()
	const cols = 3
	rows := (len(metrics) + cols - 1) / cols
	plots := make([][]*plot.Plot, rows)
	for i := range plots {
		plots[i] = make([]*plot.Plot, cols)
	}
	names := make([]string, len(modes))
	for i, m := range modes {
		names[i] = ModeNames[m]
	}
	for i, m := range metrics {
		p := plot.New()
		p.Title.Text = m.Name
		p.Title.TextStyle.Font.Size = vg.Points(9)
		p.Y.Min = 0
		p.Y.Tick.Label.Font.Size = vg.Points(7)
		p.X.Tick.Label.Font.Size = vg.Points(8)
		for j, mode := range modes {
			c := rep.Cell(m.Backend, m.Scenario, mode)
			if c == nil || len(c.Runs) == 0 {
				continue
			}
			bar, err := plotter.NewBarChart(plotter.Values{m.Value(c.Median)}, vg.Points(28))
			if err != nil {
				return fmt.Errorf("%w: %w", ErrChart, err)
			}
			bar.XMin = float64(j)
			bar.Color = modeColors[mode]
			bar.LineStyle.Width = 0
			pts := make(plotter.XYs, len(c.Runs))
			for k, r := range c.Runs {
				pts[k] = plotter.XY{X: float64(j), Y: m.Value(r)}
			}
			dots, err := plotter.NewScatter(pts)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrChart, err)
			}
			dots.Shape = draw.CircleGlyph{}
			dots.Radius = vg.Points(2)
			dots.Color = color.Black
			p.Add(bar, dots)
		}
		p.NominalX(names...)
		p.X.Min, p.X.Max = -0.6, float64(len(modes))-0.4
		plots[i/cols][i%cols] = p
	}
	for r := range plots { // empty tiles of the last row
		for c := range plots[r] {
			if plots[r][c] == nil {
				plots[r][c] = plot.New()
				plots[r][c].HideAxes()
			}
		}
	}
	width, height := 11*vg.Inch, vg.Length(rows)*2.6*vg.Inch+0.4*vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(110), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	titleStyle := plot.New().Title.TextStyle
	titleStyle.Font.Size = vg.Points(11)
	titleStyle.XAlign = draw.XCenter
	dc.FillText(titleStyle, vg.Point{X: width / 2, Y: height - 0.25*vg.Inch}, title)
	body := draw.Crop(dc, 0, 0, 0, -0.4*vg.Inch)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(10), PadY: vg.Points(10), PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	canvases := plot.Align(plots, tiles, body)
	for r := range plots {
		for c := range plots[r] {
			plots[r][c].Draw(canvases[r][c])
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("benchcore: save chart %s: %w", path, err)
	}
	_, werr := vgimg.PngCanvas{Canvas: img}.WriteTo(f)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("benchcore: save chart %s: %w", path, werr)
	}
	return nil
}
