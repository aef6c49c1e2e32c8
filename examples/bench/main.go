// Command eventbench is the load tool of the event platform: it drives a
// chosen rate of realistic events (job lifecycle and job metrics, Avro,
// about 300 bytes) from N publishers to M consumer-group members on one
// backend, through the SDK or through the raw client, and accounts for
// every event: sent, acknowledged, consumed, lost (must be 0), duplicated,
// with publish and publish→consume latency, throughput, CPU time and peak
// memory.
//
//	go run ./examples/bench                      # embedded Kafka, sdk and raw, 5,000 events/s for 10 s
//	go run ./examples/bench -backend memory -rate max -count 200000
//	go run ./examples/bench -backend rabbitmq -rate 1000 -duration 20s
//	go run ./examples/bench -backend kafka -brokers host:9092 -mode sdk
//	go run ./examples/bench -sweep 1000,5000,10000,50000,max -duration 5s -csv sweep.csv   # + sweep.png
//	go run ./examples/bench -mode peer -out peer   # SDK, watermill and raw side by side: peer.md, .csv, .json, .png
//
// Without flags it runs on an embedded Kafka cluster (kfake, three brokers
// on loopback, in a child process so that the figures are the client's
// alone), so anyone can try it. -mode both runs raw and sdk alternately on
// the same broker, each on a fresh topic (and a fresh embedded cluster), and
// prints sdk ÷ raw. -mode watermill runs the peer (watermill's GoChannel,
// watermill-kafka and watermill-amqp Pub/Subs with the same events, encoded
// and decoded with the SDK's codec), -mode all alternates sdk, watermill and
// raw, and -mode peer runs the side-by-side comparison of the three
// (benchcore.Comparison: publish at full load, publish→handle at -rate,
// publish-then-drain; every backend; arms rotated; medians of 3) and
// writes its tables and chart. -repeat runs each configuration several times and
// reports medians; -cpuprofile profiles the client side for pprof; -replot
// redraws the chart of a sweep CSV. It exits 3 when any run lost an event, 1 on other
// errors, 2 on bad flags.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/cosmic-horizons/events/examples/internal/benchcore"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == benchcore.ServeKafkaFlag {
		if err := benchcore.ServeKafka(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "eventbench: embedded kafka:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
	exitLost  = 3
)

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if err == errHelp {
			return exitOK
		}
		fmt.Fprintln(stderr, "eventbench:", err)
		return exitUsage
	}
	if cfg.replot != "" {
		return replot(cfg, stdout, stderr)
	}
	if !cfg.quiet {
		cfg.session.Run.Progress = stderr
		if f, ok := stderr.(*os.File); ok && isTerminal(f) {
			cfg.session.Run.Overwrite = true
		}
	}
	if cfg.embedded == "subprocess" {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(stderr, "eventbench: cannot find own executable for the embedded broker:", err)
			return exitError
		}
		cfg.session.KafkaExe = exe
	}
	if cfg.cpuprof != "" {
		f, err := os.Create(cfg.cpuprof)
		if err != nil {
			fmt.Fprintln(stderr, "eventbench:", err)
			return exitError
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "eventbench:", err)
			return exitError
		}
		defer pprof.StopCPUProfile()
	}
	if cfg.peer {
		return runPeer(ctx, cfg, args, stdout, stderr)
	}
	machine := benchcore.DescribeMachine()
	fmt.Fprintf(stdout, "eventbench: %s on %s\n", cfg.describe(), machine)

	var all, summary []benchcore.Result
	failed := false
	for _, rate := range cfg.rates {
		per := map[string][]benchcore.Result{}
		for i := 0; i < cfg.repeat && ctx.Err() == nil; i++ {
			modes := cfg.modes
			if len(modes) > 2 { // -mode all: rotate the order each round (both keeps raw, sdk pairs)
				modes = benchcore.Rotate(modes, i)
			}
			for _, mode := range modes {
				if ctx.Err() != nil {
					break
				}
				out, err := cfg.session.RunOnce(ctx, mode, rate)
				if out.PublishErr != nil {
					fmt.Fprintf(stderr, "eventbench: %s: publish failed (%d events): %v\n", out.Result.Label(), out.Result.Failed, out.PublishErr)
				}
				if err != nil {
					fmt.Fprintf(stderr, "eventbench: %s/%s: %v\n", cfg.session.Options.Backend, mode, err)
					failed = true
					if out.Result.Started.IsZero() {
						continue // nothing ran
					}
				}
				if out.Result.Lost > 0 {
					fmt.Fprintf(stderr, "eventbench: %s LOST %d events\n", out.Result.Label(), out.Result.Lost)
				}
				all = append(all, out.Result)
				per[mode] = append(per[mode], out.Result)
			}
		}
		for _, mode := range cfg.modes {
			if len(per[mode]) > 0 {
				summary = append(summary, benchcore.Median(per[mode]))
			}
		}
	}
	if len(summary) == 0 {
		fmt.Fprintln(stderr, "eventbench: no run completed")
		return exitError
	}

	fmt.Fprintln(stdout)
	if len(cfg.rates) > 1 {
		_ = benchcore.WriteSweepTable(stdout, summary)
	} else {
		_ = benchcore.WriteTable(stdout, summary)
	}
	if cfg.repeat > 1 {
		fmt.Fprintf(stdout, "\nevery run (the table above shows medians):\n")
		_ = benchcore.WriteSweepTable(stdout, all)
	}
	if len(cfg.modes) == 2 {
		fmt.Fprintln(stdout)
		for _, line := range benchcore.PairRatios(all) {
			fmt.Fprintln(stdout, line)
		}
	}
	if err := cfg.writeOutputs(summary, all, machine, args, stdout); err != nil {
		fmt.Fprintln(stderr, "eventbench:", err)
		failed = true
	}

	lost := int64(0)
	for _, r := range all {
		lost += r.Lost
	}
	switch {
	case lost > 0:
		fmt.Fprintf(stderr, "eventbench: FAILED: %d events lost\n", lost)
		return exitLost
	case failed || ctx.Err() != nil:
		return exitError
	}
	return exitOK
}

// runPeer runs the side-by-side comparison (-mode peer) and writes its
// tables to stdout and to cfg.out.{md,csv,json,png}.
func runPeer(ctx context.Context, cfg *config, args []string, stdout, stderr io.Writer) int {
	cmp := cfg.compare
	cmp.Session = cfg.session
	cmp.Progress = stderr
	fmt.Fprintf(stdout, "eventbench: peer comparison: %s, scenarios %s, %d rounds, %d publishers, %v per run, latency at %g/s, on %s\n",
		strings.Join(cmp.Backends, ","), strings.Join(cmp.Scenarios, ","), cmp.Repeat, cfg.session.Run.Publishers,
		cfg.session.Run.Duration, cmp.LatencyRate, benchcore.DescribeMachine())
	rep, err := cmp.Run(ctx)
	if rep == nil {
		fmt.Fprintln(stderr, "eventbench:", err)
		return exitUsage
	}
	rep.Command = "eventbench " + strings.Join(args, " ")
	var md strings.Builder
	fmt.Fprintf(&md, "# eventbench: SDK, watermill and the raw client side by side\n\n")
	fmt.Fprintf(&md, "Generated by `%s` on %s UTC, in %.1f minutes, on %s.\n\n",
		rep.Command, rep.Started.UTC().Format("2006-01-02 15:04"), rep.Seconds/60, rep.Machine.String())
	_ = rep.WriteMarkdown(&md)
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, md.String())

	errs := []error{err}
	if cfg.out != "" {
		errs = append(errs,
			writeFile(cfg.out+".md", func(w io.Writer) error { _, err := io.WriteString(w, md.String()); return err }),
			writeFile(cfg.out+".csv", rep.WriteCSV),
			writeFile(cfg.out+".json", rep.WriteJSON),
			rep.WriteChart(cfg.out+".png", fmt.Sprintf("eventbench: SDK, watermill, raw client (medians of %d, %s)", rep.Repeat, rep.Machine.String())))
		fmt.Fprintf(stdout, "\nwrote %s.md, .csv, .json, .png\n", cfg.out)
	}
	if lost := rep.Lost(); lost > 0 {
		fmt.Fprintf(stderr, "eventbench: FAILED: %d events lost\n", lost)
		return exitLost
	}
	if err := errors.Join(errs...); err != nil || ctx.Err() != nil {
		fmt.Fprintln(stderr, "eventbench:", err)
		return exitError
	}
	return exitOK
}

// replot draws the chart of a sweep CSV written earlier.
func replot(cfg *config, stdout, stderr io.Writer) int {
	f, err := os.Open(cfg.replot)
	if err != nil {
		fmt.Fprintln(stderr, "eventbench:", err)
		return exitError
	}
	defer f.Close()
	rs, err := benchcore.ReadCSV(f)
	if err == nil && len(rs) == 0 {
		err = fmt.Errorf("%s holds no results", cfg.replot)
	}
	if err == nil {
		title := fmt.Sprintf("eventbench %s: latency vs throughput (%s)", rs[0].Backend, benchcore.DescribeMachine())
		err = benchcore.WriteChart(cfg.chart, title, rs)
	}
	if err != nil {
		fmt.Fprintln(stderr, "eventbench:", err)
		return exitError
	}
	fmt.Fprintln(stdout, "wrote", cfg.chart)
	return exitOK
}
