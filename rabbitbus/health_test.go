package rabbitbus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/rabbitbus"
	"github.com/cosmic-horizons/events/testkit"
	"github.com/cosmic-horizons/events/testkit/rabbittest"
)

// TestHealth: the report names the connected node and the reconnect count,
// and gives each running group's exact backlog (ready messages) and
// consumer count, and its dead-letter count.
func TestHealth(t *testing.T) {
	e := newEnv(t)
	c := newClient(t, rabbitbus.Config{URLs: []string{e.url}})
	topic := e.f.Name("health")
	sub := broker.Subscription{Topic: topic, Group: "g", MaxInFlight: 1}
	e.declareGroup(t, sub)
	publishStream(t, c, topic, 5, 1)
	release := make(chan struct{})
	started := make(chan struct{}, 5)
	cons, err := c.Subscribe(context.Background(), sub, func(ctx context.Context, m *broker.Message) error {
		started <- struct{}{}
		<-release
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { close(release); _ = cons.Close() }()
	<-started // one message in the handler, four ready

	h, err := c.Health(deadline(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if h.Backend != "rabbitmq" || h.Status != broker.HealthHealthy {
		t.Errorf("report %+v", h)
	}
	if lag := h.TotalLag("g", topic); lag != 4 {
		t.Errorf("lag of g = %d, want 4 ready (one is in the handler): %+v", lag, h.Lag)
	}
	if len(h.Lag) != 1 || h.Lag[0].Consumers != 1 || h.Lag[0].Partition != -1 {
		t.Errorf("lag entries %+v", h.Lag)
	}
	names := map[string]broker.HealthCheck{}
	for _, c := range h.Checks {
		names[c.Name] = c
	}
	pub := names["rabbitmq publisher connection"]
	if !strings.Contains(pub.Message, "127.0.0.1") || !strings.Contains(pub.Message, "0 reconnects") || pub.Value != 0 {
		t.Errorf("publisher check %+v", pub)
	}
	if strings.Contains(pub.Message, "guest:guest") {
		t.Errorf("health shows the password: %q", pub.Message)
	}
	if _, ok := names["rabbitmq subscriber connection"]; !ok {
		t.Errorf("no subscriber check: %+v", h.Checks)
	}
	dl := names["rabbitmq dead letters "+c.QueueName(topic, "g")+".dlq"]
	if dl.Status != broker.HealthHealthy || dl.Value != 0 {
		t.Errorf("dead-letter check %+v", dl)
	}
}

// TestTopologyMismatch: a queue that exists with other arguments than
// rabbitbus declares is a clear error naming the queue and the argument.
func TestTopologyMismatch(t *testing.T) {
	e := newEnv(t)
	c := newClient(t, rabbitbus.Config{URLs: []string{e.url}})
	topic := e.f.Name("mismatch")
	e.track([]string{topic}, []string{"g", "other"})
	ch, err := e.f.Dial().Channel()
	if err != nil {
		t.Fatal(err)
	}
	queue := c.QueueName(topic, "g")
	if _, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "classic"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "g"}, testkit.NewMessageCapture().Handle)
	var te *rabbitbus.TopologyError
	if !errors.As(err, &te) || te.Kind != "queue" || te.Name != queue || te.Argument == "" || !errors.Is(err, rabbitbus.ErrTopologyMismatch) {
		t.Fatalf("Subscribe over a classic queue: %v, want a TopologyError for %s naming an argument", err, queue)
	}
	t.Logf("error: %v", err)
	// The subscriber keeps working after the refusal.
	capture := testkit.NewMessageCapture()
	if _, err := c.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "other"}, capture.Handle); err != nil {
		t.Fatal(err)
	}
}

// TestSingleActiveConsumer: with Config.SingleActiveConsumer the members of
// a group take turns: one consumes everything, so per-key order holds
// across members.
func TestSingleActiveConsumer(t *testing.T) {
	e := newEnv(t)
	cfg := rabbitbus.Config{URLs: []string{e.url}, SingleActiveConsumer: true}
	c := newClient(t, cfg)
	topic := e.f.Name("sac")
	e.track([]string{topic}, []string{"g"})
	if err := c.DeclareGroup(deadline(t, 30*time.Second), broker.Subscription{Topic: topic, Group: "g"}); err != nil {
		t.Fatal(err) // declared by c: its queue has x-single-active-consumer
	}
	other, err := rabbitbus.NewSubscriber(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Close() }()
	a, b := testkit.NewMessageCapture(), testkit.NewMessageCapture()
	if _, err := c.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "g", Concurrency: 4}, a.Handle); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "g", Concurrency: 4}, b.Handle); err != nil {
		t.Fatal(err)
	}
	publishStream(t, c, topic, 200, 10)
	ctx := deadline(t, 30*time.Second)
	if err := a.WaitForDistinct(ctx, 200); err != nil {
		t.Fatalf("the first member (the active one): %v; the standby got %d", err, b.Count())
	}
	if b.Count() != 0 {
		t.Errorf("the standby member consumed %d messages", b.Count())
	}
	checkStream(t, a.Messages())
}

// TestSubscribeErrors: invalid subscriptions and Subscribe after Close.
func TestSubscribeErrors(t *testing.T) {
	c := newClient(t, rabbitbus.Config{URLs: []string{rabbittest.URL(t)}})
	for name, sub := range map[string]broker.Subscription{
		"reserved topic":    {Topic: "amq.x", Group: "g"},
		"wildcard in group": {Topic: "t", Group: "*"},
		"no group":          {Topic: "t"},
	} {
		if _, err := c.Subscribe(context.Background(), sub, testkit.NewMessageCapture().Handle); !errors.Is(err, broker.ErrInvalidSubscription) {
			t.Errorf("%s: %v, want ErrInvalidSubscription", name, err)
		}
	}
	if err := c.DeclareGroup(context.Background(), broker.Subscription{Topic: "t", Ephemeral: true}); !errors.Is(err, broker.ErrInvalidSubscription) {
		t.Errorf("DeclareGroup of an ephemeral subscription: %v", err)
	}
	_ = c.Close()
	if _, err := c.Subscribe(context.Background(), broker.Subscription{Topic: "t", Group: "g"}, testkit.NewMessageCapture().Handle); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Subscribe after Close: %v", err)
	}
}
