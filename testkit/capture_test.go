package testkit_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/testkit"
)

// withID returns a message with a ce_id, as every message of the Bus has.
func withID(topic, key string, seq int, id string) *broker.Message {
	m := msg(topic, key, seq)
	m.SetHeader(broker.HeaderID, id)
	return m
}

func TestMessageCaptureCapturesCopies(t *testing.T) {
	c := testkit.NewMessageCapture()
	m := msg("t", "k", 1)
	m.Delivery = broker.Delivery{Partition: 3, Offset: 9, Attempt: 1}
	if err := c.Handler()(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	m.SetHeader("seq", "changed")
	m.Body[0] = 'X'
	got := c.Messages()[0]
	if got.Header("seq") != "1" || string(got.Body) != "body-1" || got.Delivery.Offset != 9 {
		t.Fatalf("captured %+v", got)
	}
	if c.Count() != 1 || c.Calls() != 1 {
		t.Fatalf("Count %d Calls %d", c.Count(), c.Calls())
	}
}

func TestMessageCaptureWaitFor(t *testing.T) {
	c := testkit.NewMessageCapture()
	const workers, each = 6, 300
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				_ = c.Handle(t.Context(), msg("t", fmt.Sprint("k", w), i))
			}
		})
	}
	if err := c.WaitFor(deadline(t, 10*time.Second), workers*each); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if got := c.Keys(); len(got) != workers {
		t.Fatalf("Keys = %v", got)
	}
	c.AssertOrderedByKey(t, testkit.HeaderSeq("seq"))
}

func TestMessageCaptureWaitErrorsSayWhatIsMissing(t *testing.T) {
	c := testkit.NewMessageCapture()
	for i := range 7 {
		_ = c.Handle(t.Context(), withID("jobs", fmt.Sprint("job-", i), i, fmt.Sprint("id-", i)))
	}
	err := c.WaitFor(deadline(t, 5*time.Millisecond), 10)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"got 7 of 10 messages", "last 5", "jobs/job-6/-/id-6", "jobs/job-2/-/id-2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("WaitFor error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "id-1,") {
		t.Errorf("WaitFor error lists more than the last 5: %q", err)
	}

	err = c.WaitUntil(deadline(t, 5*time.Millisecond), "a message for job-99", func(ms []*broker.Message) bool {
		for _, m := range ms {
			if m.Key == "job-99" {
				return true
			}
		}
		return false
	})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "a message for job-99: not reached after 7 messages") {
		t.Fatalf("WaitUntil error = %v", err)
	}

	empty := testkit.NewMessageCapture()
	if err := empty.WaitFor(deadline(t, time.Millisecond), 1); err == nil || !strings.Contains(err.Error(), "nothing captured") {
		t.Fatalf("empty WaitFor error = %v", err)
	}
}

func TestMessageCaptureWaitUntilWakesOnEachMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := testkit.NewMessageCapture()
		done := make(chan error, 1)
		calls := 0
		go func() {
			done <- c.WaitUntil(context.Background(), "key b", func(ms []*broker.Message) bool {
				calls++
				return len(ms) > 0 && ms[len(ms)-1].Key == "b"
			})
		}()
		synctest.Wait()
		_ = c.Handle(context.Background(), msg("t", "a", 1))
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("WaitUntil returned early: %v", err)
		default:
		}
		_ = c.Handle(context.Background(), msg("t", "b", 2))
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if calls != 3 {
			t.Fatalf("cond called %d times, want 3 (start, a, b)", calls)
		}
	})
}

func TestMessageCaptureDistinctAndDuplicates(t *testing.T) {
	c := testkit.NewMessageCapture()
	for _, id := range []string{"a", "b", "a", "c", "a", "b"} {
		_ = c.Handle(t.Context(), withID("t", "k", 0, id))
	}
	_ = c.Handle(t.Context(), msg("t", "k", 0)) // no ce_id
	if c.Count() != 7 || c.Distinct() != 3 {
		t.Fatalf("Count %d Distinct %d", c.Count(), c.Distinct())
	}
	if got := c.Duplicates(nil); !reflect.DeepEqual(got, map[string]int{"a": 3, "b": 2}) {
		t.Fatalf("Duplicates = %v", got)
	}
	if got := c.Duplicates(func(m *broker.Message) string { return m.Key }); !reflect.DeepEqual(got, map[string]int{"k": 7}) {
		t.Fatalf("Duplicates(key) = %v", got)
	}
	if err := c.WaitForDistinct(deadline(t, time.Second), 3); err != nil {
		t.Fatal(err)
	}
	err := c.WaitForDistinct(deadline(t, time.Millisecond), 4)
	if err == nil || !strings.Contains(err.Error(), "got 3 of 4 distinct messages (7 deliveries)") {
		t.Fatalf("WaitForDistinct error = %v", err)
	}
}

func TestMessageCaptureInjectedFailures(t *testing.T) {
	c := testkit.NewMessageCapture()
	boom := errors.New("boom")
	c.FailNext(2, boom)
	for i := range 3 {
		err := c.Handle(t.Context(), msg("t", "k", i))
		if (i < 2) != errors.Is(err, boom) {
			t.Fatalf("call %d: err = %v", i, err)
		}
	}
	c.FailWhen(func(m *broker.Message) bool { return m.Key == "poison" }, broker.Permanent(boom))
	c.FailWhen(func(m *broker.Message) bool { return m.Key == "other" }, nil)
	c.FailWhen(nil, boom) // ignored
	if err := c.Handle(t.Context(), msg("t", "poison", 9)); !broker.IsPermanent(err) {
		t.Fatalf("poison: err = %v", err)
	}
	if err := c.Handle(t.Context(), msg("t", "other", 9)); !errors.Is(err, testkit.ErrInjected) {
		t.Fatalf("other: err = %v", err)
	}
	if c.Count() != 1 || c.Calls() != 5 || len(c.Failed()) != 4 {
		t.Fatalf("Count %d Calls %d Failed %d", c.Count(), c.Calls(), len(c.Failed()))
	}
	if f := c.Failed(); f[2].Key != "poison" {
		t.Fatalf("Failed = %v", f)
	}
	c.ClearFailures()
	if err := c.Handle(t.Context(), msg("t", "poison", 10)); err != nil {
		t.Fatalf("after ClearFailures: %v", err)
	}
	c.Reset()
	if c.Count() != 0 || c.Calls() != 0 || len(c.Failed()) != 0 {
		t.Fatal("Reset kept state")
	}
}

// TestMessageCaptureDrivesRetries fails the first attempts of a message so
// that the broker's Retry middleware has to retry it.
func TestMessageCaptureDrivesRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := testkit.NewMessageCapture()
		c.FailWhen(func(m *broker.Message) bool { return m.Delivery.Attempt < 3 }, errors.New("flaky"))
		h := broker.Chain(c.Handle, broker.Retry(broker.RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Second, Jitter: -1}))
		start := time.Now()
		if err := h(context.Background(), msg("t", "k", 1)); err != nil {
			t.Fatal(err)
		}
		if c.Calls() != 3 || len(c.Failed()) != 2 || c.Count() != 1 || c.Messages()[0].Delivery.Attempt != 3 {
			t.Fatalf("Calls %d Failed %d Count %d", c.Calls(), len(c.Failed()), c.Count())
		}
		if took := time.Since(start); took != 3*time.Second { // backoff 1s then 2s
			t.Fatalf("retries took %v, want 3s", took)
		}
	})
}

func TestMessageCaptureDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := testkit.NewMessageCapture()
		c.SetDelay(time.Minute)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := c.Handle(ctx, msg("t", "k", 1)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		start := time.Now()
		if err := c.Handle(context.Background(), msg("t", "k", 2)); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != time.Minute || c.Count() != 1 {
			t.Fatalf("took %v, Count %d", took, c.Count())
		}
	})
}

func TestMessageCaptureOrderByKey(t *testing.T) {
	tests := []struct {
		name    string
		keys    string // key and seq pairs, e.g. "a1 b1 a2"
		ids     bool   // give each message a ce_id of key+seq
		wantErr string
	}{
		{name: "ordered", keys: "a1 b1 a2 b2 a3 b3"},
		{name: "equal passes", keys: "a1 a1 a2"},
		{name: "swap", keys: "a1 b1 a3 b2 a2", wantErr: `1 ordering violation(s) in 5 messages of 2 keys; first: key "a": message #4 (the key's #2, seq 2`},
		{name: "points at the max", keys: "a5 a1", wantErr: "arrived after message #0 (seq 5)"},
		{name: "redelivery skipped", keys: "a1 a2 a3 a2 a3 a4", ids: true},
		{name: "redelivery without ids", keys: "a1 a2 a3 a2 a3 a4", wantErr: "1 ordering violation(s)"},
		{name: "many", keys: "a3 a2 a1", wantErr: "2 ordering violation(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testkit.NewMessageCapture()
			for _, f := range strings.Fields(tt.keys) {
				var seq int
				fmt.Sscan(f[1:], &seq)
				m := msg("t", f[:1], seq)
				if tt.ids {
					m.SetHeader(broker.HeaderID, f)
				}
				_ = c.Handle(t.Context(), m)
			}
			err := c.CheckOrderedByKey(testkit.HeaderSeq("seq"))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			tb := &fakeTB{}
			if c.AssertOrderedByKey(tb, testkit.HeaderSeq("seq")) || len(tb.errors) != 1 || tb.fatal {
				t.Fatalf("AssertOrderedByKey reported %q (fatal %v)", tb.errors, tb.fatal)
			}
		})
	}
	if got := testkit.HeaderSeq("seq")(&broker.Message{}); got != -1 {
		t.Fatalf("HeaderSeq on a missing header = %d, want -1", got)
	}
	if got := testkit.HeaderSeq("seq")(msg("t", "k", 0).Clone()); got != 0 {
		t.Fatalf("HeaderSeq = %d", got)
	}
}

func TestMessageCaptureDecodesAndOrdersBusMessages(t *testing.T) {
	pub := testkit.NewMockPublisher()
	c := testkit.NewMessageCapture()
	pub.Subscribe("", c.Handle)
	bus, _ := events.NewBus(pub)
	b := testkit.NewEventBuilder(8)
	var want []eventmodels.Event
	for i := range 5 {
		want = append(want, b.JobLifecycle(fmt.Sprint("job-", i), eventmodels.StatusCompleted, i)...)
	}
	if err := bus.Publish(t.Context(), want...); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitFor(deadline(t, 5*time.Second), len(want)); err != nil {
		t.Fatal(err)
	}
	if got := c.Events(); !reflect.DeepEqual(got, want) || c.DecodeErrors() != nil {
		t.Fatalf("Events differ or DecodeErrors %v", c.DecodeErrors())
	}
	if got := len(testkit.EventsOf[*eventmodels.JobCompleted](c)); got != 5 {
		t.Fatalf("%d completions, want 5", got)
	}
	if got := len(c.ByKey("job-4")); got != 4+4 {
		t.Fatalf("ByKey(job-4) = %d messages", got)
	}
	c.AssertOrderedByKey(t, testkit.EventTimeSeq)
	if got := testkit.EventTimeSeq(&broker.Message{}); got != -1 {
		t.Fatalf("EventTimeSeq without ce_time = %d", got)
	}
	// Deliver job-2's first event again at the end: a redelivery, not a reordering.
	_ = c.Handle(t.Context(), c.ByKey("job-2")[0])
	c.AssertOrderedByKey(t, testkit.EventTimeSeq)
	if d := c.Duplicates(nil); len(d) != 1 {
		t.Fatalf("Duplicates = %v", d)
	}
}

func TestMessageCaptureConcurrentReadersAndWriters(t *testing.T) {
	c := testkit.NewMessageCapture()
	c.FailWhen(func(m *broker.Message) bool { return m.Header("seq") == "13" }, nil)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				_ = c.Handle(t.Context(), withID("t", fmt.Sprint(w), i, fmt.Sprint(w, "-", i)))
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			_, _, _ = c.Messages(), c.Duplicates(nil), c.CheckOrderedByKey(testkit.HeaderSeq("seq"))
			_, _ = c.Events(), c.Failed()
		}
	})
	if err := c.WaitForDistinct(deadline(t, 10*time.Second), 4*199); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if c.Count() != 4*199 || len(c.Failed()) != 4 {
		t.Fatalf("Count %d Failed %d", c.Count(), len(c.Failed()))
	}
}

// TestCaptureIDsCompareAsUUIDs: the same UUID in upper and lower case is
// one message for Distinct and Duplicates.
func TestCaptureIDsCompareAsUUIDs(t *testing.T) {
	c := testkit.NewMessageCapture()
	id := "dabc6342-0008-4aa6-8f3e-1b2c3d4e5f60"
	for _, v := range []string{id, strings.ToUpper(id)} {
		if err := c.Handle(context.Background(), &broker.Message{Topic: "t", Headers: broker.Headers{{Key: broker.HeaderID, Value: v}}}); err != nil {
			t.Fatal(err)
		}
	}
	if c.Distinct() != 1 || c.Duplicates(nil)[id] != 2 {
		t.Fatalf("Distinct %d, Duplicates %v; want 1 and %s twice", c.Distinct(), c.Duplicates(nil), id)
	}
}
