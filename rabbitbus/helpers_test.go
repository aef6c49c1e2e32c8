package rabbitbus_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

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

// newClient returns a connected Backend closed at the end of the test.
func newClient(t testing.TB, cfg rabbitbus.Config) *rabbitbus.Backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := rabbitbus.New(ctx, cfg)
	if err != nil {
		t.Fatalf("rabbitbus.New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// deleteTopology deletes the exchanges of topics and the queues of every
// group on every topic.
func deleteTopology(t testing.TB, c *rabbitbus.Backend, topics, groups []string) {
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
	return &broker.Message{Topic: topic, Key: key, Body: []byte(id), Headers: broker.Headers{
		{Key: broker.HeaderType, Value: "test.event"},
		{Key: broker.HeaderID, Value: id},
		{Key: hdrKeySeq, Value: strconv.Itoa(keySeq)},
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
	return checkStreamExcept(t, msgs, func(string, int) bool { return false })
}

// checkStreamExcept is checkStream for a stream from which the messages
// absent(key, seq) are missing on purpose (dead-lettered).
func checkStreamExcept(t testing.TB, msgs []*broker.Message, absent func(key string, seq int) bool) streamStats {
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
		for absent(m.Key, next[m.Key]) {
			next[m.Key]++
		}
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

// testEnv is one test's broker: its URL, unique names, and an admin client
// that declares and deletes the test's topology and never consumes.
type testEnv struct {
	url   string
	f     *rabbittest.Fixture
	admin *rabbitbus.Backend

	mu     sync.Mutex
	topics []string
	groups []string
}

// newEnv must be called before the test creates its own clients: the
// topology is deleted at cleanup after they are closed (cleanups run last
// in, first out), so that no running subscription declares its queue again.
func newEnv(t testing.TB) *testEnv {
	t.Helper()
	f := rabbittest.New(t)
	e := &testEnv{url: f.URL(), f: f, admin: newClient(t, rabbitbus.Config{URLs: []string{f.URL()}})}
	t.Cleanup(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		deleteTopology(t, e.admin, e.topics, e.groups)
	})
	return e
}

// track records topics (with their dead-letter topics) and groups for
// deletion at cleanup.
func (e *testEnv) track(topics, groups []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, tp := range topics {
		e.topics = append(e.topics, tp, broker.DeadLetterTopic(tp))
	}
	e.groups = append(e.groups, groups...)
}

// declareGroup declares sub's group (deleted at cleanup).
func (e *testEnv) declareGroup(t testing.TB, sub broker.Subscription) {
	t.Helper()
	e.track([]string{sub.Topic}, []string{sub.Group})
	if err := e.admin.DeclareGroup(deadline(t, 30*time.Second), sub); err != nil {
		t.Fatalf("DeclareGroup: %v", err)
	}
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

// publishForeign publishes m with plain amqp091 as a producer outside
// rabbitbus would, in rabbitbus's wire form (exchange = topic, routing key
// = ce_type, ce_ headers as cloudEvents_, the key in x-message-key) but
// without its size check.
func publishForeign(t *testing.T, url string, m *broker.Message) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm mode: %v", err)
	}
	headers := amqp.Table{rabbitbus.HeaderKey: m.Key}
	for _, hdr := range m.Headers {
		k, v := hdr.Key, hdr.Value
		if rest, ok := strings.CutPrefix(k, "ce_"); ok {
			k = "cloudEvents_" + rest
		}
		headers[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, m.Topic, m.Header(broker.HeaderType), true, false, amqp.Publishing{
		Headers: headers, Body: m.Body, DeliveryMode: amqp.Persistent, ContentType: m.Header(broker.HeaderContentType),
	})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if ok, err := conf.WaitContext(ctx); !ok || err != nil {
		t.Fatalf("publish not confirmed: %v, %v", ok, err)
	}
}
