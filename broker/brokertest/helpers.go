package brokertest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// collector records what a handler received. Safe for concurrent use.
type collector struct {
	mu      sync.Mutex
	msgs    []*broker.Message
	changed chan struct{}
}

func newCollector() *collector { return &collector{changed: make(chan struct{}, 1)} }

func (c *collector) add(m *broker.Message) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m.Clone())
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// handler records every message and acknowledges it.
func (c *collector) handler(_ context.Context, m *broker.Message) error {
	c.add(m)
	return nil
}

func (c *collector) snapshot() []*broker.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*broker.Message(nil), c.msgs...)
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// waitUntil waits for cond over the messages so far, failing the test with
// what it saw when the deadline passes.
func (c *collector) waitUntil(t *testing.T, timeout time.Duration, what string, cond func([]*broker.Message) bool) []*broker.Message {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		msgs := c.snapshot()
		if cond(msgs) {
			return msgs
		}
		select {
		case <-c.changed:
		case <-deadline.C:
			t.Fatalf("brokertest: timed out after %v waiting for %s; got %d message(s)%s", timeout, what, len(msgs), describe(msgs))
		}
	}
}

// waitCount waits until at least n unique (by seq header) messages arrived.
func (c *collector) waitCount(t *testing.T, timeout time.Duration, n int) []*broker.Message {
	t.Helper()
	return c.waitUntil(t, timeout, fmt.Sprintf("%d distinct messages", n), func(ms []*broker.Message) bool {
		return len(distinct(ms)) >= n
	})
}

func describe(msgs []*broker.Message) string {
	if len(msgs) == 0 {
		return ""
	}
	from := max(len(msgs)-5, 0)
	s := "; last:"
	for _, m := range msgs[from:] {
		s += fmt.Sprintf(" [%s key=%q seq=%s type=%s]", m.Topic, m.Key, m.Header(hdrSeq), m.Header(broker.HeaderType))
	}
	return s
}

// hdrSeq numbers the messages a test publishes; hdrKeySeq numbers them per key.
const (
	hdrSeq    = "bt-seq"
	hdrKeySeq = "bt-key-seq"
)

func distinct(msgs []*broker.Message) map[string]int {
	seen := make(map[string]int, len(msgs))
	for _, m := range msgs {
		seen[m.Header(hdrSeq)]++
	}
	return seen
}

// msg builds test message number seq with the given key.
func msg(topic, key string, seq int, body []byte) *broker.Message {
	return &broker.Message{Topic: topic, Key: key, Body: body, Headers: broker.Headers{
		{Key: hdrSeq, Value: strconv.Itoa(seq)},
		{Key: broker.HeaderType, Value: "test.message"},
		{Key: broker.HeaderID, Value: fmt.Sprintf("%s-%d", topic, seq)},
		{Key: "bt-published-at", Value: time.Now().UTC().Format(time.RFC3339Nano)},
		{Key: "bt-unicode-value", Value: "ünïcødé ✓ 星"},
	}}
}

// publishN publishes n messages over keys round-robin and returns them.
func (e *env) publishN(topic string, n, keys int) []*broker.Message {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e.f.Timeout)
	defer cancel()
	perKey := map[string]int{}
	msgs := make([]*broker.Message, n)
	for i := range msgs {
		key := fmt.Sprintf("key-%d", i%keys)
		msgs[i] = msg(topic, key, i, []byte(fmt.Sprintf("body-%d", i)))
		msgs[i].SetHeader(hdrKeySeq, strconv.Itoa(perKey[key]))
		perKey[key]++
	}
	const batch = 100
	for i := 0; i < n; i += batch {
		if err := e.b.Publisher.Publish(ctx, msgs[i:min(i+batch, n)]...); err != nil {
			e.t.Fatalf("brokertest: Publish: %v", err)
		}
	}
	return msgs
}

// subscribe starts a subscription on s (default: the backend's subscriber)
// and stops it at the end of the test.
func (e *env) subscribe(s broker.Subscriber, sub broker.Subscription, h broker.Handler) broker.Consumer {
	e.t.Helper()
	if s == nil {
		s = e.b.Subscriber
	}
	if sub.Retry.InitialBackoff == 0 {
		sub.Retry.InitialBackoff = time.Millisecond
	}
	if sub.Retry.MaxBackoff == 0 {
		sub.Retry.MaxBackoff = 20 * time.Millisecond
	}
	c, err := s.Subscribe(context.Background(), sub, h)
	if err != nil {
		e.t.Fatalf("brokertest: Subscribe(%s/%s): %v", sub.Topic, sub.Group, err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

// closeWithin closes c and fails the test if Close takes longer than the
// suite timeout.
func (e *env) closeWithin(c broker.Consumer) error {
	e.t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(e.f.Timeout):
		e.t.Fatalf("brokertest: Consumer.Close did not return within %v", e.f.Timeout)
		return nil
	}
}

func (e *env) waitDone(c broker.Consumer, what string) {
	e.t.Helper()
	select {
	case <-c.Done():
	case <-time.After(e.f.Timeout):
		e.t.Fatalf("brokertest: consumer not done within %v after %s", e.f.Timeout, what)
	}
}

func seqOf(m *broker.Message) int {
	n, err := strconv.Atoi(m.Header(hdrSeq))
	if err != nil {
		return -1
	}
	return n
}
