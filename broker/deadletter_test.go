package broker_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

var dlqTime = time.Date(2026, 3, 1, 12, 0, 0, 5_000_000, time.FixedZone("CET", 3600))

func failing(err error) broker.Handler {
	return func(context.Context, *broker.Message) error { return err }
}

func TestDeadLetterHeaders(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		edit  func(m *broker.Message)
		cfg   func(c *broker.DeadLetterConfig)
		topic string
		want  map[string]string // dead-letter headers expected on top of the original ones
	}{
		{
			name:  "retryable error",
			err:   errBoom,
			edit:  func(m *broker.Message) { m.Delivery.Attempt = 3 },
			topic: "job-lifecycle.dlq",
			want: map[string]string{
				broker.HeaderDLQError: "boom", broker.HeaderDLQAttempts: "3",
				broker.HeaderDLQTime: "2026-03-01T11:00:00.005Z", broker.HeaderDLQTopic: "job-lifecycle",
				broker.HeaderDLQGroup: "g", broker.HeaderDLQPartition: "3", broker.HeaderDLQOffset: "42",
			},
		},
		{
			name:  "permanent error",
			err:   broker.Permanent(errBoom),
			edit:  func(m *broker.Message) { m.Delivery.Attempt = 1 },
			topic: "job-lifecycle.dlq",
			want: map[string]string{
				broker.HeaderDLQError: "boom", broker.HeaderDLQAttempts: "1",
				broker.HeaderDLQTime: "2026-03-01T11:00:00.005Z", broker.HeaderDLQTopic: "job-lifecycle",
				broker.HeaderDLQGroup: "g", broker.HeaderDLQPartition: "3", broker.HeaderDLQOffset: "42",
				broker.HeaderDLQPermanent: "true",
			},
		},
		{
			name: "no partition (AMQP), no group, no attempt count",
			err:  errBoom,
			edit: func(m *broker.Message) {
				m.Delivery = broker.Delivery{Partition: -1, Offset: -1, Tag: 7}
			},
			cfg:   func(c *broker.DeadLetterConfig) { c.Group = "" },
			topic: "job-lifecycle.dlq",
			want: map[string]string{
				broker.HeaderDLQError: "boom", broker.HeaderDLQAttempts: "1",
				broker.HeaderDLQTime: "2026-03-01T11:00:00.005Z", broker.HeaderDLQTopic: "job-lifecycle",
			},
		},
		{
			name: "custom topic",
			err:  errBoom,
			edit: func(m *broker.Message) { m.Delivery.Attempt = 2 },
			cfg: func(c *broker.DeadLetterConfig) {
				c.Topic = func(m *broker.Message) string { return "parking." + m.Topic }
			},
			topic: "parking.job-lifecycle",
			want: map[string]string{
				broker.HeaderDLQError: "boom", broker.HeaderDLQAttempts: "2",
				broker.HeaderDLQTime: "2026-03-01T11:00:00.005Z", broker.HeaderDLQTopic: "job-lifecycle",
				broker.HeaderDLQGroup: "g", broker.HeaderDLQPartition: "3", broker.HeaderDLQOffset: "42",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := &capturePublisher{}
			rec := &recorder{}
			cfg := broker.DeadLetterConfig{Publisher: pub, Group: "g", Now: func() time.Time { return dlqTime }, Hooks: []broker.Hook{rec}}
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			m := newMessage()
			tt.edit(m)
			orig := maps.Clone(m.Headers)
			if err := broker.DeadLetter(cfg)(failing(tt.err))(context.Background(), m); err != nil {
				t.Fatalf("DeadLetter returned %v, want nil (dead-lettered, acknowledged)", err)
			}
			got := pub.Messages()
			if len(got) != 1 {
				t.Fatalf("%d messages published, want 1", len(got))
			}
			dl := got[0]
			if dl.Topic != tt.topic || dl.Key != m.Key || !bytes.Equal(dl.Body, m.Body) {
				t.Fatalf("dead letter %q key %q body %q; want %q, %q, %q", dl.Topic, dl.Key, dl.Body, tt.topic, m.Key, m.Body)
			}
			want := maps.Clone(orig)
			maps.Copy(want, tt.want)
			if !reflect.DeepEqual(dl.Headers, want) {
				t.Fatalf("headers\n got %v\nwant %v", dl.Headers, want)
			}
			if !reflect.DeepEqual(m.Headers, orig) {
				t.Fatalf("the original message's headers changed: %v", m.Headers)
			}
			if ev := rec.Events(); !reflect.DeepEqual(ev, []string{"deadletter"}) || !errors.Is(rec.Errs()[0], errBoom) {
				t.Fatalf("hooks = %v %v, want one dead letter with the handler error", ev, rec.Errs())
			}
		})
	}
}

func TestDeadLetterSuccessPublishesNothing(t *testing.T) {
	pub := &capturePublisher{}
	rec := &recorder{}
	err := broker.DeadLetter(broker.DeadLetterConfig{Publisher: pub, Hooks: []broker.Hook{rec}})(failing(nil))(context.Background(), newMessage())
	if err != nil || pub.Calls() != 0 || len(rec.Events()) != 0 {
		t.Fatalf("err %v, %d publishes, hooks %v; want nil, 0, none", err, pub.Calls(), rec.Events())
	}
}

func TestDeadLetterRetriesPublishUntilItSucceeds(t *testing.T) {
	pub := &capturePublisher{failNext: 3}
	rec := &recorder{}
	var logs bytes.Buffer
	cfg := broker.DeadLetterConfig{Publisher: pub, RetryBackoff: time.Millisecond, Hooks: []broker.Hook{rec},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if err := broker.DeadLetter(cfg)(failing(errBoom))(context.Background(), newMessage()); err != nil {
		t.Fatalf("err = %v, want nil once the dead letter was published", err)
	}
	if pub.Calls() != 4 || len(pub.Messages()) != 1 {
		t.Fatalf("%d publish calls, %d published; want 4 and 1", pub.Calls(), len(pub.Messages()))
	}
	if ev := rec.Events(); !reflect.DeepEqual(ev, []string{"deadletter"}) {
		t.Fatalf("hooks = %v, want one dead letter", ev)
	}
	if n := strings.Count(logs.String(), "dead-letter publish failed"); n != 3 {
		t.Fatalf("%d failure records, want 3:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "message dead-lettered") {
		t.Fatalf("no dead-letter record:\n%s", logs.String())
	}
}

func TestDeadLetterContextEndsWhilePublishFails(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The publisher fails every call and cancels ctx on its second one:
	// DeadLetter must give up and return the handler error (the message
	// stays unacknowledged).
	pub := &capturePublisher{failNext: -1, onCall: func(call int) {
		if call == 2 {
			cancel()
		}
	}}
	rec := &recorder{}
	cfg := broker.DeadLetterConfig{Publisher: pub, RetryBackoff: time.Millisecond, Hooks: []broker.Hook{rec}}
	err := broker.DeadLetter(cfg)(failing(errBoom))(ctx, newMessage())
	if !errors.Is(err, errBoom) || !errors.Is(err, errPublish) {
		t.Fatalf("err = %v, want the handler error and the publish error", err)
	}
	if pub.Calls() != 2 {
		t.Fatalf("%d publish calls, want 2", pub.Calls())
	}
	if len(rec.Events()) != 0 {
		t.Fatalf("hooks = %v, want none: nothing was dead-lettered", rec.Events())
	}
}

func TestDeadLetterStoppingLeavesMessageUnacknowledged(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pub := &capturePublisher{}
	h := func(context.Context, *broker.Message) error { cancel(); return errBoom }
	err := broker.DeadLetter(broker.DeadLetterConfig{Publisher: pub})(h)(ctx, newMessage())
	if !errors.Is(err, errBoom) || pub.Calls() != 0 {
		t.Fatalf("err = %v, %d publishes; want the handler error and none", err, pub.Calls())
	}
}

func TestDeadLetterWithoutPublisher(t *testing.T) {
	err := broker.DeadLetter(broker.DeadLetterConfig{})(failing(errBoom))(context.Background(), newMessage())
	if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "no Publisher") {
		t.Fatalf("err = %v, want the handler error and a missing-publisher error", err)
	}
}

func TestDeadLetterMessageDefaults(t *testing.T) {
	m := &broker.Message{Topic: "t", Key: "k"} // no headers, zero Delivery
	dl := broker.DeadLetterMessage(m, broker.DeadLetterTopic(m.Topic), "", errBoom, dlqTime)
	if dl.Topic != "t.dlq" || dl.Headers[broker.HeaderDLQAttempts] != "1" {
		t.Fatalf("dead letter %+v", dl)
	}
	if _, err := time.Parse(time.RFC3339Nano, dl.Headers[broker.HeaderDLQTime]); err != nil {
		t.Fatalf("x-dlq-time %q: %v", dl.Headers[broker.HeaderDLQTime], err)
	}
	if m.Headers != nil {
		t.Fatal("DeadLetterMessage changed the original")
	}
}
