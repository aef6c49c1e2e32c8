package opsview

import (
	"context"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cosmic-horizons/events/broker"
)

// Collector is a broker hook counting, per topic, messages published and
// consumed (handler attempts that succeeded), and per subscription group
// the handler durations since the last Take, retries and dead letters. It
// is safe for concurrent use; each hook call takes one short lock.
type Collector struct {
	mu          sync.Mutex
	published   map[string]int64
	consumed    map[string]int64
	retries     int64
	deadLetters int64
	durations   map[string]*hdrhistogram.Histogram // per group, since the last Take
}

// NewCollector returns an empty Collector.
func NewCollector() *Collector {
	return &Collector{published: map[string]int64{}, consumed: map[string]int64{}, durations: map[string]*hdrhistogram.Histogram{}}
}

var (
	_ broker.HookPublished  = (*Collector)(nil)
	_ broker.HookHandled    = (*Collector)(nil)
	_ broker.HookRetry      = (*Collector)(nil)
	_ broker.HookDeadLetter = (*Collector)(nil)
)

// OnPublished counts the messages of a successful Publish per topic.
func (c *Collector) OnPublished(_ context.Context, msgs []*broker.Message, _ time.Duration, err error) {
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		c.published[m.Topic]++
	}
}

// OnHandled counts a successful attempt as consumed from its topic, and
// records every attempt's duration for its group.
func (c *Collector) OnHandled(_ context.Context, m *broker.Message, took time.Duration, err error) {
	group := m.Delivery.Group
	if group == "" {
		group = m.Topic
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.consumed[m.Topic]++
	}
	h := c.durations[group]
	if h == nil {
		h = hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 2)
		c.durations[group] = h
	}
	_ = h.RecordValue(max(took.Microseconds(), 1)) // longer than the range: recorded as an error, ignored
}

// OnRetry counts a retry.
func (c *Collector) OnRetry(context.Context, *broker.Message, int, error) {
	c.mu.Lock()
	c.retries++
	c.mu.Unlock()
}

// OnDeadLetter counts a dead letter.
func (c *Collector) OnDeadLetter(context.Context, *broker.Message, error) {
	c.mu.Lock()
	c.deadLetters++
	c.mu.Unlock()
}

// Totals are a Collector's counters since it was made.
type Totals struct {
	Published, Consumed  map[string]int64 // per topic
	Retries, DeadLetters int64
}

// Latency is the handler duration percentiles of one group over a period.
type Latency struct {
	Attempts int64
	P50, P99 time.Duration
}

// Take returns the totals, and the handler latencies per group since the
// previous Take (which it resets).
func (c *Collector) Take() (Totals, map[string]Latency) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := Totals{Published: clone(c.published), Consumed: clone(c.consumed), Retries: c.retries, DeadLetters: c.deadLetters}
	lat := map[string]Latency{}
	for g, h := range c.durations {
		if n := h.TotalCount(); n > 0 {
			lat[g] = Latency{Attempts: n,
				P50: time.Duration(h.ValueAtQuantile(50)) * time.Microsecond,
				P99: time.Duration(h.ValueAtQuantile(99)) * time.Microsecond}
			h.Reset()
		}
	}
	return t, lat
}

func clone(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
