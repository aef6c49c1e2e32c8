package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	events "github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/rabbitbus"
	"github.com/cosmic-horizons/events/testkit/rabbittest"
)

// rabbitEnv is a topic on the local RabbitMQ with groups whose handlers
// fail for good, so the consumer runtime dead-letters everything.
type rabbitEnv struct {
	f     *rabbittest.Fixture
	topic string
	conn  *amqp.Connection
	bus   *events.Bus
}

func newRabbitEnv(t *testing.T) *rabbitEnv {
	t.Helper()
	f := rabbittest.New(t)
	topic := f.Name("evctl")
	f.Track(topic+".unmatched", topic+".dlq.unmatched")
	b, err := rabbitbus.New(context.Background(), rabbitbus.Config{URLs: []string{f.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	bus, err := events.NewBus(b, events.WithRoute(func(eventmodels.TypeInfo, eventmodels.Event) string { return topic }))
	if err != nil {
		t.Fatal(err)
	}
	return &rabbitEnv{f: f, topic: topic, conn: f.Dial(), bus: bus}
}

// failGroups subscribes groups whose handlers fail for good, publishes es,
// waits until each group's dead-letter queue holds them all, and stops the
// subscriptions (their queues stay).
func (r *rabbitEnv) failGroups(t *testing.T, es []eventmodels.Event, groups ...string) {
	t.Helper()
	ctx := context.Background()
	router := events.NewRouter()
	events.OnEvent(router, func(context.Context, eventmodels.Event) error {
		return broker.Permanent(errors.New("db down"))
	})
	var cs []broker.Consumer
	for _, g := range groups {
		r.f.Track(r.topic + "." + g)
		c, err := r.bus.Subscribe(ctx, broker.Subscription{Topic: r.topic, Group: g, Retry: broker.RetryPolicy{MaxAttempts: 1}}, router)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	if err := r.bus.Publish(ctx, es...); err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		waitFor(t, "dead letters of "+g, func() bool { return r.depth(t, r.dlq(g)) == len(es) })
	}
	for _, c := range cs {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func (r *rabbitEnv) dlq(group string) string { return r.topic + "." + group + ".dlq" }

func (r *rabbitEnv) depth(t *testing.T, queue string) int {
	t.Helper()
	ch, err := r.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil {
		t.Fatalf("queue %s: %v", queue, err)
	}
	return q.Messages
}

// drain takes every message of queue and counts them by event ID.
func (r *rabbitEnv) drain(t *testing.T, queue string) map[string]int {
	t.Helper()
	ch, err := r.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	ids := map[string]int{}
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return ids
		}
		m, _ := rabbitbus.MessageFromDelivery(&d, queue)
		if m.Header(headerRedriveCount) != "1" || m.Key == "" || m.Header(broker.HeaderDLQError) == "" {
			t.Fatalf("redriven message lacks its key or headers: %+v", m)
		}
		ids[m.Header(broker.HeaderID)]++
	}
}

func TestRabbitDeadLetters(t *testing.T) {
	r := newRabbitEnv(t)
	es := failedEvents(5)
	r.failGroups(t, es, "billing", "audit")
	base := []string{"--url", r.f.URL(), "--topic", r.topic}

	t.Run("list", func(t *testing.T) {
		out := mustRun(t, append([]string{"dlq", "list", "--json", "--group", "billing,audit"}, base...)...)
		got := decodeJSON[[]dlqSummary](t, out.stdout)
		if len(got) != 2 || got[0].Source != r.dlq("billing") || got[0].Count != 5 || got[1].Count != 5 ||
			len(got[0].Errors) != 1 || !strings.Contains(got[0].Errors[0].Error, "db down") || got[0].Errors[0].Topics[0] != r.topic {
			t.Fatalf("list: %+v", got)
		}
	})

	t.Run("show leaves the queue as it was", func(t *testing.T) {
		args := append([]string{"dlq", "show", "--json", "--group", "billing"}, base...)
		first := jsonLines(t, mustRun(t, args...).stdout)
		// Closing its channel gave the messages back; the broker makes them
		// ready again asynchronously.
		waitFor(t, "the messages back in the queue", func() bool { return r.depth(t, r.dlq("billing")) == 5 })
		second := jsonLines(t, mustRun(t, args...).stdout)
		if len(first) != 5 || len(second) != 5 {
			t.Fatalf("show: %d then %d messages, want 5 each time", len(first), len(second))
		}
		waitFor(t, "the messages back in the queue", func() bool { return r.depth(t, r.dlq("billing")) == 5 })
		for i := range first {
			if first[i].ID != second[i].ID || first[i].ID != es[i].Envelope().EventID.String() {
				t.Fatalf("order changed at %d: %s, %s, published %s", i, first[i].ID, second[i].ID, es[i].Envelope().EventID)
			}
			if first[i].DeadLetter == nil || first[i].DeadLetter.Group != "billing" || len(first[i].Event) == 0 {
				t.Fatalf("message %d: %+v", i, first[i])
			}
		}
		waitFor(t, "the messages back in the queue", func() bool { return r.depth(t, r.dlq("billing")) == 5 })
		one := jsonLines(t, mustRun(t, append(args, "--key", "j-3")...).stdout)
		if len(one) != 1 || one[0].Key != "j-3" {
			t.Fatalf("--key j-3: %+v", one)
		}
	})

	t.Run("crash after an ack", func(t *testing.T) {
		waitFor(t, "the messages back in the queue", func() bool { return r.depth(t, r.dlq("billing")) == 5 })
		args := append([]string{"dlq", "redrive", "--group", "billing"}, base...)
		crashed := evctl(t, faults{afterCommit: func(n int) error {
			if n == 2 {
				return errors.New("injected crash")
			}
			return nil
		}}, args...)
		if crashed.code != exitFail {
			t.Fatalf("crashed run: exit %d: %s", crashed.code, crashed.stderr)
		}
		// The crash gave back what it had not acknowledged: 3 of 5.
		waitFor(t, "3 dead letters left after the crash", func() bool { return r.depth(t, r.dlq("billing")) == 3 })
		mustRun(t, args...)
		if d := r.depth(t, r.dlq("billing")); d != 0 {
			t.Fatalf("after the rerun the dead-letter queue holds %d", d)
		}
		got := r.drain(t, r.topic+".billing")
		for _, e := range es {
			if n := got[e.Envelope().EventID.String()]; n != 1 {
				t.Errorf("%s arrived %d times, want exactly 1", e.Envelope().EventID, n)
			}
		}
		if len(got) != len(es) {
			t.Fatalf("%d events back on the queue, want %d", len(got), len(es))
		}
	})

	t.Run("crash between confirm and ack", func(t *testing.T) {
		args := append([]string{"dlq", "redrive", "--group", "audit"}, base...)
		crashed := evctl(t, faults{afterPublish: func(n int) error {
			if n == 3 {
				return errors.New("injected crash")
			}
			return nil
		}}, args...)
		if crashed.code != exitFail {
			t.Fatalf("crashed run: exit %d: %s", crashed.code, crashed.stderr)
		}
		// Two were acknowledged; the third was confirmed but not.
		waitFor(t, "3 dead letters left after the crash", func() bool { return r.depth(t, r.dlq("audit")) == 3 })
		mustRun(t, args...)
		got := r.drain(t, r.topic+".audit")
		dups := 0
		for _, e := range es {
			switch got[e.Envelope().EventID.String()] {
			case 1:
			case 2:
				dups++
			default:
				t.Errorf("%s arrived %d times", e.Envelope().EventID, got[e.Envelope().EventID.String()])
			}
		}
		if dups != 1 {
			t.Fatalf("%d repeated, want exactly 1 (the one confirmed but not acked)", dups)
		}
	})
}

func TestRabbitTailAndTopics(t *testing.T) {
	r := newRabbitEnv(t)
	// A service's queue, which the tail must leave alone.
	r.f.Track(r.topic + ".svc")
	ch, err := r.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()

	rep := decodeJSON[topicsReport](t, mustRun(t, "topics", "--url", r.f.URL(), "--topic", r.topic, "--json").stdout)
	if len(rep.Created) != 2 || len(rep.Drift) != 0 {
		t.Fatalf("topics: %+v", rep)
	}
	if _, err := ch.QueueDeclare(r.topic+".svc", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(r.topic+".svc", "#", r.topic, false, nil); err != nil {
		t.Fatal(err)
	}
	out, wait := startTail(t, r.topic, "--url", r.f.URL(), "--count", "2")
	es := failedEvents(2)
	if err := r.bus.Publish(context.Background(), es...); err != nil {
		t.Fatal(err)
	}
	res := wait()
	if res.code != 0 {
		t.Fatalf("tail: exit %d: %s", res.code, res.stderr)
	}
	for _, e := range es {
		if !strings.Contains(out.String(), e.Envelope().EventID.String()) {
			t.Fatalf("tail missed %s:\n%s", e.Envelope().EventID, out.String())
		}
	}
	if d := r.depth(t, r.topic+".svc"); d != 2 {
		t.Fatalf("the service's queue holds %d, want its 2 messages untouched", d)
	}

	rep = decodeJSON[topicsReport](t, mustRun(t, "topics", "--url", r.f.URL(), "--topic", r.topic, "--group", "svc", "--json").stdout)
	if len(rep.Unchanged) != 2 || len(rep.Lag) != 1 || rep.Lag[0].Queue != r.topic+".svc" || rep.Lag[0].Lag != 2 {
		t.Fatalf("topics again: %+v", rep)
	}
	// An exchange declared otherwise is drift.
	other := r.f.Name("drift")
	r.f.Track(other + ".unmatched")
	if err := ch.ExchangeDeclare(other, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	d := evctl(t, faults{}, "topics", "--url", r.f.URL(), "--topic", other, "--json")
	if d.code != exitDrift {
		t.Fatalf("drift: exit %d: %s", d.code, d.stderr)
	}
	if rep := decodeJSON[topicsReport](t, d.stdout); len(rep.Drift) != 1 || rep.Drift[0].Topic != other {
		t.Fatalf("drift report: %+v", rep)
	}
}
