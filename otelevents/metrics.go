package otelevents

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cosmic-horizons/events/broker"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric attribute keys.
const (
	// AttrTopic is the topic of the message.
	AttrTopic = attribute.Key("topic")
	// AttrGroup is the subscription group (consuming side only, when
	// the subscriber set Delivery.Group).
	AttrGroup = attribute.Key("group")
	// AttrEventType is the event type from the ce_type header, when
	// present.
	AttrEventType = attribute.Key("event_type")
	// AttrDirection is "publish" or "consume" (events.message.size).
	AttrDirection = attribute.Key("direction")
)

// durationBuckets are the explicit bucket boundaries, in seconds, of the
// duration histograms: 0.1 ms to 10 s in 1-2.5-5 steps.
var durationBuckets = []float64{
	0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05,
	0.1, 0.25, 0.5,
	1, 2.5, 5, 10,
}

// sizeBuckets are the bucket boundaries, in bytes, of events.message.size:
// 64 B to 1 MiB in ×4 steps.
var sizeBuckets = []float64{64, 256, 1024, 4096, 16384, 65536, 262144, 1 << 20}

// Direction attributes of events.message.size.
// (Ready-made slices: passing them with ... allocates nothing.)
var (
	dirPublish = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(AttrDirection.String("publish")))}
	dirConsume = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(AttrDirection.String("consume")))}
)

// maxCachedAttrSets bounds the attribute-set cache: ce_type comes from the
// wire, so a misbehaving producer could otherwise grow it without limit.
// Beyond the bound, sets are built per call.
const maxCachedAttrSets = 1024

// Metrics records what publishers and the consumption pipeline do as
// OpenTelemetry metrics. It is an observer hook (broker.HookHandled,
// HookRetry, HookDeadLetter, HookDeadLetterFailed, HookDiscard,
// HookSkipped, HookDuplicate, HookPublished, HookPublishRetry, and
// kafkabus.HookRebalance): register it once, in a
// backend's Config.Hooks (every publish and subscription of the backend)
// or with events.WithHooks on a Bus (the Bus's publishes and
// subscriptions). It is safe for concurrent use.
//
// Instruments (counters in {message}, histograms in seconds with bucket
// boundaries from 0.1 ms to 10 s in 1-2.5-5 steps), each with the
// attributes topic, group (where known) and event_type (from ce_type, where
// present):
//
//	events.published        messages a Publish call confirmed
//	events.publish_failed   messages a Publish call did not confirm
//	events.publish.duration Publish calls, per topic of the call
//	events.publish_retried  messages a backend sent again inside a Publish call (nack, lost channel)
//	events.message.size     bytes of each message published and of each message consumed
//	                        (first attempt), attribute direction "publish" or "consume"
//	events.rebalances       new assignments of a Kafka group subscription (kafkabus.HookRebalance),
//	                        attributes topic and group
//	events.handled          handler attempts that returned nil
//	events.handle_failed    handler attempts that returned an error
//	events.handle.duration  handler attempts
//	events.retried          failed attempts that were retried
//	events.dead_lettered    messages published to their dead-letter topic
//	events.dead_letter_failed messages whose dead letter was refused for good
//	events.discarded        failed messages acknowledged (OnFailureDiscard)
//	events.skipped          messages a handler skipped (a known event type it does not take)
//	events.duplicates       messages skipped by Dedupe
type Metrics struct {
	published, publishFailed        metric.Int64Counter
	handled, handleFailed           metric.Int64Counter
	retried, deadLettered           metric.Int64Counter
	discarded, duplicates           metric.Int64Counter
	deadLetterFailed, skipped       metric.Int64Counter
	publishDuration, handleDuration metric.Float64Histogram
	publishRetried, rebalances      metric.Int64Counter
	size                            metric.Int64Histogram

	mu    sync.Mutex // serialises additions to sets
	sets  atomic.Pointer[map[attrKey]*attrOpts]
	count int
}

type attrKey struct{ topic, group, typ string }

// attrOpts carries one attribute set as ready-made option slices: passing
// them with ... costs no allocation, where building the variadic slice at
// each call would.
type attrOpts struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

// NewMetrics creates the instruments on mp's meter for this package; mp nil
// means the global OpenTelemetry provider (a no-op until the application
// installs an SDK).
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(instrumentationName)
	m := &Metrics{}
	var errs []error
	var err error
	counter := func(name, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit("{message}"), metric.WithDescription(desc))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return c
	}
	histogram := func(name, desc string) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return h
	}
	m.published = counter("events.published", "Messages a Publish call confirmed.")
	m.publishFailed = counter("events.publish_failed", "Messages a Publish call did not confirm.")
	m.handled = counter("events.handled", "Handler attempts that returned nil.")
	m.handleFailed = counter("events.handle_failed", "Handler attempts that returned an error.")
	m.retried = counter("events.retried", "Failed handler attempts that were retried.")
	m.deadLettered = counter("events.dead_lettered", "Messages published to their dead-letter topic.")
	m.discarded = counter("events.discarded", "Failed messages acknowledged without a dead letter.")
	m.deadLetterFailed = counter("events.dead_letter_failed", "Messages whose dead letter was refused for good.")
	m.skipped = counter("events.skipped", "Messages a handler skipped: a known event type it does not take.")
	m.duplicates = counter("events.duplicates", "Messages skipped as duplicates.")
	m.publishDuration = histogram("events.publish.duration", "Duration of Publish calls.")
	m.publishRetried = counter("events.publish_retried", "Messages a backend sent again inside a Publish call.")
	if m.rebalances, err = meter.Int64Counter("events.rebalances", metric.WithUnit("{rebalance}"),
		metric.WithDescription("New assignments of a Kafka group subscription.")); err != nil {
		errs = append(errs, fmt.Errorf("events.rebalances: %w", err))
	}
	if m.size, err = meter.Int64Histogram("events.message.size", metric.WithUnit("By"),
		metric.WithDescription("Size of messages published and consumed (body and headers)."),
		metric.WithExplicitBucketBoundaries(sizeBuckets...)); err != nil {
		errs = append(errs, fmt.Errorf("events.message.size: %w", err))
	}
	m.handleDuration = histogram("events.handle.duration", "Duration of handler attempts.")
	if len(errs) > 0 {
		return nil, fmt.Errorf("broker: metrics: %w", errors.Join(errs...))
	}
	empty := map[attrKey]*attrOpts{}
	m.sets.Store(&empty)
	return m, nil
}

// attrs returns the options carrying the attribute set of k, cached so
// that the hot path allocates nothing.
func (x *Metrics) attrs(k attrKey) *attrOpts {
	if o, ok := (*x.sets.Load())[k]; ok {
		return o
	}
	kvs := make([]attribute.KeyValue, 0, 3)
	kvs = append(kvs, AttrTopic.String(k.topic))
	if k.group != "" {
		kvs = append(kvs, AttrGroup.String(k.group))
	}
	if k.typ != "" {
		kvs = append(kvs, AttrEventType.String(k.typ))
	}
	set := metric.WithAttributeSet(attribute.NewSet(kvs...))
	o := &attrOpts{add: []metric.AddOption{set}, rec: []metric.RecordOption{set}}
	x.mu.Lock()
	defer x.mu.Unlock()
	old := *x.sets.Load()
	if cached, ok := old[k]; ok {
		return cached
	}
	if x.count >= maxCachedAttrSets {
		return o
	}
	next := make(map[attrKey]*attrOpts, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[k] = o
	x.sets.Store(&next)
	x.count++
	return o
}

func consumed(m *broker.Message) attrKey {
	return attrKey{m.Topic, m.Delivery.Group, m.Header(broker.HeaderType)}
}

// OnHandled implements broker.HookHandled.
func (x *Metrics) OnHandled(ctx context.Context, m *broker.Message, took time.Duration, err error) {
	o := x.attrs(consumed(m))
	if err != nil {
		x.handleFailed.Add(ctx, 1, o.add...)
	} else {
		x.handled.Add(ctx, 1, o.add...)
	}
	x.handleDuration.Record(ctx, took.Seconds(), o.rec...)
	if m.Delivery.Attempt <= 1 {
		x.size.Record(ctx, int64(m.Size()), dirConsume...)
	}
}

// OnPublishRetry implements broker.HookPublishRetry.
func (x *Metrics) OnPublishRetry(ctx context.Context, msgs []*broker.Message, _ error) {
	for _, m := range msgs {
		x.publishRetried.Add(ctx, 1, x.attrs(attrKey{topic: m.Topic, typ: m.Header(broker.HeaderType)}).add...)
	}
}

// OnRebalance implements kafkabus.HookRebalance (by its method set: this
// package does not import kafkabus).
func (x *Metrics) OnRebalance(group, topic string, _ int32, _ []int32) {
	x.rebalances.Add(context.Background(), 1, x.attrs(attrKey{topic: topic, group: group}).add...)
}

// OnRetry implements broker.HookRetry.
func (x *Metrics) OnRetry(ctx context.Context, m *broker.Message, _ int, _ error) {
	x.retried.Add(ctx, 1, x.attrs(consumed(m)).add...)
}

// OnDeadLetter implements broker.HookDeadLetter.
func (x *Metrics) OnDeadLetter(ctx context.Context, m *broker.Message, _ error) {
	x.deadLettered.Add(ctx, 1, x.attrs(consumed(m)).add...)
}

// OnDiscard implements broker.HookDiscard.
func (x *Metrics) OnDiscard(ctx context.Context, m *broker.Message, _ error) {
	x.discarded.Add(ctx, 1, x.attrs(consumed(m)).add...)
}

// OnDeadLetterFailed implements broker.HookDeadLetterFailed.
func (x *Metrics) OnDeadLetterFailed(ctx context.Context, m *broker.Message, _, _ error) {
	x.deadLetterFailed.Add(ctx, 1, x.attrs(consumed(m)).add...)
}

// OnSkipped implements broker.HookSkipped.
func (x *Metrics) OnSkipped(ctx context.Context, m *broker.Message, _ error) {
	x.skipped.Add(ctx, 1, x.attrs(consumed(m)).add...)
}

// OnDuplicate implements broker.HookDuplicate.
func (x *Metrics) OnDuplicate(ctx context.Context, m *broker.Message) {
	x.duplicates.Add(ctx, 1, x.attrs(consumed(m)).add...)
}

// failedIndexes returns the indexes of the messages a *broker.PublishError names,
// or nil when err is not one. (Kept out of OnPublished so that the error
// target does not escape to the heap on every successful call.)
func failedIndexes(err error) map[int]bool {
	var pe *broker.PublishError
	if !errors.As(err, &pe) {
		return nil
	}
	failed := make(map[int]bool, len(pe.Failed))
	for _, f := range pe.Failed {
		failed[f.Index] = true
	}
	return failed
}

// OnPublished implements broker.HookPublished. Each message counts as published,
// or as failed when err is a *broker.PublishError naming it (or any other error:
// then the whole call failed). The duration is recorded once per call and
// topic, with the event type when all its messages on that topic share one.
func (x *Metrics) OnPublished(ctx context.Context, msgs []*broker.Message, took time.Duration, err error) {
	var failed map[int]bool // nil when err names no message: all failed
	if err != nil {
		failed = failedIndexes(err)
	}
	for i, m := range msgs {
		o := x.attrs(attrKey{topic: m.Topic, typ: m.Header(broker.HeaderType)})
		if err == nil || (failed != nil && !failed[i]) {
			x.published.Add(ctx, 1, o.add...)
			x.size.Record(ctx, int64(m.Size()), dirPublish...)
		} else {
			x.publishFailed.Add(ctx, 1, o.add...)
		}
	}
	// One duration per topic of the call; calls almost always have one.
	for i, m := range msgs {
		seen := false
		for _, p := range msgs[:i] {
			if p.Topic == m.Topic {
				seen = true
				break
			}
		}
		if seen {
			continue
		}
		typ := m.Header(broker.HeaderType)
		for _, n := range msgs[i+1:] {
			if n.Topic == m.Topic && n.Header(broker.HeaderType) != typ {
				typ = ""
				break
			}
		}
		x.publishDuration.Record(ctx, took.Seconds(), x.attrs(attrKey{topic: m.Topic, typ: typ}).rec...)
	}
}

var (
	_ broker.HookHandled          = (*Metrics)(nil)
	_ broker.HookRetry            = (*Metrics)(nil)
	_ broker.HookDeadLetter       = (*Metrics)(nil)
	_ broker.HookDiscard          = (*Metrics)(nil)
	_ broker.HookPublished        = (*Metrics)(nil)
	_ broker.HookSkipped          = (*Metrics)(nil)
	_ broker.HookDeadLetterFailed = (*Metrics)(nil)
	_ broker.HookDuplicate        = (*Metrics)(nil)
	_ broker.HookPublishRetry     = (*Metrics)(nil)
)
