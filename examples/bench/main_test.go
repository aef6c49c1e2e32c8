package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cosmic-horizons/events/examples/internal/benchcore"
)

func TestParseRates(t *testing.T) {
	got, err := parseRates("1000, 5k,max,0,2.5")
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{1000, 5000, 0, 0, 2.5}; !slices.Equal(got, want) {
		t.Errorf("parseRates = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "fast", "-5", "1000,,2000", "NaN"} {
		if _, err := parseRates(bad); err == nil {
			t.Errorf("parseRates(%q) accepted", bad)
		}
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	o, r := c.session.Options, c.session.Run
	if o.Backend != benchcore.BackendKafka || len(o.Brokers) != 0 || !slices.Equal(c.modes, []string{"raw", "sdk"}) ||
		!slices.Equal(c.rates, []float64{5000}) || r.Duration.Seconds() != 10 || c.embedded != "subprocess" {
		t.Errorf("defaults: %+v %+v modes %v rates %v", o, r, c.modes, c.rates)
	}

	c, err = parseFlags([]string{"-backend", "rabbitmq", "-sweep", "1k,max", "-csv", "out/r.csv", "-mode", "sdk"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.chart != "out/r.png" || !slices.Equal(c.rates, []float64{1000, 0}) || c.session.Options.URLs[0] != defaultRabbitURL {
		t.Errorf("sweep: chart %q rates %v urls %v", c.chart, c.rates, c.session.Options.URLs)
	}
	if c, _ := parseFlags([]string{"-sweep", "1k", "-chart", "none"}, &bytes.Buffer{}); c.chart != "" || c.csvPath == "" {
		t.Errorf("-chart none: chart %q csv %q, want no chart and the default CSV", c.chart, c.csvPath)
	}
	if c, _ := parseFlags([]string{"-count", "500"}, &bytes.Buffer{}); c.session.Run.Duration != 0 || c.session.Run.Warmup != 0 {
		t.Errorf("-count alone: duration %v warmup %v, want neither", c.session.Run.Duration, c.session.Run.Warmup)
	}

	for _, args := range [][]string{
		{"-mode", "fast"}, {"-backend", "nats"}, {"-rate", "1,2"}, {"-chart", "x.png"}, {"-sweep", "1k", "-chart", "x.pdf"},
		{"-repeat", "0"}, {"-embedded", "docker"}, {"-publishers", "0"}, {"-size", "-3"}, {"stray"}, {"-duration", "1s", "-warmup", "2s"},
	} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}

func TestRunMemoryWritesOutputs(t *testing.T) {
	dir := t.TempDir()
	csvPath, jsonPath := filepath.Join(dir, "m.csv"), filepath.Join(dir, "m.json")
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-backend", "memory", "-rate", "max", "-count", "2000", "-repeat", "2",
		"-csv", csvPath, "-json", jsonPath, "-quiet"}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"memory/raw", "memory/sdk", "sdk ÷ raw", "every run", "wrote " + csvPath} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rs, err := benchcore.ReadCSV(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Runs != 2 || rs[0].Consumed != 2000 || rs[1].Lost != 0 {
		t.Errorf("CSV results = %+v", rs)
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep benchcore.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 || len(rep.Runs) != 4 || !strings.Contains(rep.Command, "-backend memory") || rep.Machine.Cores == 0 {
		t.Errorf("JSON report: %d results, %d runs, command %q, machine %+v", len(rep.Results), len(rep.Runs), rep.Command, rep.Machine)
	}
}

func TestRunSweepWritesChart(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-backend", "memory", "-mode", "sdk", "-sweep", "2000,max", "-duration", "300ms",
		"-warmup", "100ms", "-csv", filepath.Join(dir, "s.csv"), "-chart", filepath.Join(dir, "s.svg")}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "s.svg")); err != nil {
		t.Errorf("no chart: %v\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), "memory/sdk"); n != 2 {
		t.Errorf("sweep table has %d memory/sdk lines, want 2:\n%s", n, out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"-replot", filepath.Join(dir, "s.csv")}, &out, &errOut); code != exitOK {
		t.Fatalf("-replot: exit %d: %s", code, errOut.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "s.png")); err != nil {
		t.Errorf("-replot wrote no PNG: %v\n%s", err, out.String())
	}
	if code := run(context.Background(), []string{"-replot", filepath.Join(dir, "missing.csv")}, &out, &errOut); code != exitError {
		t.Errorf("-replot of a missing file: exit %d", code)
	}
	if !strings.Contains(errOut.String(), "sent ") {
		t.Errorf("no progress on stderr: %q", errOut.String())
	}
}

func TestRunBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-mode", "fast"}, &out, &errOut); code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	if code := run(context.Background(), []string{"-h"}, &out, &errOut); code != exitOK || !strings.Contains(errOut.String(), "-backend") {
		t.Errorf("-h: exit %d, usage %q", code, errOut.String())
	}
}

func TestParsePeerFlags(t *testing.T) {
	c, err := parseFlags([]string{"-mode", "peer"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	cmp, r := c.compare, c.session.Run
	if !c.peer || !slices.Equal(cmp.Backends, []string{"kafka", "rabbitmq", "memory"}) || !slices.Equal(cmp.Scenarios, benchcore.Scenarios) ||
		cmp.Repeat != 3 || cmp.LatencyRate != 1000 || r.Publishers != 64 || r.Duration.Seconds() != 5 || c.out != "eventbench-peer" ||
		!slices.Equal(c.modes, benchcore.Modes) {
		t.Errorf("peer defaults: backends %v scenarios %v repeat %d rate %v publishers %d duration %v out %q modes %v",
			cmp.Backends, cmp.Scenarios, cmp.Repeat, cmp.LatencyRate, r.Publishers, r.Duration, c.out, c.modes)
	}
	c, err = parseFlags([]string{"-mode", "peer", "-backend", "memory", "-scenarios", "drain", "-drain-count", "500", "-repeat", "1",
		"-publishers", "8", "-rate", "2k", "-out", "x/p"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cmp := c.compare; !slices.Equal(cmp.Backends, []string{"memory"}) || cmp.DrainCount["memory"] != 500 || cmp.Repeat != 1 ||
		cmp.LatencyRate != 2000 || c.session.Run.Publishers != 8 || c.out != "x/p" {
		t.Errorf("peer flags: %+v out %q", cmp, c.out)
	}
	if c, err := parseFlags([]string{"-mode", "watermill"}, &bytes.Buffer{}); err != nil || c.peer || !slices.Equal(c.modes, []string{"watermill"}) {
		t.Errorf("-mode watermill: %v, %+v", err, c)
	}
	for _, args := range [][]string{
		{"-mode", "peer", "-sweep", "1k"}, {"-mode", "peer", "-count", "10"}, {"-mode", "peer", "-csv", "x.csv"},
		{"-mode", "peer", "-scenarios", "soak"}, {"-mode", "peer", "-backend", "nats"}, {"-mode", "peer", "-rate", "max"},
		{"-mode", "peer", "-drain-count", "-1"}, {"-mode", "peer", "-backend", ","}, {"-mode", "peer", "-batch", "4"},
	} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}

func TestRunPeerWritesOutputs(t *testing.T) {
	out := filepath.Join(t.TempDir(), "peer")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-mode", "peer", "-backend", "memory", "-duration", "400ms", "-warmup", "100ms",
		"-drain-count", "1000", "-repeat", "1", "-publishers", "4", "-out", out, "-quiet"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	for _, ext := range []string{".md", ".csv", ".json", ".png"} {
		if st, err := os.Stat(out + ext); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", ext, err)
		}
	}
	md, _ := os.ReadFile(out + ".md")
	if !strings.Contains(string(md), "| memory publish, events/s |") || !strings.Contains(string(md), "-mode peer") {
		t.Errorf("markdown:\n%s", md)
	}
	if n := strings.Count(stderr.String(), "lost 0, dup 0"); n != 9 {
		t.Errorf("%d clean runs reported, want 9:\n%s", n, stderr.String())
	}
}

// TestOTelHooksFlag: the sdk arm carries the OpenTelemetry hooks unless
// -otel=false, except in the peer comparison, where it runs bare like the
// watermill arm unless -otel is given.
func TestOTelHooksFlag(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		noOTel bool
	}{
		{[]string{"-mode", "sdk"}, false},
		{[]string{"-mode", "sdk", "-otel=false"}, true},
		{[]string{"-mode", "peer"}, true},
		{[]string{"-mode", "peer", "-otel"}, false},
	} {
		c, err := parseFlags(tc.args, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("parseFlags(%q): %v", tc.args, err)
		}
		if c.session.Options.NoOTel != tc.noOTel {
			t.Errorf("parseFlags(%q): NoOTel %v, want %v", tc.args, c.session.Options.NoOTel, tc.noOTel)
		}
	}
}
