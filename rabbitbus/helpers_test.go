package rabbitbus_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/rabbitbus"
	"github.com/cosmic-horizons/events/testkit/rabbittest"
)

// testLogger logs to the test when RABBITBUS_TEST_LOG is set, and is
// silent otherwise.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("RABBITBUS_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// newClient returns a connected Client closed at the end of the test.
func newClient(t testing.TB, cfg rabbitbus.Config, opts ...rabbitbus.Option) *rabbitbus.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := rabbitbus.New(ctx, cfg, opts...)
	if err != nil {
		t.Fatalf("rabbitbus.New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// deleteTopology deletes the exchanges of topics and the queues of every
// group on every topic.
func deleteTopology(t testing.TB, c *rabbitbus.Client, topics, groups []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, topic := range topics {
		for _, g := range groups {
			if err := c.DeleteGroup(ctx, topic, g); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		if err := c.DeleteTopic(ctx, topic); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// msg returns message seq of a test stream: key, a unique ce_id, the
// per-key sequence in hdrKeySeq.
func msg(topic, key string, keySeq int, id string) *broker.Message {
	return &broker.Message{Topic: topic, Key: key, Body: []byte(id), Headers: map[string]string{
		broker.HeaderType: "test.event",
		broker.HeaderID:   id,
		hdrKeySeq:         strconv.Itoa(keySeq),
	}}
}

const hdrKeySeq = "x-key-seq"

func keySeq(m *broker.Message) int {
	n, err := strconv.Atoi(m.Header(hdrKeySeq))
	if err != nil {
		return -1
	}
	return n
}

// streamStats is what checkStream found.
type streamStats struct {
	deliveries, distinct, duplicates, redelivered int
}

// checkStream checks the deliveries of one group in handling order: per
// key, each message is the next of its key's sequence, or a repeat of an
// earlier one flagged Redelivered (a redelivered prefix, or a publisher's
// re-send); never a gap, never an unflagged step back.
func checkStream(t testing.TB, msgs []*broker.Message) streamStats {
	t.Helper()
	var st streamStats
	next := map[string]int{}
	seen := map[string]int{}
	bad := 0
	for i, m := range msgs {
		st.deliveries++
		id := m.Header(broker.HeaderID)
		seen[id]++
		if seen[id] > 1 {
			st.duplicates++
		}
		if m.Delivery.Redelivered {
			st.redelivered++
		}
		s := keySeq(m)
		switch n := next[m.Key]; {
		case s == n:
			next[m.Key] = n + 1
		case s < n && m.Delivery.Redelivered:
		default:
			if bad++; bad <= 5 {
				t.Errorf("delivery #%d key %q seq %d (id %s, redelivered %v): expected seq %d", i, m.Key, s, id, m.Delivery.Redelivered, n)
			}
		}
	}
	st.distinct = len(seen)
	if bad > 5 {
		t.Errorf("... %d ordering violations in all", bad)
	}
	return st
}

// connEvents records connection state changes (a rabbitbus.HookConnection).
type connEvents struct {
	mu     sync.Mutex
	events []rabbitbus.ConnectionEvent
	ch     chan struct{}
}

func newConnEvents() *connEvents { return &connEvents{ch: make(chan struct{}, 1)} }

func (c *connEvents) OnConnection(ev rabbitbus.ConnectionEvent) {
	c.mu.Lock()
	c.events = append(c.events, ev)
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

// waitFor waits until an event matching ok arrived, failing the test after
// timeout.
func (c *connEvents) waitFor(t testing.TB, timeout time.Duration, what string, ok func(rabbitbus.ConnectionEvent) bool) rabbitbus.ConnectionEvent {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		for _, ev := range c.events {
			if ok(ev) {
				c.mu.Unlock()
				return ev
			}
		}
		n := len(c.events)
		c.mu.Unlock()
		select {
		case <-c.ch:
		case <-deadline.C:
			t.Fatalf("no %s connection event within %v (%d events)", what, timeout, n)
		}
	}
}

// deadline returns a context bounded by d and cancelled at the end of the test.
func deadline(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// localURL returns the test broker's URL and a fixture for unique names.
func localURL(t testing.TB) (string, *rabbittest.Fixture) {
	f := rabbittest.New(t)
	return f.URL(), f
}

// hostPort returns the host:port of an AMQP URL.
func hostPort(t testing.TB, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return u.Hostname() + ":5672"
	}
	return u.Host
}

// declareGroup declares group on topic with c and deletes it (and the
// topic's exchanges) at the end of the test.
func declareGroup(t testing.TB, c *rabbitbus.Client, sub broker.Subscription) {
	t.Helper()
	t.Cleanup(func() {
		deleteTopology(t, c, []string{sub.Topic, broker.DeadLetterTopic(sub.Topic)}, []string{sub.Group})
	})
	if err := c.DeclareGroup(deadline(t, 30*time.Second), sub); err != nil {
		t.Fatalf("DeclareGroup: %v", err)
	}
}

// cleanupTopology deletes topics' exchanges and groups' queues at the end
// of the test, through c (which must outlive the cleanup: create it first).
func cleanupTopology(t testing.TB, c *rabbitbus.Client, topics, groups []string) {
	t.Helper()
	var all []string
	for _, tp := range topics {
		all = append(all, tp, broker.DeadLetterTopic(tp))
	}
	t.Cleanup(func() { deleteTopology(t, c, all, groups) })
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// count returns how many events match ok.
func (c *connEvents) count(ok func(rabbitbus.ConnectionEvent) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ev := range c.events {
		if ok(ev) {
			n++
		}
	}
	return n
}
