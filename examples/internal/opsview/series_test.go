package opsview_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
	"github.com/cosmic-horizons/events/examples/internal/opsview"
)

type fakeHealth struct {
	rep   healthsvc.Report
	stats healthsvc.Stats
}

func (f *fakeHealth) Last() (healthsvc.Report, bool) { return f.rep, !f.rep.Time.IsZero() }
func (f *fakeHealth) Stats() healthsvc.Stats         { return f.stats }

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func msg(topic, group string) *broker.Message {
	m := &broker.Message{Topic: topic}
	m.Delivery.Group = group
	return m
}

// TestSeries: rates per topic over the interval, lag per group summed over
// topics, P50/P99 per group from the interval's attempts only, retries and
// dead letters, brokers, alerts raised and cleared (counted and logged
// once per health round), a series that appears later is null before.
func TestSeries(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	col := opsview.NewCollector()
	h := &fakeHealth{}
	v, err := opsview.New(opsview.Config{Collector: col, Health: h, Clock: clk.now, Interval: time.Second, Span: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	pub := func(topic string, n int) {
		msgs := make([]*broker.Message, n)
		for i := range msgs {
			msgs[i] = msg(topic, "")
		}
		col.OnPublished(ctx, msgs, time.Millisecond, nil)
	}
	// second 1: 10 published to job-lifecycle (and a failed publish of 5,
	// not counted), 4 consumed by metrics at 2ms, one failed attempt
	// retried, one dead letter.
	pub("job-lifecycle", 10)
	col.OnPublished(ctx, []*broker.Message{msg("job-lifecycle", ""), msg("job-lifecycle", ""), msg("job-lifecycle", ""), msg("job-lifecycle", ""), msg("job-lifecycle", "")}, 0, errors.New("refused"))
	for range 4 {
		col.OnHandled(ctx, msg("job-lifecycle", "metrics-service"), 2*time.Millisecond, nil)
	}
	col.OnHandled(ctx, msg("job-lifecycle", "metrics-service"), 100*time.Millisecond, errors.New("boom"))
	col.OnRetry(ctx, msg("job-lifecycle", "metrics-service"), 1, errors.New("boom"))
	col.OnDeadLetter(ctx, msg("job-lifecycle", "metrics-service"), errors.New("boom"))
	h.rep = healthsvc.Report{Time: clk.t, Backends: []healthsvc.BackendReport{
		{Name: "kafka", Lag: []healthsvc.LagSummary{{Group: "metrics-service", Topic: "job-lifecycle", Total: 7}, {Group: "metrics-service", Topic: "job-metrics", Total: 3}}},
		{Name: "rabbitmq", Down: true},
	}, Raised: []healthsvc.Alert{{Kind: healthsvc.AlertBrokerDown, Backend: "rabbitmq", Subject: "rabbitmq", Severity: eventmodels.SeverityCritical, Message: "rabbitmq is down"}}}
	h.rep.Active = h.rep.Raised
	h.stats.AlertsRaised = 1
	clk.t = clk.t.Add(time.Second)
	v.Sample(ctx)

	// second 2 (two seconds long): 6 published to job-metrics, nothing
	// handled; the same health round again (not logged twice).
	pub("job-metrics", 6)
	clk.t = clk.t.Add(2 * time.Second)
	v.Sample(ctx)

	// second 3: the alert clears.
	h.rep = healthsvc.Report{Time: clk.t, Backends: []healthsvc.BackendReport{{Name: "kafka"}, {Name: "rabbitmq"}},
		Cleared: []healthsvc.Alert{{Kind: healthsvc.AlertBrokerDown, Subject: "rabbitmq", Message: "rabbitmq is reachable again"}}}
	h.stats.AlertsCleared = 1
	clk.t = clk.t.Add(time.Second)
	v.Sample(ctx)

	s := v.Series()
	if s.Samples != 3 || len(s.Time) != 3 || s.Time[2]-s.Time[0] != 3 {
		t.Fatalf("samples %d, time %v; want 3 over 3 s", s.Samples, s.Time)
	}
	f := func(p *float64) float64 {
		if p == nil {
			return -1
		}
		return *p
	}
	if got := s.PublishRate["job-lifecycle"]; f(got[0]) != 10 || f(got[1]) != 0 {
		t.Errorf("publish rate job-lifecycle %v, want 10 then 0", deref(got))
	}
	if got := s.PublishRate["job-metrics"]; got[0] != nil || f(got[1]) != 3 {
		t.Errorf("publish rate job-metrics %v, want null (not seen yet) then 3/s (6 over 2 s)", deref(got))
	}
	if got := s.ConsumeRate["job-lifecycle"]; f(got[0]) != 4 {
		t.Errorf("consume rate %v, want 4 (the failed attempt is not consumed)", deref(got))
	}
	if got := s.Lag["metrics-service"]; f(got[0]) != 10 || got[2] != nil {
		t.Errorf("lag %v, want 10 (7+3), then none reported", deref(got))
	}
	if p50, p99 := s.P50MS["metrics-service"], s.P99MS["metrics-service"]; f(p50[0]) < 1.9 || f(p50[0]) > 2.1 || f(p99[0]) < 99 || f(p99[0]) > 101 || p99[1] != nil {
		t.Errorf("P50 %v, P99 %v; want ~2 and ~100 ms in the first second, none after", deref(p50), deref(p99))
	}
	if s.RetryRate[0] != 1 || s.DeadLetters[0] != 1 || s.DeadLetters[1] != 0 {
		t.Errorf("retries %v, dead letters %v", s.RetryRate, s.DeadLetters)
	}
	if up := s.BrokersUp["rabbitmq"]; f(up[0]) != 0 || f(up[2]) != 1 || f(s.BrokersUp["kafka"][0]) != 1 {
		t.Errorf("brokers %v", s.BrokersUp)
	}
	if s.AlertsRaised[0] != 1 || s.AlertsRaised[1] != 0 || s.AlertsCleared[2] != 1 || s.AlertsActive[0] != 1 || s.AlertsActive[2] != 0 {
		t.Errorf("alerts raised %v cleared %v active %v", s.AlertsRaised, s.AlertsCleared, s.AlertsActive)
	}
	if len(s.AlertLog) != 2 || s.AlertLog[0].Cleared || !s.AlertLog[1].Cleared || !strings.Contains(s.AlertLog[1].Message, "reachable again") {
		t.Errorf("alert log %+v, want raised then cleared, once each", s.AlertLog)
	}
	if s.Totals["published"]["job-lifecycle"] != 10 || s.Totals["consumed"]["job-lifecycle"] != 4 {
		t.Errorf("totals %v", s.Totals)
	}
}

func deref(ps []*float64) []any {
	out := make([]any, len(ps))
	for i, p := range ps {
		if p != nil {
			out[i] = *p
		}
	}
	return out
}

// TestSeriesRingKeepsSpan: beyond Span/Interval samples the oldest go.
func TestSeriesRingKeepsSpan(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	v, err := opsview.New(opsview.Config{Collector: opsview.NewCollector(), Clock: clk.now, Interval: time.Second, Span: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		clk.t = clk.t.Add(time.Second)
		v.Sample(context.Background())
	}
	s := v.Series()
	if s.Samples != 3 || s.Time[0] != 1_800_000_003 || s.Time[2] != 1_800_000_005 {
		t.Fatalf("kept %d samples at %v, want the last 3 (…003 to …005)", s.Samples, s.Time)
	}
}

// TestConfigValidate names every problem.
func TestConfigValidate(t *testing.T) {
	_, err := opsview.New(opsview.Config{Interval: -1})
	if err == nil || !strings.Contains(err.Error(), "Collector is required") || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("New = %v, want both problems", err)
	}
	_, err = opsview.New(opsview.Config{Collector: opsview.NewCollector(), Interval: time.Minute, Span: time.Second})
	if err == nil || !strings.Contains(err.Error(), "Span") {
		t.Fatalf("New = %v, want the Span problem", err)
	}
}
