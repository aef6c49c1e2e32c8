package kafkabus_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// collect is a handler that keeps clones of what it gets.
type collect struct {
	mu   sync.Mutex
	msgs []*broker.Message
	ch   chan struct{}
}

func newCollect() *collect { return &collect{ch: make(chan struct{}, 1)} }

func (c *collect) handle(_ context.Context, m *broker.Message) error {
	c.mu.Lock()
	c.msgs = append(c.msgs, m.Clone())
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
	return nil
}

func (c *collect) wait(t *testing.T, n int) []*broker.Message {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		got := append([]*broker.Message(nil), c.msgs...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-c.ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %d messages, got %d", n, len(got))
		}
	}
}

// TestBadInputGoesToDeadLetter writes, with a raw sarama producer, a
// message whose body is garbage and one without any header onto
// job-lifecycle, ahead of a valid event of the same job. A typed
// subscriber (events.Router) dead-letters both to job-lifecycle.dlq
// with the reason, without retrying, and goes on to the valid event.
func TestBadInputGoesToDeadLetter(t *testing.T) {
	cluster := kafkatest.NewCluster(t, kafkatest.Topics(events.PlatformTopics()...), kafkatest.Topic("job-lifecycle.dlq", 1, nil))
	b := newBackend(t, cluster)
	var completed *eventmodels.JobCompleted
	for _, e := range samples.All() {
		if c, ok := e.(*eventmodels.JobCompleted); ok {
			completed = c
		}
	}
	bus, err := events.NewBus(b, events.WithSource("kafkabus-test"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var handled []eventmodels.Event
	done := make(chan struct{})
	r := events.NewRouter()
	events.On(r, func(ctx context.Context, e *eventmodels.JobCompleted) error {
		mu.Lock()
		handled = append(handled, e)
		mu.Unlock()
		close(done)
		return nil
	})
	dlq := newCollect()
	c, err := b.Subscribe(context.Background(), broker.Subscription{Topic: "job-lifecycle.dlq", Group: "dlq-reader"}, dlq.handle)
	if err != nil {
		t.Fatalf("Subscribe job-lifecycle.dlq: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	typed, err := bus.Subscribe(context.Background(), broker.Subscription{Group: "typed"}, r)
	if err != nil {
		t.Fatalf("Bus.Subscribe: %v", err)
	}
	t.Cleanup(func() { _ = typed.Close() })

	raw, err := sarama.NewSyncProducer(cluster.Addrs(), rawConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	key := sarama.StringEncoder(completed.Key())
	for _, m := range []*sarama.ProducerMessage{
		{Topic: "job-lifecycle", Key: key, Value: sarama.ByteEncoder{0xde, 0xad, 0xbe, 0xef, 0x00, 0x42}, Headers: []sarama.RecordHeader{
			{Key: []byte(broker.HeaderSpecVersion), Value: []byte(broker.SpecVersion)},
			{Key: []byte(broker.HeaderSource), Value: []byte("raw-producer")},
			{Key: []byte(broker.HeaderType), Value: []byte(eventmodels.TypeJobCompleted)},
			{Key: []byte(broker.HeaderContentType), Value: []byte("application/avro")},
			{Key: []byte(broker.HeaderID), Value: []byte("garbage-1")},
			{Key: []byte(broker.HeaderDataSchema), Value: []byte("job-lifecycle/v1")},
		}},
		{Topic: "job-lifecycle", Key: key, Value: sarama.StringEncoder(`{"hello": "no headers"}`)},
	} {
		if _, _, err := raw.SendMessage(m); err != nil {
			t.Fatalf("raw produce: %v", err)
		}
	}
	if err := bus.Publish(context.Background(), completed); err != nil {
		t.Fatalf("Bus.Publish: %v", err)
	}

	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("the valid event behind the bad ones was never handled")
	}
	dls := dlq.wait(t, 2)
	for i, dl := range dls {
		t.Logf("dead letter %d: error %q, permanent %q, attempts %s", i, dl.Header(broker.HeaderDLQError),
			dl.Header(broker.HeaderDLQPermanent), dl.Header(broker.HeaderDLQAttempts))
		if dl.Header(broker.HeaderDLQError) == "" || dl.Header(broker.HeaderDLQPermanent) != "true" ||
			dl.Header(broker.HeaderDLQAttempts) != "1" || dl.Header(broker.HeaderDLQTopic) != "job-lifecycle" ||
			dl.Header(broker.HeaderDLQGroup) != "typed" || dl.Header(broker.HeaderDLQOffset) != []string{"0", "1"}[i] {
			t.Errorf("dead letter %d has headers %v", i, dl.Headers)
		}
	}
	if dls[0].Header(broker.HeaderID) != "garbage-1" || string(dls[1].Body) != `{"hello": "no headers"}` {
		t.Errorf("dead letters out of order or altered: %v / %q", dls[0].Headers, dls[1].Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 1 || handled[0].Envelope().EventID != completed.EventID {
		t.Fatalf("handled %v, want only the valid event", handled)
	}
}
