package rabbitbus_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/rabbitbus"
	"github.com/cosmic-horizons/events/testkit"
)

// getAll takes every message of queue (auto-ack) over conn.
func getAll(t *testing.T, conn *amqp.Connection, queue string) []amqp.Delivery {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ch.Close() }()
	var out []amqp.Delivery
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("get from %s: %v", queue, err)
		}
		if !ok {
			return out
		}
		out = append(out, d)
	}
}

// TestDeadLetterPoison: a message that fails every attempt lands, with the
// error headers, in its group's "<queue>.dlq" and on the dead-letter topic
// "<topic>.dlq"; the other messages of its key keep flowing in order, and
// another group's dead-letter queue stays empty.
func TestDeadLetterPoison(t *testing.T) {
	e := newEnv(t)
	c := newClient(t, rabbitbus.Config{URLs: []string{e.url}, Logger: testLogger(t)})
	topic := e.f.Name("poison")
	e.declareGroup(t, broker.Subscription{Topic: topic, Group: "g"})
	e.declareGroup(t, broker.Subscription{Topic: topic, Group: "other"})
	e.track([]string{broker.DeadLetterTopic(topic)}, []string{"watch"})

	watch := testkit.NewMessageCapture()
	if _, err := c.Subscribe(context.Background(), broker.Subscription{Topic: broker.DeadLetterTopic(topic), Group: "watch"}, watch.Handle); err != nil {
		t.Fatal(err)
	}
	const poison = "k1-3"
	ok := testkit.NewMessageCapture()
	ok.FailWhen(func(m *broker.Message) bool { return m.Header(broker.HeaderID) == poison }, errors.New("poison: cannot process"))
	if _, err := c.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "g", Concurrency: 2,
		Retry: broker.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond}}, ok.Handle); err != nil {
		t.Fatal(err)
	}
	other := testkit.NewMessageCapture()
	if _, err := c.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "other"}, other.Handle); err != nil {
		t.Fatal(err)
	}
	var msgs []*broker.Message
	for i := range 20 {
		key, seq := "k"+strconv.Itoa(i%2), i/2
		msgs = append(msgs, msg(topic, key, seq, key+"-"+strconv.Itoa(seq)))
	}
	if err := c.Publish(deadline(t, 30*time.Second), msgs...); err != nil {
		t.Fatal(err)
	}
	if err := watch.WaitFor(deadline(t, 30*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	if err := ok.WaitForDistinct(deadline(t, 30*time.Second), 19); err != nil {
		t.Fatal(err)
	}
	if err := other.WaitForDistinct(deadline(t, 30*time.Second), 20); err != nil {
		t.Fatal(err)
	}
	checkStreamExcept(t, ok.Messages(), func(key string, seq int) bool { return key == "k1" && seq == 3 })

	dl := watch.Messages()[0]
	want := map[string]string{
		broker.HeaderDLQError: "poison: cannot process", broker.HeaderDLQAttempts: "2",
		broker.HeaderDLQTopic: topic, broker.HeaderDLQGroup: "g", broker.HeaderID: poison,
	}
	for k, v := range want {
		if dl.Header(k) != v {
			t.Errorf("dead letter on the topic: header %s = %q, want %q", k, dl.Header(k), v)
		}
	}
	if dl.Key != "k1" || dl.Header(broker.HeaderDLQTime) == "" {
		t.Errorf("dead letter key %q, time %q", dl.Key, dl.Header(broker.HeaderDLQTime))
	}

	conn := e.f.Dial()
	inQueue := getAll(t, conn, c.QueueName(topic, "g")+".dlq")
	if len(inQueue) != 1 {
		t.Fatalf("%s.dlq holds %d messages, want the poison", c.QueueName(topic, "g"), len(inQueue))
	}
	if got := inQueue[0].Headers[broker.HeaderDLQError]; got != "poison: cannot process" {
		t.Errorf("dead letter in the group's queue: %s = %v", broker.HeaderDLQError, got)
	}
	if got := inQueue[0].Headers[rabbitbus.HeaderKey]; got != "k1" {
		t.Errorf("dead letter in the group's queue: key %v", got)
	}
	if n := len(getAll(t, conn, c.QueueName(topic, "other")+".dlq")); n != 0 {
		t.Errorf("the other group's dead-letter queue holds %d messages", n)
	}
}

// TestNativeDeadLetter: what the broker dead-letters by itself — a
// Nack(requeue=false), or a quorum queue's x-delivery-limit — lands in the
// group's "<queue>.dlq" too, and on the dead-letter topic.
func TestNativeDeadLetter(t *testing.T) {
	e := newEnv(t)
	c := newClient(t, rabbitbus.Config{URLs: []string{e.url}, DeliveryLimit: 1, Logger: testLogger(t)})
	topic := e.f.Name("native")
	e.track([]string{topic, broker.DeadLetterTopic(topic)}, []string{"g", "watch"})
	if err := c.DeclareGroup(deadline(t, 30*time.Second), broker.Subscription{Topic: topic, Group: "g"}); err != nil {
		t.Fatal(err) // declared by c: its queue has the x-delivery-limit
	}
	watch := testkit.NewMessageCapture()
	if _, err := c.Subscribe(context.Background(), broker.Subscription{Topic: broker.DeadLetterTopic(topic), Group: "watch"}, watch.Handle); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(deadline(t, 10*time.Second), msg(topic, "k", 0, "rejected"), msg(topic, "k", 1, "limit")); err != nil {
		t.Fatal(err)
	}

	conn := e.f.Dial()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	queue := c.QueueName(topic, "g")
	deliveries, err := ch.Consume(queue, "raw", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan error, 1)
	go func() { seen <- watch.WaitFor(deadline(t, 30*time.Second), 2) }()
	for done := false; !done; {
		select {
		case d := <-deliveries:
			requeue := d.MessageId == "limit" // returned until the delivery limit dead-letters it
			if err := d.Nack(false, requeue); err != nil {
				t.Fatal(err)
			}
		case err := <-seen:
			if err != nil {
				t.Fatal(err)
			}
			done = true
		}
	}
	_ = ch.Close()
	reasons := map[string]string{}
	for _, d := range getAll(t, conn, queue+".dlq") {
		reasons[d.MessageId], _ = d.Headers["x-first-death-reason"].(string)
	}
	if reasons["rejected"] != "rejected" || reasons["limit"] != "delivery_limit" {
		t.Errorf("dead-letter reasons in %s.dlq: %v, want rejected and delivery_limit", queue, reasons)
	}
	for _, m := range watch.Messages() {
		if !strings.Contains(m.Header("x-death"), queue) {
			t.Errorf("dead letter on the topic lacks x-death naming %s: %v", queue, m.Headers)
		}
	}
}

// TestDeadLetterRefusedForGood: when a dead letter has nowhere to go (the
// group's dead-letter queue deleted and nothing else bound: unroutable),
// it is not retried for ever, nor requeued in a loop: by default the
// subscription stops with a *DeadLetterError and the message stays in its
// queue; with FallbackDiscard it is acknowledged and consumption goes on.
func TestDeadLetterRefusedForGood(t *testing.T) {
	for _, fb := range []broker.DeadLetterFallback{broker.FallbackStop, broker.FallbackDiscard} {
		t.Run(fb.String(), func(t *testing.T) {
			e := newEnv(t)
			c := newClient(t, rabbitbus.Config{URLs: []string{e.url}, Logger: testLogger(t)})
			topic := e.f.Name("dlq-refused")
			sub := broker.Subscription{Topic: topic, Group: "g", Retry: broker.RetryPolicy{MaxAttempts: 1}, DeadLetterFallback: fb}
			e.declareGroup(t, sub)
			conn, err := amqp.Dial(e.url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ch, err := conn.Channel()
			if err != nil {
				t.Fatal(err)
			}
			queue := c.QueueName(topic, "g")
			got := testkit.NewMessageCapture()
			got.FailWhen(func(m *broker.Message) bool { return string(m.Body) == "poison" }, errors.New("cannot handle"))
			cons, err := c.Subscribe(context.Background(), sub, got.Handle)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ch.QueueDelete(queue+".dlq", false, false, false); err != nil {
				t.Fatal(err)
			}
			ctx := deadline(t, 30*time.Second)
			if err := c.Publish(ctx, &broker.Message{Topic: topic, Key: "k", Body: []byte("poison")},
				&broker.Message{Topic: topic, Key: "k", Body: []byte("next")}); err != nil {
				t.Fatal(err)
			}
			switch fb {
			case broker.FallbackStop:
				select {
				case <-cons.Done():
				case <-ctx.Done():
					t.Fatal("the subscription neither stopped nor moved on")
				}
				var dle *broker.DeadLetterError
				if !errors.As(cons.Err(), &dle) || !errors.Is(cons.Err(), broker.ErrUnroutable) {
					t.Fatalf("Err() = %v, want an unroutable *DeadLetterError", cons.Err())
				}
				// The quorum queue applies the requeue of the closed
				// channel's deliveries shortly after the close.
				testkit.Eventually(ctx, t, "both messages ready again in "+queue+" (the poison message was not acknowledged)", func() bool {
					q, err := ch.QueueDeclarePassive(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
					if err != nil {
						t.Fatal(err)
					}
					return q.Messages == 2
				})
			case broker.FallbackDiscard:
				if err := got.WaitFor(ctx, 1); err != nil {
					t.Fatal(err)
				}
				if b := string(got.Messages()[0].Body); b != "next" {
					t.Fatalf("handled %q, want next", b)
				}
			}
		})
	}
}
