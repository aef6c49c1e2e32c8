package broker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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
			orig := m.Headers.Clone()
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
			want := orig.Map()
			maps.Copy(want, tt.want)
			if !reflect.DeepEqual(dl.Headers.Map(), want) || len(dl.Headers) != len(want) {
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
	if dl.Topic != "t.dlq" || dl.Headers.Get(broker.HeaderDLQAttempts) != "1" {
		t.Fatalf("dead letter %+v", dl)
	}
	if _, err := time.Parse(time.RFC3339Nano, dl.Headers.Get(broker.HeaderDLQTime)); err != nil {
		t.Fatalf("x-dlq-time %q: %v", dl.Headers.Get(broker.HeaderDLQTime), err)
	}
	if m.Headers != nil {
		t.Fatal("DeadLetterMessage changed the original")
	}
}

// TestDeadLetterErrorHeaderIsBounded: a handler error of any length adds at
// most MaxDeadLetterErrorBytes, cut at a rune boundary, so a dead letter
// always fits within DeadLetterOverhead of the original.
func TestDeadLetterErrorHeaderIsBounded(t *testing.T) {
	long := errors.New(strings.Repeat("é", 100_000)) // 2 bytes a rune
	m := newMessage()
	m.Topic = strings.Repeat("t", 1000)
	dl := broker.DeadLetterMessage(m, "x.dlq", strings.Repeat("g", 1000), long, dlqTime)
	got := dl.Header(broker.HeaderDLQError)
	if len(got) > broker.MaxDeadLetterErrorBytes || !strings.HasSuffix(got, "…[truncated]") || !utf8.ValidString(got) {
		t.Fatalf("x-dlq-error is %d bytes (valid UTF-8 %v), suffix %q; want at most %d, valid, marked truncated",
			len(got), utf8.ValidString(got), got[max(0, len(got)-20):], broker.MaxDeadLetterErrorBytes)
	}
	if added := dl.Size() - m.Size(); added > broker.DeadLetterOverhead {
		t.Fatalf("the dead-letter headers add %d bytes, over DeadLetterOverhead %d", added, broker.DeadLetterOverhead)
	}
	short := broker.DeadLetterMessage(m, "x.dlq", "g", errBoom, dlqTime)
	if short.Header(broker.HeaderDLQError) != "boom" {
		t.Fatalf("a short error was changed: %q", short.Header(broker.HeaderDLQError))
	}
}

// TestDeadLetterOverMaxSizeDropsBody: a dead letter larger than its
// destination takes keeps every header and records the body's size and
// SHA-256 instead of the body.
func TestDeadLetterOverMaxSizeDropsBody(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 5000)
	for _, tc := range []struct {
		name    string
		maxSize int
		dropped bool
	}{
		{"fits", 5000 + 2*broker.DeadLetterOverhead, false},
		{"too large", 4000, true},
		{"no limit", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := &capturePublisher{}
			m := newMessage()
			m.Body = body
			cfg := broker.DeadLetterConfig{Publisher: pub, MaxSize: tc.maxSize}
			if err := broker.DeadLetter(cfg)(failing(errBoom))(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			dl := pub.Messages()[0]
			if !tc.dropped {
				if !bytes.Equal(dl.Body, body) || dl.Header(broker.HeaderDLQBodySize) != "" {
					t.Fatalf("body of %d bytes, size header %q; want the whole body", len(dl.Body), dl.Header(broker.HeaderDLQBodySize))
				}
				return
			}
			sum := sha256.Sum256(body)
			if len(dl.Body) != 0 || dl.Header(broker.HeaderDLQBodySize) != "5000" ||
				dl.Header(broker.HeaderDLQBodySHA256) != hex.EncodeToString(sum[:]) {
				t.Fatalf("body %d bytes, size %q, sha %q; want none, 5000, the SHA-256",
					len(dl.Body), dl.Header(broker.HeaderDLQBodySize), dl.Header(broker.HeaderDLQBodySHA256))
			}
			if dl.Header("x-custom") != "kept" || dl.Header(broker.HeaderDLQError) != "boom" {
				t.Fatalf("headers lost: %v", dl.Headers)
			}
			if len(m.Body) != 5000 {
				t.Fatal("the original message lost its body")
			}
		})
	}
}

// TestDeadLetterRefusedForGood: a publish error that retrying cannot fix is
// tried once, logged, told to HookDeadLetterFailed, and the fallback
// applies: stop (a *DeadLetterError) or discard (nil).
func TestDeadLetterRefusedForGood(t *testing.T) {
	for _, perr := range []error{broker.ErrMessageTooLarge, broker.ErrUnroutable, broker.ErrNotAuthorized, broker.ErrInvalidMessage} {
		for _, fb := range []broker.DeadLetterFallback{broker.FallbackStop, broker.FallbackDiscard} {
			t.Run(perr.Error()+"/"+fb.String(), func(t *testing.T) {
				pub := &capturePublisher{failNext: -1, err: &broker.PublishError{Failed: []broker.FailedMessage{{Err: perr}}}}
				rec := &recorder{}
				var logs bytes.Buffer
				cfg := broker.DeadLetterConfig{Publisher: pub, Fallback: fb, RetryBackoff: time.Millisecond,
					Hooks: []broker.Hook{rec}, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
				done := make(chan error, 1)
				go func() { done <- broker.DeadLetter(cfg)(failing(errBoom))(context.Background(), newMessage()) }()
				var err error
				select {
				case err = <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("DeadLetter still retrying a publish refused for good")
				}
				// Too large is tried once more without the body.
				wantCalls := 1
				if errors.Is(perr, broker.ErrMessageTooLarge) {
					wantCalls = 2
				}
				if pub.Calls() != wantCalls {
					t.Fatalf("%d publish calls, want %d", pub.Calls(), wantCalls)
				}
				if ev := rec.Events(); !reflect.DeepEqual(ev, []string{"deadletterfailed"}) {
					t.Fatalf("hooks = %v, want one refused dead letter", ev)
				}
				if !strings.Contains(logs.String(), "dead letter refused") {
					t.Fatalf("not logged:\n%s", logs.String())
				}
				var dle *broker.DeadLetterError
				switch fb {
				case broker.FallbackStop:
					if !errors.As(err, &dle) || !errors.Is(err, perr) || !errors.Is(err, errBoom) || dle.Topic != "job-lifecycle.dlq" {
						t.Fatalf("err = %v, want a *DeadLetterError with both causes", err)
					}
				case broker.FallbackDiscard:
					if err != nil {
						t.Fatalf("err = %v, want nil (discarded)", err)
					}
				}
			})
		}
	}
}

// TestDeadLetterTransientBacksOff: transient publish failures are retried
// with a growing wait.
func TestDeadLetterTransientBacksOff(t *testing.T) {
	var calls []time.Time
	pub := &capturePublisher{failNext: 4, onCall: func(int) { calls = append(calls, time.Now()) }}
	cfg := broker.DeadLetterConfig{Publisher: pub, RetryBackoff: 5 * time.Millisecond, MaxRetryBackoff: 20 * time.Millisecond}
	if err := broker.DeadLetter(cfg)(failing(errBoom))(context.Background(), newMessage()); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 5 {
		t.Fatalf("%d calls, want 5", len(calls))
	}
	// Waits are at least 5, 10, 20, 20 ms (the timer never fires early).
	for i, min := range []time.Duration{5, 10, 20, 20} {
		if gap := calls[i+1].Sub(calls[i]); gap < min*time.Millisecond {
			t.Errorf("wait %d was %v, want at least %v", i+1, gap, min*time.Millisecond)
		}
	}
}

func TestIsPermanentPublishError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{broker.ErrMessageTooLarge, true},
		{fmt.Errorf("wrapped: %w", broker.ErrUnroutable), true},
		{&broker.PublishError{Failed: []broker.FailedMessage{{Err: broker.ErrNotAuthorized}}}, true},
		{broker.Permanent(errBoom), true},
		{errBoom, false},
		{broker.ErrClosed, false},
		{context.DeadlineExceeded, false},
		{nil, false},
	} {
		if got := broker.IsPermanentPublishError(tc.err); got != tc.want {
			t.Errorf("IsPermanentPublishError(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestDeadLetterRefusedAsTooLargeRetriesWithoutBody: when the publisher
// measures the dead letter as too large, it is sent again at once without
// its body.
func TestDeadLetterRefusedAsTooLargeRetriesWithoutBody(t *testing.T) {
	pub := &capturePublisher{failNext: 1, err: broker.ErrMessageTooLarge}
	rec := &recorder{}
	cfg := broker.DeadLetterConfig{Publisher: pub, Hooks: []broker.Hook{rec}}
	if err := broker.DeadLetter(cfg)(failing(errBoom))(context.Background(), newMessage()); err != nil {
		t.Fatal(err)
	}
	msgs := pub.Messages()
	if pub.Calls() != 2 || len(msgs) != 1 || len(msgs[0].Body) != 0 || msgs[0].Header(broker.HeaderDLQBodySize) != "4" {
		t.Fatalf("%d calls, published %v; want 2 calls and one dead letter without its body", pub.Calls(), msgs)
	}
	if ev := rec.Events(); !reflect.DeepEqual(ev, []string{"deadletter"}) {
		t.Fatalf("hooks = %v", ev)
	}
}
