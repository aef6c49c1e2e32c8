package benchcore

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRotate(t *testing.T) {
	for round, want := range [][]string{
		{ModeSDK, ModeWatermill, ModeRaw}, {ModeWatermill, ModeRaw, ModeSDK}, {ModeRaw, ModeSDK, ModeWatermill}, {ModeSDK, ModeWatermill, ModeRaw},
	} {
		if got := Rotate(Modes, round); !slices.Equal(got, want) {
			t.Errorf("round %d: %v, want %v", round, got, want)
		}
	}
}

func TestSig3(t *testing.T) {
	for v, want := range map[float64]string{39_712: "39,700", 424_400: "424,000", 1.1949: "1.19", 0.09512: "0.0951", 25.44: "25.4", 0: "0", 100: "100"} {
		if got := sig3(v); got != want {
			t.Errorf("sig3(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestComparisonValidate(t *testing.T) {
	ok := Comparison{Session: Session{Options: Options{}, Run: RunConfig{Duration: time.Second}}, Backends: []string{BackendMemory}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid comparison: %v", err)
	}
	bad := []Comparison{
		{Session: ok.Session, Backends: []string{BackendMemory}, Scenarios: []string{"soak"}},
		{Backends: []string{BackendMemory}}, // no duration for publish and latency
		{Session: ok.Session, Backends: []string{"nats"}},
		{Session: ok.Session, Backends: []string{BackendMemory}, Modes: []string{"fast"}},
		{Session: ok.Session, Backends: []string{BackendRabbitMQ}}, // no URLs
		{Session: ok.Session, Backends: []string{BackendMemory}, Repeat: -1},
	}
	for _, c := range bad {
		if err := c.Validate(); !errors.Is(err, ErrComparison) {
			t.Errorf("%+v: Validate = %v, want ErrComparison", c, err)
		}
		if _, err := c.Run(context.Background()); !errors.Is(err, ErrComparison) {
			t.Errorf("%+v: Run = %v, want ErrComparison", c, err)
		}
	}
	drainOnly := Comparison{Backends: []string{BackendMemory}, Scenarios: []string{ScenarioDrain}}
	if err := drainOnly.Validate(); err != nil {
		t.Errorf("a drain-only comparison needs no duration: %v", err)
	}
}

// TestComparisonOnMemory runs the whole plan on the memory backend, two
// rounds, and checks the cells, the rotation, the accounting and every
// output.
func TestComparisonOnMemory(t *testing.T) {
	var progress bytes.Buffer
	cmp := Comparison{
		Session: Session{
			Options: Options{Backend: BackendKafka /* overridden */, TraceRatio: -1},
			Run:     RunConfig{Duration: 400 * time.Millisecond, Warmup: 100 * time.Millisecond, Publishers: 4},
		},
		Backends:   []string{BackendMemory},
		Repeat:     2,
		DrainCount: map[string]int64{BackendMemory: 2000},
		Progress:   &progress,
	}
	rep, err := cmp.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Cells) != 9 || rep.Lost() != 0 || len(rep.Errors) != 0 || rep.DrainCount[BackendMemory] != 2000 || rep.LatencyRate != 1000 {
		t.Fatalf("%d cells, lost %d, errors %v, drain count %v, latency rate %v", len(rep.Cells), rep.Lost(), rep.Errors, rep.DrainCount, rep.LatencyRate)
	}
	for _, c := range rep.Cells {
		if len(c.Runs) != 2 || c.Median.Runs != 2 || c.Median.Backend != BackendMemory || c.Median.Mode != c.Mode {
			t.Errorf("%s/%s/%s: %d runs, median of %d", c.Backend, c.Scenario, c.Mode, len(c.Runs), c.Median.Runs)
		}
		for _, r := range c.Runs {
			if r.Lost != 0 || r.Duplicates != 0 || r.Consumed != r.Acked || r.Acked == 0 || r.Scenario != c.Scenario {
				t.Errorf("%s: acked %d consumed %d lost %d dup %d", r.Label(), r.Acked, r.Consumed, r.Lost, r.Duplicates)
			}
		}
		switch c.Scenario {
		case ScenarioDrain:
			if c.Median.Acked != 2000 || c.Median.DrainRate <= 0 || c.Median.Subscribers != 1 {
				t.Errorf("drain %s: acked %d rate %v subscribers %d", c.Mode, c.Median.Acked, c.Median.DrainRate, c.Median.Subscribers)
			}
		case ScenarioLatency:
			if c.Median.OfferedRate != 1000 || c.Median.EndToEnd.P50 <= 0 {
				t.Errorf("latency %s: rate %v p50 %v", c.Mode, c.Median.OfferedRate, c.Median.EndToEnd.P50)
			}
		case ScenarioPublish:
			if c.Median.OfferedRate != 0 || c.Median.PublishRate <= 0 {
				t.Errorf("publish %s: rate %v publish %v", c.Mode, c.Median.OfferedRate, c.Median.PublishRate)
			}
		}
	}
	// Progress lines in run order: round 1 sdk, watermill, raw; round 2
	// watermill, raw, sdk (per scenario).
	lines := strings.Split(strings.TrimSpace(progress.String()), "\n")
	if len(lines) != 18 || !strings.Contains(lines[0], "memory/publish/sdk round 1") ||
		!strings.Contains(lines[9], "memory/publish/watermill round 2") || !strings.Contains(lines[11], "memory/publish/sdk round 2") {
		t.Errorf("progress:\n%s", progress.String())
	}

	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| figure | SDK | watermill | raw client | SDK ÷ watermill | SDK ÷ raw |", "| memory publish, events/s |",
		"| memory publish-then-drain, events/s |", "| memory publish→handle P99 at 1,000/s, ms |", "| memory | drain | watermill | 2 | 2,000 | 2,000 | 0 | 0 | 0 |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	var c bytes.Buffer
	if err := rep.WriteCSV(&c); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&c).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+3*len(rep.Metrics()) || !slices.Equal(recs[0][:7], []string{"figure", "backend", "scenario", "main", "lower_is_better", "mode", "median"}) || len(recs[0]) != 11 {
		t.Errorf("CSV: %d lines for %d figures, header %v", len(recs), len(rep.Metrics()), recs[0])
	}
	var j bytes.Buffer
	if err := rep.WriteJSON(&j); err != nil {
		t.Fatal(err)
	}
	var back ComparisonReport
	if err := json.Unmarshal(j.Bytes(), &back); err != nil || len(back.Cells) != 9 || len(back.Cells[0].Runs) != 2 {
		t.Errorf("JSON round trip: %v, %d cells", err, len(back.Cells))
	}
	path := filepath.Join(t.TempDir(), "peer.png")
	if err := rep.WriteChart(path, "test"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("chart is not a PNG: %v", err)
	}
	if err := rep.WriteChart(filepath.Join(t.TempDir(), "peer.pdf"), "x"); !errors.Is(err, ErrChart) {
		t.Errorf("WriteChart(.pdf) = %v, want ErrChart", err)
	}
}
