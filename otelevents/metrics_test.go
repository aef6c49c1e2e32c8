package otelevents_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/otelevents"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func newMetrics(t *testing.T) (*otelevents.Metrics, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := otelevents.NewMetrics(mp)
	if err != nil {
		t.Fatal(err)
	}
	return m, reader
}

// collected is a snapshot: metric name → attribute set → value (counter
// sum, or histogram count).
type collected map[string]map[string]float64

func collect(t *testing.T, r *sdkmetric.ManualReader) (collected, map[string]metricdata.Aggregation) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out, raw := collected{}, map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			raw[m.Name] = m.Data
			vals := map[string]float64{}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					vals[attrKey(p.Attributes)] += float64(p.Value)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					vals[attrKey(p.Attributes)] += float64(p.Count)
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					vals[attrKey(p.Attributes)] += float64(p.Count)
				}
			default:
				t.Fatalf("%s: unexpected aggregation %T", m.Name, m.Data)
			}
			out[m.Name] = vals
		}
	}
	return out, raw
}

func attrKey(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.String())
	}
	slices.Sort(parts)
	return fmt.Sprint(parts)
}

const consumedAttrs = "[event_type=job.queued group=g topic=job-lifecycle]"

func TestMetricsThroughPipeline(t *testing.T) {
	metrics, reader := newMetrics(t)
	p, _ := pipeline(broker.Subscription{Retry: broker.RetryPolicy{MaxAttempts: 3}})
	p.Hooks = []broker.Hook{metrics}
	// Message 1: fails once, then succeeds. Message 2: fails three times,
	// dead-lettered.
	calls := 0
	ok := p.Wrap(func(context.Context, *broker.Message) error {
		calls++
		if calls == 1 {
			return errBoom
		}
		return nil
	})
	if err := ok(context.Background(), newMessage()); err != nil {
		t.Fatal(err)
	}
	if err := p.Wrap(failing(errBoom))(context.Background(), newMessage()); err != nil {
		t.Fatal(err)
	}
	got, raw := collect(t, reader)
	want := map[string]float64{
		"events.handled":         1,
		"events.handle_failed":   4,
		"events.retried":         3,
		"events.dead_lettered":   1,
		"events.handle.duration": 5,
	}
	for name, v := range want {
		if got[name][consumedAttrs] != v {
			t.Errorf("%s%s = %v, want %v (all: %v)", name, consumedAttrs, got[name][consumedAttrs], v, got[name])
		}
	}
	h := raw["events.handle.duration"].(metricdata.Histogram[float64])
	wantBounds := []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	if b := h.DataPoints[0].Bounds; !slices.Equal(b, wantBounds) {
		t.Errorf("bucket bounds %v, want %v", b, wantBounds)
	}
}

func TestMetricsDiscardAndDuplicates(t *testing.T) {
	metrics, reader := newMetrics(t)
	p, _ := pipeline(broker.Subscription{OnFailure: broker.OnFailureDiscard, Retry: fast(1)})
	p.Hooks = []broker.Hook{metrics}
	if err := p.Wrap(failing(errBoom))(context.Background(), newMessage()); err != nil {
		t.Fatal(err)
	}
	dp, _ := pipeline(broker.Subscription{})
	dp.Hooks = []broker.Hook{metrics, broker.Dedupe(broker.NewMemoryDedupeStore(8))}
	dh := dp.Wrap(failing(nil))
	for range 3 {
		if err := dh(context.Background(), newMessage()); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := collect(t, reader)
	if got["events.discarded"][consumedAttrs] != 1 || got["events.duplicates"][consumedAttrs] != 2 {
		t.Fatalf("discarded %v, duplicates %v", got["events.discarded"], got["events.duplicates"])
	}
}

func TestMetricsPublished(t *testing.T) {
	metrics, reader := newMetrics(t)
	msg := func(topic, typ string) *broker.Message {
		return &broker.Message{Topic: topic, Headers: broker.Headers{{Key: broker.HeaderType, Value: typ}}}
	}
	ctx := context.Background()
	// A confirmed call of two topics.
	metrics.OnPublished(ctx, []*broker.Message{msg("a", "x"), msg("a", "x"), msg("b", "y")}, time.Millisecond, nil)
	// A call in which message #1 failed: the others were confirmed.
	batch := []*broker.Message{msg("a", "x"), msg("a", "z"), msg("a", "x")}
	metrics.OnPublished(ctx, batch, time.Millisecond, &broker.PublishError{Failed: []broker.FailedMessage{{Index: 1, Message: batch[1], Err: errBoom}}})
	// A call that failed as a whole.
	metrics.OnPublished(ctx, []*broker.Message{msg("b", "y")}, time.Millisecond, fmt.Errorf("wrapped: %w", broker.ErrClosed))

	got, _ := collect(t, reader)
	wantPublished := map[string]float64{"[event_type=x topic=a]": 4, "[event_type=y topic=b]": 1}
	wantFailed := map[string]float64{"[event_type=z topic=a]": 1, "[event_type=y topic=b]": 1}
	// Durations: one per call and topic; the event type only when uniform.
	wantDuration := map[string]float64{"[event_type=x topic=a]": 1, "[event_type=y topic=b]": 2, "[topic=a]": 1}
	for name, want := range map[string]map[string]float64{
		"events.published": wantPublished, "events.publish_failed": wantFailed, "events.publish.duration": wantDuration,
	} {
		if fmt.Sprint(got[name]) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}

// TestMetricsManyEventTypes: attribute sets beyond the cache bound are still
// recorded correctly.
func TestMetricsManyEventTypes(t *testing.T) {
	metrics, reader := newMetrics(t)
	const n = 1500
	for i := range n {
		m := newMessage()
		m.SetHeader(broker.HeaderType, fmt.Sprintf("t%d", i))
		metrics.OnRetry(context.Background(), m, 1, errBoom)
		metrics.OnRetry(context.Background(), m, 2, errBoom)
	}
	got, _ := collect(t, reader)
	if len(got["events.retried"]) != n {
		t.Fatalf("%d series, want %d", len(got["events.retried"]), n)
	}
	for k, v := range got["events.retried"] {
		if v != 2 {
			t.Fatalf("%s = %v, want 2", k, v)
		}
	}
}

// TestMetricsHotPathDoesNotAllocate: with cached attribute sets, recording
// costs the caller no allocation (the no-op provider isolates our code).
func TestMetricsHotPathDoesNotAllocate(t *testing.T) {
	metrics, err := otelevents.NewMetrics(noop.NewMeterProvider())
	if err != nil {
		t.Fatal(err)
	}
	ctx, m := context.Background(), newMessage()
	allocs := testing.AllocsPerRun(100, func() {
		metrics.OnHandled(ctx, m, time.Millisecond, nil)
		metrics.OnRetry(ctx, m, 1, errBoom)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per call, want 0", allocs)
	}
}

func TestNewMetricsDefaultsToGlobalProvider(t *testing.T) {
	m, err := otelevents.NewMetrics(nil)
	if err != nil || m == nil {
		t.Fatalf("NewMetrics(nil) = %v, %v", m, err)
	}
	m.OnHandled(context.Background(), newMessage(), time.Millisecond, nil)
}

func BenchmarkMetricsOnHandled(b *testing.B) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	metrics, err := otelevents.NewMetrics(mp)
	if err != nil {
		b.Fatal(err)
	}
	ctx, m := context.Background(), newMessage()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			metrics.OnHandled(ctx, m, time.Millisecond, nil)
		}
	})
}

// TestMetricsSizesRetriesRebalances: message sizes are recorded per
// direction (published when confirmed, consumed on the first attempt
// only), re-sends and rebalances are counted.
func TestMetricsSizesRetriesRebalances(t *testing.T) {
	metrics, reader := newMetrics(t)
	ctx := context.Background()
	m := &broker.Message{Topic: "a", Body: make([]byte, 300)}
	metrics.OnPublished(ctx, []*broker.Message{m, m}, time.Millisecond, nil)
	metrics.OnPublished(ctx, []*broker.Message{m}, time.Millisecond, broker.ErrClosed) // failed: no size
	metrics.OnPublishRetry(ctx, []*broker.Message{m}, errBoom)
	in := newMessage()
	in.Delivery.Attempt = 1
	metrics.OnHandled(ctx, in, time.Millisecond, errBoom)
	in.Delivery.Attempt = 2 // a retry of the same message: not sized again
	metrics.OnHandled(ctx, in, time.Millisecond, nil)
	metrics.OnRebalance("g", "job-lifecycle", 3, []int32{0, 1})

	got, raw := collect(t, reader)
	if want := map[string]float64{"[direction=publish]": 2, "[direction=consume]": 1}; fmt.Sprint(got["events.message.size"]) != fmt.Sprint(want) {
		t.Errorf("events.message.size = %v, want %v", got["events.message.size"], want)
	}
	if h := raw["events.message.size"].(metricdata.Histogram[int64]); h.DataPoints[0].Sum == 0 {
		t.Errorf("events.message.size recorded no bytes: %+v", h)
	}
	if want := map[string]float64{"[topic=a]": 1}; fmt.Sprint(got["events.publish_retried"]) != fmt.Sprint(want) {
		t.Errorf("events.publish_retried = %v, want %v", got["events.publish_retried"], want)
	}
	if want := map[string]float64{"[group=g topic=job-lifecycle]": 1}; fmt.Sprint(got["events.rebalances"]) != fmt.Sprint(want) {
		t.Errorf("events.rebalances = %v, want %v", got["events.rebalances"], want)
	}
}
