package rabbitbus_test

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
	"github.com/cosmic-horizons/events/rabbitbus"
	"github.com/cosmic-horizons/events/testkit"
	"github.com/cosmic-horizons/events/testkit/rabbittest"
)

// TestRouterBadInput: through an events.Router, a body that does not
// decode and an event type nobody registered are dead-lettered at once
// (permanent, one attempt) with the reason, while valid events flow.
func TestRouterBadInput(t *testing.T) {
	e := newEnv(t)
	c := newClient(t, rabbitbus.Config{URLs: []string{e.url}, Logger: testLogger(t)})
	topic := e.f.Name("typed")
	e.declareGroup(t, broker.Subscription{Topic: topic, Group: "g"})
	bus, err := events.NewBus(c, events.WithRoute(func(eventmodels.TypeInfo, eventmodels.Event) string { return topic }))
	if err != nil {
		t.Fatal(err)
	}
	got := testkit.NewMessageCapture()
	r := events.NewRouter()
	events.OnEvent(r, func(ctx context.Context, e eventmodels.Event) error {
		m, _ := events.MessageFromContext(ctx)
		return got.Handle(ctx, m)
	})
	if _, err := bus.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "g"}, r); err != nil {
		t.Fatal(err)
	}
	malformed := &broker.Message{Topic: topic, Key: "j", Body: []byte{0xde, 0xad}, Headers: broker.Headers{
		{Key: broker.HeaderSpecVersion, Value: broker.SpecVersion},
		{Key: broker.HeaderSource, Value: "test"},
		{Key: broker.HeaderID, Value: "malformed"},
		{Key: broker.HeaderType, Value: eventmodels.TypeJobCompleted},
		{Key: broker.HeaderContentType, Value: "application/avro"},
	}}
	unknown := &broker.Message{Topic: topic, Key: "j", Body: []byte(`{"event_id":"x"}`), Headers: broker.Headers{
		{Key: broker.HeaderSpecVersion, Value: broker.SpecVersion},
		{Key: broker.HeaderSource, Value: "test"},
		{Key: broker.HeaderID, Value: "unknown"},
		{Key: broker.HeaderType, Value: "job.exploded"},
		{Key: broker.HeaderContentType, Value: "application/json"},
	}}
	ctx := deadline(t, 30*time.Second)
	if err := c.Publish(ctx, malformed, unknown); err != nil {
		t.Fatal(err)
	}
	sent := samples.All()
	if err := bus.Publish(ctx, sent...); err != nil {
		t.Fatal(err)
	}
	if err := got.WaitFor(ctx, len(sent)); err != nil {
		t.Fatal(err)
	}
	dlq := getAll(t, e.f.Dial(), c.QueueName(topic, "g")+".dlq")
	reasons := map[string]amqp.Table{}
	for _, d := range dlq {
		reasons[d.MessageId] = d.Headers
	}
	for id, wantErr := range map[string]string{"malformed": "malformed", "unknown": "job.exploded"} {
		h, ok := reasons[id]
		if !ok {
			t.Errorf("%s message not dead-lettered (dead letters: %d)", id, len(dlq))
			continue
		}
		if e, _ := h[broker.HeaderDLQError].(string); !strings.Contains(strings.ToLower(e), wantErr) {
			t.Errorf("%s: %s = %q, want it to name %q", id, broker.HeaderDLQError, e, wantErr)
		}
		if h[broker.HeaderDLQPermanent] != "true" || h[broker.HeaderDLQAttempts] != "1" {
			t.Errorf("%s: permanent %v after %v attempts, want true after 1", id, h[broker.HeaderDLQPermanent], h[broker.HeaderDLQAttempts])
		}
	}
}

// TestPublishErrors: each bad publish fails with its own error, before
// anything is sent when the call itself is wrong.
func TestPublishErrors(t *testing.T) {
	e := newEnv(t)
	c := newClient(t, rabbitbus.Config{URLs: []string{e.url}, MaxMessageBytes: 1000})
	topic := e.f.Name("errs")
	e.declareGroup(t, broker.Subscription{Topic: topic, Group: "g"})
	nobody := e.f.Name("nobody")
	e.track([]string{nobody}, nil)
	ctx := deadline(t, 30*time.Second)

	big := msg(topic, "k", 1, "big")
	big.Body = make([]byte, 1001)
	err := c.Publish(ctx, msg(topic, "k", 0, "small"), big)
	if !errors.Is(err, broker.ErrMessageTooLarge) || !strings.Contains(err.Error(), "#1") {
		t.Errorf("oversized: %v, want ErrMessageTooLarge naming message #1", err)
	}

	err = c.Publish(ctx, msg(topic, "k", 0, "routed"), msg(nobody, "k", 0, "lost"))
	var pe *broker.PublishError
	if !errors.As(err, &pe) || len(pe.Failed) != 1 || pe.Failed[0].Index != 1 || !errors.Is(err, broker.ErrUnroutable) {
		t.Errorf("unroutable: %v, want a PublishError for message #1 only, matching ErrUnroutable", err)
	}

	for name, m := range map[string]*broker.Message{
		"nil":             nil,
		"no topic":        {Key: "k"},
		"reserved topic":  {Topic: "amq.topic"},
		"reserved header": {Topic: topic, Headers: broker.Headers{{Key: "CC", Value: "other"}}},
		"wire header":     {Topic: topic, Headers: broker.Headers{{Key: "cloudEvents_id", Value: "1"}}},
	} {
		if err := c.Publish(ctx, m); !errors.Is(err, broker.ErrInvalidMessage) {
			t.Errorf("%s: %v, want ErrInvalidMessage", name, err)
		}
	}

	// Nothing of the refused calls reached the group.
	capture := testkit.NewMessageCapture()
	if _, err := c.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "g"}, capture.Handle); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, msg(topic, "k", 1, "last")); err != nil {
		t.Fatal(err)
	}
	if err := capture.WaitUntil(ctx, "last", func(ms []*broker.Message) bool {
		return len(ms) > 0 && ms[len(ms)-1].Header(broker.HeaderID) == "last"
	}); err != nil {
		t.Fatal(err)
	}
	for _, m := range capture.Messages() {
		if id := m.Header(broker.HeaderID); id != "routed" && id != "last" {
			t.Errorf("message %q of a refused call was delivered", id)
		}
	}
}

// TestDropUnroutable: topics in Config.DropUnroutable accept messages no
// queue takes (live views nobody watches).
func TestDropUnroutable(t *testing.T) {
	e := newEnv(t)
	live := e.f.Name("live")
	e.track([]string{live}, nil)
	c := newClient(t, rabbitbus.Config{URLs: []string{e.url}, DropUnroutable: []string{live}})
	if err := c.Publish(deadline(t, 10*time.Second), msg(live, "k", 0, "nobody-watches")); err != nil {
		t.Fatalf("Publish to a DropUnroutable topic: %v", err)
	}
}

// TestConnectErrors: wrong credentials and unreachable nodes fail the
// constructors at once with a clear, typed error — every URL tried once,
// no retry loop — and leave no goroutine behind.
func TestConnectErrors(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	url := rabbittest.URL(t)
	wrong := strings.Replace(url, "guest:guest@", "guest:wrong@", 1)
	if wrong == url {
		t.Skip("broker URL has no guest:guest credentials to spoil")
	}
	ctx := deadline(t, 30*time.Second)
	_, err := rabbitbus.New(ctx, rabbitbus.Config{URLs: []string{wrong}})
	var ce *rabbitbus.ConnectError
	if !errors.Is(err, rabbitbus.ErrAccessRefused) || !errors.Is(err, rabbitbus.ErrConnect) || !errors.As(err, &ce) || len(ce.Nodes) != 1 {
		t.Errorf("wrong credentials: %v, want a ConnectError matching ErrAccessRefused", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error shows the password: %v", err)
	}
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.AccessRefused {
		t.Errorf("the broker's error is not reachable with errors.As: %v", err)
	}

	closed := []string{"amqp://guest:guest@" + closedPort(t) + "/", "amqp://guest:guest@" + closedPort(t) + "/"}
	_, err = rabbitbus.NewPublisher(ctx, rabbitbus.Config{URLs: closed})
	if !errors.As(err, &ce) || len(ce.Nodes) != 2 || errors.Is(err, rabbitbus.ErrAccessRefused) {
		t.Errorf("unreachable: %v, want a ConnectError with one entry per URL", err)
	}
	var ne *net.OpError
	if !errors.As(err, &ne) {
		t.Errorf("unreachable: the network error is not reachable with errors.As: %v", err)
	}
	_, err = rabbitbus.NewSubscriber(ctx, rabbitbus.Config{URLs: closed})
	if !errors.Is(err, rabbitbus.ErrConnect) {
		t.Errorf("NewSubscriber unreachable: %v", err)
	}
	_, err = rabbitbus.New(ctx, rabbitbus.Config{URLs: []string{"http://x/"}})
	if err == nil || !strings.Contains(err.Error(), "invalid config") {
		t.Errorf("invalid config: %v", err)
	}
}

// closedPort returns 127.0.0.1:port where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// TestNoGoroutineLeak: a client that published, consumed and closed leaves
// no goroutine behind.
func TestNoGoroutineLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f := rabbittest.New(t)
	url := f.URL()
	admin, err := rabbitbus.New(context.Background(), rabbitbus.Config{URLs: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	topic := f.Name("leak")
	defer deleteTopology(t, admin, []string{topic, broker.DeadLetterTopic(topic)}, []string{"g"})
	c, err := rabbitbus.New(context.Background(), rabbitbus.Config{URLs: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	capture := testkit.NewMessageCapture()
	if _, err := c.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "g", Concurrency: 4}, capture.Handle); err != nil {
		t.Fatal(err)
	}
	eph, err := c.Subscribe(context.Background(), broker.Subscription{Topic: topic, Ephemeral: true}, capture.Handle)
	if err != nil {
		t.Fatal(err)
	}
	ctx := deadline(t, 30*time.Second)
	if err := c.Publish(ctx, msg(topic, "k", 0, "a"), msg(topic, "k", 1, "b")); err != nil {
		t.Fatal(err)
	}
	if err := capture.WaitFor(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if err := eph.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, msg(topic, "k", 2, "c")); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Publish after Close: %v", err)
	}
}

// TestDataContentTypeOnly: a producer outside rabbitbus that names the
// content type only as the CloudEvents attribute (cloudEvents_datacontenttype
// in the headers table, no ContentType property, as the AMQP binding
// allows) has its JSON body read as JSON, not as Avro.
func TestDataContentTypeOnly(t *testing.T) {
	e := newEnv(t)
	c := newClient(t, rabbitbus.Config{URLs: []string{e.url}, Logger: testLogger(t)})
	topic := e.f.Name("dct")
	e.declareGroup(t, broker.Subscription{Topic: topic, Group: "g"})
	route := events.WithRoute(func(eventmodels.TypeInfo, eventmodels.Event) string { return topic })
	jsonBus, err := events.NewBus(c, route, events.WithJSON())
	if err != nil {
		t.Fatal(err)
	}
	bus, err := events.NewBus(c, route)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan eventmodels.Event, 1)
	r := events.NewRouter()
	events.OnEvent(r, func(_ context.Context, ev eventmodels.Event) error { got <- ev; return nil })
	if _, err := bus.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "g"}, r); err != nil {
		t.Fatal(err)
	}
	sent := samples.All()[7]
	m, err := jsonBus.Message(sent)
	if err != nil {
		t.Fatal(err)
	}
	m.Headers.Del(broker.HeaderContentType)
	m.SetHeader(broker.HeaderDataContentType, eventmodels.ContentTypeJSON)
	publishForeign(t, e.url, m)
	select {
	case ev := <-got:
		if !reflect.DeepEqual(ev, sent) {
			t.Fatalf("decoded %+v, want %+v", ev, sent)
		}
	case <-deadline(t, 30*time.Second).Done():
		t.Fatal("the JSON message with only cloudEvents_datacontenttype was not handled (dead-lettered as Avro?)")
	}
}
