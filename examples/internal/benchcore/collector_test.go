package benchcore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

func TestCollectorPublishOutcomes(t *testing.T) {
	c := NewCollector(NewRunID())
	now := time.Now()
	c.Published(0, 3, now, time.Millisecond, nil)
	c.Published(3, 3, now, time.Millisecond, &broker.PublishError{Failed: []broker.FailedMessage{{Index: 1, Err: errors.New("nacked")}}})
	c.Published(6, 2, now, time.Millisecond, errors.New("connection lost"))
	got := c.Ledger().Counts()
	if got.Acked != 5 || got.Failed != 3 {
		t.Fatalf("acked %d failed %d, want 5 and 3", got.Acked, got.Failed)
	}
	if missing := c.Ledger().Missing(10); len(missing) != 5 || missing[3] != 3 || missing[4] != 5 {
		t.Errorf("acknowledged events = %v, want 0 1 2 3 5", missing)
	}
	if pub, _ := c.Latency(); pub.Count != 5 {
		t.Errorf("publish latency samples = %d, want one per acknowledged event", pub.Count)
	}
}

func TestCollectorConsumed(t *testing.T) {
	run := NewRunID()
	c := NewCollector(run)
	warm := time.Now()
	c.MeasureFrom(warm)
	early := strconv.FormatInt(warm.Add(-time.Second).UnixNano(), 10)
	late := strconv.FormatInt(warm.UnixNano(), 10)
	c.ConsumedID(run.EventID(1), early) // warm-up: counted, latency not recorded
	c.ConsumedString(run.EventID(2).String(), late)
	c.ConsumedID(run.EventID(2), late)            // duplicate
	c.ConsumedString(run.EventID(3).String(), "") // no send time
	c.ConsumedString(NewRunID().EventID(4).String(), late)
	c.ConsumedString("garbage", late)
	got := c.Ledger().Counts()
	if got.Consumed != 3 || got.Duplicates != 1 || got.Foreign != 2 {
		t.Errorf("counts %+v, want 3 consumed, 1 duplicate, 2 foreign", got)
	}
	if _, e2e := c.Latency(); e2e.Count != 1 {
		t.Errorf("publish→consume samples = %d, want 1 (warm-up, duplicate and missing header left out)", e2e.Count)
	}
	if _, win := c.Window(); win.Count != 2 {
		t.Errorf("progress window samples = %d, want 2 (the warm-up shows in progress)", win.Count)
	}
	if _, win := c.Window(); win.Count != 0 {
		t.Errorf("a new window holds %d samples", win.Count)
	}
	if c.LastConsume().IsZero() {
		t.Error("LastConsume is zero after consumption")
	}
}

func TestProgressLine(t *testing.T) {
	p := Progress{Fraction: 0.5, Elapsed: 3 * time.Second, Sent: 15000, Consumed: 14990, Pending: 10, Rate: 4999.6, P99: 3120 * time.Microsecond}
	s := p.String()
	for _, want := range []string{"[############............]", " 50%", "3s", "sent 15,000", "consumed 14,990", "in flight 10", "5,000/s", "p99 3.12ms"} {
		if !strings.Contains(s, want) {
			t.Errorf("progress %q lacks %q", s, want)
		}
	}
	p.Draining, p.Fraction, p.P99 = true, 7, 0
	if s := p.String(); !strings.Contains(s, "drain") || !strings.Contains(s, "["+strings.Repeat("#", barWidth)+"]") || !strings.Contains(s, "p99 -") {
		t.Errorf("draining progress %q", s)
	}
}

func TestWriteChart(t *testing.T) {
	dir := t.TempDir()
	var rs []Result
	for _, mode := range []string{ModeRaw, ModeSDK} {
		for i, rate := range []float64{1000, 5000, 0} {
			r := sample(mode, 1000*float64(i*i+1), float64(i+1))
			r.OfferedRate = rate
			r.EndToEnd.P50 = 0 // clamped for the log scale, not a failure
			rs = append(rs, r)
		}
	}
	for _, name := range []string{"sweep.png", "sweep.svg"} {
		path := filepath.Join(dir, name)
		if err := WriteChart(path, "test sweep", rs); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, ".png") && !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG", name)
		}
		if strings.HasSuffix(name, ".svg") && (!bytes.Contains(b, []byte("<svg")) || !bytes.Contains(b, []byte("sdk P99"))) {
			t.Errorf("%s is not an SVG with the legend", name)
		}
	}
	for _, bad := range []struct {
		path string
		rs   []Result
	}{{filepath.Join(dir, "x.pdf"), rs}, {filepath.Join(dir, "x.png"), nil}} {
		if err := WriteChart(bad.path, "t", bad.rs); !errors.Is(err, ErrChart) {
			t.Errorf("WriteChart(%s, %d results) = %v, want ErrChart", bad.path, len(bad.rs), err)
		}
	}
}

func TestCollectorPercentiles(t *testing.T) {
	run := NewRunID()
	c := NewCollector(run)
	now := time.Now()
	for i := 1; i <= 1000; i++ {
		// Publish calls of 1..1000 µs; consumptions 1..1000 ms after their send.
		c.Published(uint64(i), 1, now, time.Duration(i)*time.Microsecond, nil)
		c.consumed(uint64(i), strconv.FormatInt(now.UnixNano(), 10), now.Add(time.Duration(i)*time.Millisecond))
	}
	pub, e2e := c.Latency()
	p, e := LatencyOf(pub), LatencyOf(e2e)
	near := func(name string, got, want float64) {
		t.Helper()
		if got < want*0.99 || got > want*1.01 {
			t.Errorf("%s = %v ms, want %v ms ±1%%", name, got, want)
		}
	}
	near("publish p50", p.P50, 0.5)
	near("publish p99", p.P99, 0.99)
	near("publish max", p.Max, 1)
	near("e2e p50", e.P50, 500)
	near("e2e p95", e.P95, 950)
	near("e2e p99", e.P99, 990)
	near("e2e max", e.Max, 1000)
	near("e2e mean", e.Mean, 500.5)
	if p.Count != 1000 || e.Count != 1000 {
		t.Errorf("counts %d and %d, want 1000", p.Count, e.Count)
	}
}
