package benchcore

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one line of the result table: how to show a figure, and whether a
// ratio between two results makes sense for it.
type row struct {
	name     string
	omitZero bool // leave the row out when every result has 0
	value    func(Result) string
	ratio    func(Result) float64 // nil: no ratio column
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return commas(int64(math.Round(v)))
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func count(get func(Result) int64) func(Result) string {
	return func(r Result) string { return commas(get(r)) }
}

func float(get func(Result) float64) func(Result) string {
	return func(r Result) string { return num(get(r)) }
}

func lat(get func(Result) Latency) []row {
	f := func(name string, pick func(Latency) float64) row {
		g := func(r Result) float64 { return pick(get(r)) }
		return row{name: name, value: float(g), ratio: g}
	}
	return []row{
		f("p50 ms", func(l Latency) float64 { return l.P50 }),
		f("p95 ms", func(l Latency) float64 { return l.P95 }),
		f("p99 ms", func(l Latency) float64 { return l.P99 }),
		f("max ms", func(l Latency) float64 { return l.Max }),
	}
}

func tableRows() []row {
	rows := []row{
		{name: "offered rate /s", value: func(r Result) string {
			if r.OfferedRate == 0 {
				return "max"
			}
			return num(r.OfferedRate)
		}},
		{name: "runs (median of)", value: func(r Result) string { return strconv.Itoa(max(r.Runs, 1)) }},
		{name: "seconds publishing", value: float(func(r Result) float64 { return r.Seconds })},
		{name: "warm-up seconds (no latency)", omitZero: true, value: float(func(r Result) float64 { return r.Warmup })},
		{name: "body bytes (mean)", value: float(func(r Result) float64 { return r.BodyBytes })},
		{name: "events sent", value: count(func(r Result) int64 { return r.Sent })},
		{name: "acknowledged", value: count(func(r Result) int64 { return r.Acked })},
		{name: "publish failed", value: count(func(r Result) int64 { return r.Failed })},
		{name: "consumed", value: count(func(r Result) int64 { return r.Consumed })},
		{name: "LOST", value: count(func(r Result) int64 { return r.Lost })},
		{name: "duplicates", value: count(func(r Result) int64 { return r.Duplicates })},
		{name: "publish rate /s", value: float(func(r Result) float64 { return r.PublishRate }), ratio: func(r Result) float64 { return r.PublishRate }},
		{name: "throughput /s", value: float(func(r Result) float64 { return r.Throughput }), ratio: func(r Result) float64 { return r.Throughput }},
	}
	for _, r := range lat(func(r Result) Latency { return r.Publish }) {
		r.name = "publish " + r.name
		rows = append(rows, r)
	}
	for _, r := range lat(func(r Result) Latency { return r.EndToEnd }) {
		r.name = "publish→consume " + r.name
		rows = append(rows, r)
	}
	return append(rows,
		row{name: "CPU seconds", value: float(func(r Result) float64 { return r.CPUSeconds }), ratio: func(r Result) float64 { return r.CPUSeconds }},
		row{name: "peak RSS MiB", value: float(func(r Result) float64 { return r.PeakRSSMiB }), ratio: func(r Result) float64 { return r.PeakRSSMiB }},
		row{name: "broker CPU seconds", omitZero: true, value: float(func(r Result) float64 { return r.BrokerCPUSeconds })},
		row{name: "broker peak RSS MiB", omitZero: true, value: float(func(r Result) float64 { return r.BrokerPeakRSSMiB })},
	)
}

func allZero(rw row, results []Result) bool {
	for _, r := range results {
		if rw.value(r) != "0" {
			return false
		}
	}
	return true
}

// WriteTable writes results side by side, one column per result. With
// exactly two results whose modes are raw and sdk (in either order), a
// last column gives sdk ÷ raw for the rates, latencies and resources.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	sdk, raw := -1, -1
	if len(results) == 2 {
		for i, r := range results {
			switch r.Mode {
			case ModeSDK:
				sdk = i
			case ModeRaw:
				raw = i
			}
		}
	}
	ratio := sdk >= 0 && raw >= 0
	fmt.Fprint(tw, "\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t", r.Label())
	}
	if ratio {
		fmt.Fprint(tw, "sdk ÷ raw\t")
	}
	fmt.Fprintln(tw)
	for _, rw := range tableRows() {
		if rw.omitZero && allZero(rw, results) {
			continue
		}
		fmt.Fprintf(tw, "%s\t", rw.name)
		for _, r := range results {
			fmt.Fprintf(tw, "%s\t", rw.value(r))
		}
		if ratio {
			if rw.ratio != nil && rw.ratio(results[raw]) != 0 {
				fmt.Fprintf(tw, "%.2f×\t", rw.ratio(results[sdk])/rw.ratio(results[raw]))
			} else {
				fmt.Fprint(tw, "\t")
			}
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// csvColumns are the CSV columns, in order; WriteCSV and ReadCSV agree on
// them.
var csvColumns = []string{
	"started", "backend", "mode", "offered_rate", "publishers", "subscribers", "concurrency", "batch", "partitions",
	"body_bytes", "seconds", "warmup_seconds", "sent", "acked", "failed", "consumed", "lost", "duplicates", "unconfirmed", "foreign",
	"publish_rate", "throughput",
	"publish_p50_ms", "publish_p95_ms", "publish_p99_ms", "publish_max_ms", "publish_mean_ms",
	"e2e_p50_ms", "e2e_p95_ms", "e2e_p99_ms", "e2e_max_ms", "e2e_mean_ms",
	"cpu_seconds", "peak_rss_mib", "broker_cpu_seconds", "broker_peak_rss_mib", "runs",
}

func fmtF(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func csvRecord(r Result) []string {
	i := func(v int) string { return strconv.Itoa(v) }
	c := func(v int64) string { return strconv.FormatInt(v, 10) }
	return []string{
		r.Started.UTC().Format(time.RFC3339), r.Backend, r.Mode, fmtF(r.OfferedRate), i(r.Publishers), i(r.Subscribers),
		i(r.Concurrency), i(r.Batch), i(r.Partitions),
		fmtF(r.BodyBytes), fmtF(r.Seconds), fmtF(r.Warmup), c(r.Sent), c(r.Acked), c(r.Failed), c(r.Consumed), c(r.Lost), c(r.Duplicates),
		c(r.Unconfirmed), c(r.Foreign), fmtF(r.PublishRate), fmtF(r.Throughput),
		fmtF(r.Publish.P50), fmtF(r.Publish.P95), fmtF(r.Publish.P99), fmtF(r.Publish.Max), fmtF(r.Publish.Mean),
		fmtF(r.EndToEnd.P50), fmtF(r.EndToEnd.P95), fmtF(r.EndToEnd.P99), fmtF(r.EndToEnd.Max), fmtF(r.EndToEnd.Mean),
		fmtF(r.CPUSeconds), fmtF(r.PeakRSSMiB), fmtF(r.BrokerCPUSeconds), fmtF(r.BrokerPeakRSSMiB), i(max(r.Runs, 1)),
	}
}

// WriteCSV writes results as CSV rows, preceded by the header line when
// header is true (false appends to a file that has one).
func WriteCSV(w io.Writer, header bool, results ...Result) error {
	cw := csv.NewWriter(w)
	if header {
		if err := cw.Write(csvColumns); err != nil {
			return err
		}
	}
	for _, r := range results {
		if err := cw.Write(csvRecord(r)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ErrCSV is matched by the errors of ReadCSV for input that is not a CSV
// file written by WriteCSV.
var ErrCSV = errors.New("benchcore: not an eventbench CSV")

// ReadCSV reads what WriteCSV wrote (header line first).
func ReadCSV(r io.Reader) ([]Result, error) {
	recs, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCSV, err)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != strings.Join(csvColumns, ",") {
		return nil, fmt.Errorf("%w: the first line is not the header %q…", ErrCSV, strings.Join(csvColumns[:4], ","))
	}
	out := make([]Result, 0, len(recs)-1)
	for n, rec := range recs[1:] {
		p := csvParser{rec: rec}
		var r Result
		r.Started = p.time("started")
		r.Backend, r.Mode = p.field("backend"), p.field("mode")
		r.OfferedRate = p.f("offered_rate")
		r.Publishers, r.Subscribers, r.Concurrency = p.i("publishers"), p.i("subscribers"), p.i("concurrency")
		r.Batch, r.Partitions = p.i("batch"), p.i("partitions")
		r.BodyBytes, r.Seconds, r.Warmup = p.f("body_bytes"), p.f("seconds"), p.f("warmup_seconds")
		r.Sent, r.Acked, r.Failed, r.Consumed = p.c("sent"), p.c("acked"), p.c("failed"), p.c("consumed")
		r.Lost, r.Duplicates, r.Unconfirmed, r.Foreign = p.c("lost"), p.c("duplicates"), p.c("unconfirmed"), p.c("foreign")
		r.PublishRate, r.Throughput = p.f("publish_rate"), p.f("throughput")
		r.Publish = p.latency("publish")
		r.EndToEnd = p.latency("e2e")
		r.CPUSeconds, r.PeakRSSMiB = p.f("cpu_seconds"), p.f("peak_rss_mib")
		r.BrokerCPUSeconds, r.BrokerPeakRSSMiB = p.f("broker_cpu_seconds"), p.f("broker_peak_rss_mib")
		r.Runs = p.i("runs")
		if p.err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrCSV, n+2, p.err)
		}
		out = append(out, r)
	}
	return out, nil
}

type csvParser struct {
	rec []string
	err error
}

func (p *csvParser) field(name string) string {
	i := slices.Index(csvColumns, name)
	if i < 0 || i >= len(p.rec) {
		if p.err == nil {
			p.err = fmt.Errorf("%d fields, want %d", len(p.rec), len(csvColumns))
		}
		return ""
	}
	return p.rec[i]
}

func (p *csvParser) fail(name string, err error) {
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("column %s: %w", name, err)
	}
}

func (p *csvParser) f(name string) float64 {
	v, err := strconv.ParseFloat(p.field(name), 64)
	p.fail(name, err)
	return v
}

func (p *csvParser) c(name string) int64 {
	v, err := strconv.ParseInt(p.field(name), 10, 64)
	p.fail(name, err)
	return v
}

func (p *csvParser) i(name string) int { return int(p.c(name)) }

func (p *csvParser) time(name string) time.Time {
	v, err := time.Parse(time.RFC3339, p.field(name))
	p.fail(name, err)
	return v
}

// latency reads the columns <prefix>_p50_ms … <prefix>_mean_ms (the
// sample count is not in the CSV).
func (p *csvParser) latency(prefix string) Latency {
	return Latency{P50: p.f(prefix + "_p50_ms"), P95: p.f(prefix + "_p95_ms"), P99: p.f(prefix + "_p99_ms"),
		Max: p.f(prefix + "_max_ms"), Mean: p.f(prefix + "_mean_ms")}
}

// Report is the JSON document eventbench writes: the summary (one Result
// per configuration, medians when repeated) and every run.
type Report struct {
	Command string   `json:"command"`
	Machine Machine  `json:"machine"`
	Results []Result `json:"results"`
	Runs    []Result `json:"runs"`
}

// WriteJSON writes rep as indented JSON.
func WriteJSON(w io.Writer, rep Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteSweepTable writes one line per result: the compact form for sweeps
// and repeated runs.
func WriteSweepTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "backend/mode\toffered /s\tthroughput /s\tpublish p99 ms\te2e p50 ms\te2e p95 ms\te2e p99 ms\te2e max ms\tsent\tlost\tdup\tCPU s\tpeak RSS MiB\truns\t")
	for _, r := range results {
		offered := "max"
		if r.OfferedRate > 0 {
			offered = num(r.OfferedRate)
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n",
			r.Backend, r.Mode, offered, num(r.Throughput), num(r.Publish.P99), num(r.EndToEnd.P50), num(r.EndToEnd.P95),
			num(r.EndToEnd.P99), num(r.EndToEnd.Max), commas(r.Sent), commas(r.Lost), commas(r.Duplicates),
			num(r.CPUSeconds), num(r.PeakRSSMiB), max(r.Runs, 1))
	}
	return tw.Flush()
}
