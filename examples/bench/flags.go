package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cosmic-horizons/events/examples/internal/benchcore"
	"github.com/cosmic-horizons/events/examples/internal/platform"
	"github.com/cosmic-horizons/events/internal/envconf"
)

// defaultRabbitURL is the local broker of the development machines and CI.
const defaultRabbitURL = "amqp://guest:guest@127.0.0.1:5672/"

var errHelp = errors.New("help requested")

// config is the parsed command line.
type config struct {
	session  benchcore.Session
	modes    []string
	rates    []float64 // one, or the sweep's steps
	repeat   int
	embedded string
	quiet    bool
	csvPath  string
	jsonPath string
	chart    string
	cpuprof  string
	replot   string
	// peer mode: the side-by-side comparison, written to out.{md,csv,json,png}
	peer    bool
	compare benchcore.Comparison
	out     string
}

func (c *config) describe() string {
	o, r := c.session.Options, c.session.Run
	where := ""
	switch {
	case o.Backend == benchcore.BackendKafka && len(o.Brokers) == 0:
		where = " (embedded, " + c.embedded + ")"
	case o.Backend == benchcore.BackendKafka:
		where = " " + strings.Join(o.Brokers, ",")
	case o.Backend == benchcore.BackendRabbitMQ:
		where = " " + strings.Join(redactAll(o.URLs), ",")
	}
	load := ""
	if r.Count > 0 {
		load += fmt.Sprintf(" %d events", r.Count)
	}
	if r.Duration > 0 {
		load += fmt.Sprintf(" for at most %v", r.Duration)
	}
	return fmt.Sprintf("%s%s, modes %s, rates %s,%s, %d publishers × batch %d, %d subscribers",
		o.Backend, where, strings.Join(c.modes, "+"), ratesString(c.rates), load, r.Publishers, r.Batch, o.Subscribers)
}

func redactAll(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if p := strings.Index(u, "://"); p >= 0 && p < at {
				u = u[:p+3] + "…" + u[at:]
			}
		}
		out[i] = u
	}
	return out
}

func ratesString(rates []float64) string {
	s := make([]string, len(rates))
	for i, r := range rates {
		if r == 0 {
			s[i] = "max"
		} else {
			s[i] = strconv.FormatFloat(r, 'f', -1, 64) + "/s"
		}
	}
	return strings.Join(s, ",")
}

// parseRates reads "5000", "max" or a comma-separated list of them.
func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "max" || f == "0" {
			out = append(out, 0)
			continue
		}
		mult := 1.0
		if strings.HasSuffix(strings.ToLower(f), "k") {
			mult, f = 1000, f[:len(f)-1]
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 || v != v {
			return nil, fmt.Errorf("rate %q: want a positive number of events/s (e.g. 5000 or 5k) or max", f)
		}
		out = append(out, v*mult)
	}
	return out, nil
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("eventbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		backend   = fs.String("backend", benchcore.BackendKafka, "memory, kafka or rabbitmq")
		mode      = fs.String("mode", "both", "sdk (broker API, Avro, headers, middleware), raw (sarama / amqp091 alone), watermill (the peer: watermill's Pub/Sub, same events), both (raw and sdk), all (sdk, watermill, raw), or peer (the side-by-side comparison of the three over backends and scenarios, see -scenarios)")
		brokers   = fs.String("brokers", "", "Kafka bootstrap brokers, comma-separated; empty runs an embedded cluster")
		embedded  = fs.String("embedded", "subprocess", "where the embedded Kafka cluster runs: subprocess (the client's CPU and memory measured alone) or inproc")
		urls      = fs.String("urls", defaultRabbitURL, "RabbitMQ URLs, comma-separated")
		queueType = fs.String("queue-type", "quorum", "RabbitMQ queue type: quorum or classic")
		rate      = fs.String("rate", "5000", "offered events/s over all publishers, or max")
		sweep     = fs.String("sweep", "", "offered rates to step through, e.g. 1000,5000,10000,50000,max; writes a chart next to the CSV")
		count     = fs.Int64("count", 0, "events per run (0: until -duration)")
		duration  = fs.Duration("duration", 0, "publishing time per run (default 10s when -count is 0)")
		pubs      = fs.Int("publishers", 16, "publishing goroutines (N); each waits for its call's confirmation")
		batch     = fs.Int("batch", 1, "events per Publish call")
		subs      = fs.Int("subscribers", 2, "consumer-group members (M)")
		conc      = fs.Int("concurrency", 4, "handler goroutines per member (sdk mode)")
		inflight  = fs.Int("max-in-flight", 256, "fetch window / prefetch per member")
		parts     = fs.Int("partitions", 10, "partitions of the run's topic (kafka, memory)")
		size      = fs.Int("size", 300, "target encoded body size, bytes")
		keys      = fs.Int("keys", 1000, "distinct jobs (partition keys)")
		share     = fs.Float64("metrics-share", 0.3, "fraction of job.metrics events; the rest are job lifecycle events")
		trace     = fs.Float64("trace-ratio", 0.01, "fraction of publishes traced by the OpenTelemetry SDK (sdk mode); 0 for none")
		otel      = fs.Bool("otel", true, "run the sdk arm with the OpenTelemetry hooks (tracing at -trace-ratio, metrics); default false in -mode peer, where the watermill arm runs without middleware")
		warmup    = fs.Duration("warmup", time.Second, "first part of each run whose events count but whose latencies do not (connections and fetch sessions settle)")
		drain     = fs.Duration("drain", 30*time.Second, "how long to wait for the last events after publishing; what is missing then is lost")
		repeat    = fs.Int("repeat", 1, "runs per configuration (modes alternate); tables show medians")
		csvPath   = fs.String("csv", "", "write the results as CSV to this file (a sweep defaults to eventbench-<backend>-sweep.csv)")
		jsonPath  = fs.String("json", "", "write the results as JSON to this file (- for stdout)")
		chart     = fs.String("chart", "", "sweep chart file, .png or .svg (default: the CSV's name with .png; none for no chart)")
		quiet     = fs.Bool("quiet", false, "no live progress")
		replot    = fs.String("replot", "", "draw the chart of a sweep CSV written earlier (to -chart, default the CSV's name with .png) and exit")
		cpuprof   = fs.String("cpuprofile", "", "write a CPU profile of the runs (this process: the client side) to this file")
		scenarios = fs.String("scenarios", strings.Join(benchcore.Scenarios, ","), "-mode peer: scenarios to run: publish (rate max), latency (at -rate, default 1000 in peer mode), drain (publish -drain-count events, then consume them)")
		drainN    = fs.Int64("drain-count", 0, "-mode peer: events of the drain scenario (0: 200,000 for memory and kafka, 50,000 for rabbitmq); the drain waits up to 5 min (or -drain) for them")
		out       = fs.String("out", "eventbench-peer", "-mode peer: write the comparison to OUT.md, OUT.csv, OUT.json and OUT.png")
	)
	fs.Usage = platform.Usage(fs, platform.Help{
		Name: "bench",
		Doc: `(eventbench) is the load tool of the event platform: it drives a
chosen rate of realistic events (job lifecycle and job metrics, Avro, about
300 bytes) from N publishers to M consumer-group members on one backend,
through the SDK or through the raw client (sarama, amqp091-go), and accounts
for every event: sent, acknowledged, consumed, lost (must be 0), duplicated,
with publish and publish→consume latency, throughput, CPU time and peak
memory. Without flags it runs on an embedded Kafka cluster. It serves no
HTTP. Exit codes: 3 when a run lost an event, 1 on other errors, 2 on bad
flags.`,
		Examples: []string{
			"go run ./examples/bench                      # embedded Kafka, sdk and raw, 5,000 events/s for 10 s",
			"go run ./examples/bench -backend memory -rate max -count 200000",
			"go run ./examples/bench -backend rabbitmq -rate 1000 -duration 20s",
			"go run ./examples/bench -backend kafka -brokers host:9092 -mode sdk",
			"go run ./examples/bench -sweep 1000,5000,10000,50000,max -duration 5s -csv sweep.csv   # + sweep.png",
		},
	})
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c := &config{replot: *replot, cpuprof: *cpuprof, repeat: *repeat, embedded: *embedded, quiet: *quiet, csvPath: *csvPath, jsonPath: *jsonPath, chart: *chart}
	switch *mode {
	case "both":
		c.modes = []string{benchcore.ModeRaw, benchcore.ModeSDK}
	case "all", "peer":
		c.modes = benchcore.Modes
		c.peer = *mode == "peer"
	case benchcore.ModeSDK, benchcore.ModeRaw, benchcore.ModeWatermill:
		c.modes = []string{*mode}
	default:
		return nil, fmt.Errorf("-mode %q: want sdk, raw, watermill, both, all or peer", *mode)
	}
	var backends []string
	if c.peer {
		// The comparison's defaults, unless set: every backend, 64
		// publishers, 3 rounds, 5 s runs, the latency scenario at 1,000/s.
		backends = []string{benchcore.BackendKafka, benchcore.BackendRabbitMQ, benchcore.BackendMemory}
		if flagSet(fs, "backend") {
			backends = envconf.Split(*backend)
		}
		if len(backends) == 0 {
			return nil, errors.New("-backend: want one or more of memory, kafka, rabbitmq")
		}
		*backend = backends[0]
		if !flagSet(fs, "publishers") {
			*pubs = 64
		}
		if !flagSet(fs, "repeat") {
			c.repeat = 3
		}
		if !flagSet(fs, "rate") {
			*rate = "1000"
		}
		if !flagSet(fs, "duration") {
			*duration = 5 * time.Second
		}
		if *sweep != "" || *count != 0 || c.csvPath != "" || c.jsonPath != "" || c.chart != "" || *batch != 1 {
			return nil, errors.New("-mode peer runs its own plan: it takes no -sweep, -count, -batch, -csv, -json or -chart (see -scenarios, -drain-count and -out)")
		}
		if *drainN < 0 {
			return nil, fmt.Errorf("-drain-count %d: want 0 (the default) or more", *drainN)
		}
		c.out = *out
	}
	if *embedded != "subprocess" && *embedded != "inproc" {
		return nil, fmt.Errorf("-embedded %q: want subprocess or inproc", *embedded)
	}
	for name, v := range map[string]int{"repeat": c.repeat, "publishers": *pubs, "batch": *batch, "subscribers": *subs,
		"concurrency": *conc, "max-in-flight": *inflight, "partitions": *parts, "size": *size, "keys": *keys} {
		if v < 1 {
			return nil, fmt.Errorf("-%s %d: want at least 1", name, v)
		}
	}
	if c.replot != "" {
		if c.chart == "" || c.chart == "none" {
			c.chart = strings.TrimSuffix(c.replot, filepath.Ext(c.replot)) + ".png"
		}
		if ext := strings.ToLower(filepath.Ext(c.chart)); ext != ".png" && ext != ".svg" {
			return nil, fmt.Errorf("-chart %q: want a .png or .svg file", c.chart)
		}
		return c, nil
	}
	var err error
	if *sweep != "" {
		c.rates, err = parseRates(*sweep)
		if c.csvPath == "" {
			c.csvPath = "eventbench-" + *backend + "-sweep.csv"
		}
		switch c.chart {
		case "":
			c.chart = strings.TrimSuffix(c.csvPath, filepath.Ext(c.csvPath)) + ".png"
		case "none":
			c.chart = ""
		}
	} else {
		c.rates, err = parseRates(*rate)
		if err == nil && len(c.rates) > 1 {
			err = errors.New("-rate takes one rate; use -sweep for several")
		}
	}
	if err != nil {
		return nil, err
	}
	if c.chart != "" && *sweep == "" {
		return nil, errors.New("-chart needs -sweep")
	}
	if ext := strings.ToLower(filepath.Ext(c.chart)); c.chart != "" && ext != ".png" && ext != ".svg" {
		return nil, fmt.Errorf("-chart %q: want a .png or .svg file", c.chart)
	}
	d := *duration
	if d == 0 && *count == 0 {
		d = 10 * time.Second
	}
	if d == 0 && *warmup >= 0 {
		// A count-bounded run has no schedule to cut a warm-up from
		// unless paced; keep it only when it is explicitly asked for.
		if !flagSet(fs, "warmup") {
			*warmup = 0
		}
	}
	c.session.Options = benchcore.Options{
		Backend: *backend, Brokers: envconf.Split(*brokers), URLs: envconf.Split(*urls), QueueType: *queueType,
		Partitions: *parts, Subscribers: *subs, Concurrency: *conc, MaxInFlight: *inflight, TraceRatio: *trace,
		Workload: benchcore.WorkloadConfig{BodySize: *size, Keys: *keys, MetricsShare: *share},
	}
	if *trace == 0 {
		c.session.Options.TraceRatio = -1
	}
	c.session.Options.NoOTel = !*otel || (c.peer && !flagSet(fs, "otel"))
	c.session.Run = benchcore.RunConfig{Count: *count, Duration: d, Publishers: *pubs, Batch: *batch, Drain: *drain, Warmup: *warmup}
	// Check both now rather than after an embedded cluster has started.
	probe := c.session.Options
	probe.Mode, probe.Topic = c.modes[0], "probe"
	if probe.Backend == benchcore.BackendKafka && len(probe.Brokers) == 0 {
		probe.Brokers = []string{"embedded"}
	}
	if err := probe.Validate(); err != nil {
		return nil, err
	}
	if err := c.session.Run.Validate(); err != nil {
		return nil, err
	}
	if c.peer {
		counts := map[string]int64{}
		for _, b := range backends {
			counts[b] = *drainN
		}
		c.compare = benchcore.Comparison{Session: c.session, Backends: backends, Scenarios: envconf.Split(*scenarios),
			Repeat: c.repeat, LatencyRate: c.rates[0], DrainCount: counts}
		if c.rates[0] == 0 {
			return nil, errors.New("-mode peer: -rate is the latency scenario's offered rate; want a number of events/s")
		}
		if err := c.compare.Validate(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// writeOutputs writes the CSV, JSON and chart files asked for.
func (c *config) writeOutputs(summary, all []benchcore.Result, machine benchcore.Machine, args []string, stdout io.Writer) error {
	var errs []error
	if c.csvPath != "" {
		errs = append(errs, writeFile(c.csvPath, func(w io.Writer) error { return benchcore.WriteCSV(w, true, summary...) }))
		fmt.Fprintln(stdout, "wrote", c.csvPath)
	}
	if c.chart != "" {
		title := fmt.Sprintf("eventbench %s: latency vs throughput (%s)", c.session.Options.Backend, machine.String())
		if err := benchcore.WriteChart(c.chart, title, summary); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Fprintln(stdout, "wrote", c.chart)
		}
	}
	if c.jsonPath != "" {
		rep := benchcore.Report{Command: "eventbench " + strings.Join(args, " "), Machine: machine, Results: summary, Runs: all}
		if c.jsonPath == "-" {
			errs = append(errs, benchcore.WriteJSON(stdout, rep))
		} else {
			errs = append(errs, writeFile(c.jsonPath, func(w io.Writer) error { return benchcore.WriteJSON(w, rep) }))
			fmt.Fprintln(stdout, "wrote", c.jsonPath)
		}
	}
	return errors.Join(errs...)
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
