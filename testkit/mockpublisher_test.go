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
	"github.com/stretchr/testify/require"
)

func msg(topic, key string, seq int) *broker.Message {
	return &broker.Message{Topic: topic, Key: key, Headers: broker.Headers{{Key: "seq", Value: fmt.Sprint(seq)}}, Body: []byte(fmt.Sprintf("body-%d", seq))}
}

func deadline(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestMockPublisherWithBus(t *testing.T) {
	pub := testkit.NewMockPublisher()
	bus, err := events.NewBus(pub)
	if err != nil {
		t.Fatal(err)
	}
	b := testkit.NewEventBuilder(1)
	life := b.JobLifecycle("job-1", eventmodels.StatusCompleted, 2)
	metrics := b.JobMetrics().With(func(e *eventmodels.JobMetrics) { e.JobID = "job-1" }).Build()
	published := append(append([]eventmodels.Event{}, life...), metrics)
	if err := bus.Publish(t.Context(), published...); err != nil {
		t.Fatal(err)
	}
	if got := pub.Count(); got != len(published) {
		t.Fatalf("Count = %d, want %d", got, len(published))
	}
	if got := pub.Events(); !reflect.DeepEqual(got, published) {
		t.Fatalf("Events differ from what was published:\n got %v\nwant %v", got, published)
	}
	if errs := pub.DecodeErrors(); errs != nil {
		t.Fatalf("DecodeErrors = %v", errs)
	}
	if got := pub.EventsOfType(eventmodels.TypeJobStatusChanged); len(got) != 3 {
		t.Fatalf("EventsOfType(status_changed) = %d events, want 3", len(got))
	}
	if got := testkit.EventsOf[*eventmodels.JobCompleted](pub); len(got) != 1 || got[0].JobID != "job-1" {
		t.Fatalf("EventsOf[*JobCompleted] = %v", got)
	}
	if got := pub.Topics(); !reflect.DeepEqual(got, []string{eventmodels.TopicJobLifecycle, eventmodels.TopicJobMetrics}) {
		t.Fatalf("Topics = %v", got)
	}
	if got := pub.ByKey("job-1"); len(got) != len(published) {
		t.Fatalf("ByKey = %d messages", len(got))
	}
	if got := pub.ByTopic(eventmodels.TopicJobMetrics); len(got) != 1 || got[0].Header(broker.HeaderType) != eventmodels.TypeJobMetrics {
		t.Fatalf("ByTopic(job-metrics) = %v", got)
	}
	for i, m := range pub.Messages() {
		if m.Delivery.Offset != int64(i) || m.Delivery.Partition != -1 {
			t.Fatalf("message %d: delivery %+v", i, m.Delivery)
		}
	}
}

func TestMockPublisherCapturesCopies(t *testing.T) {
	pub := testkit.NewMockPublisher()
	m := msg("t", "k", 1)
	if err := pub.Publish(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	m.SetHeader("seq", "changed")
	m.Body[0] = 'X'
	got := pub.Messages()[0]
	if got.Header("seq") != "1" || string(got.Body) != "body-1" {
		t.Fatalf("capture changed with the caller's message: %q %q", got.Header("seq"), got.Body)
	}
	got.SetHeader("seq", "mine")
	if pub.Messages()[0].Header("seq") != "1" {
		t.Fatal("Messages returned the captured message itself")
	}
}

func TestMockPublisherKeepsUndecodableMessages(t *testing.T) {
	pub := testkit.NewMockPublisher()
	bad := &broker.Message{Topic: "job-lifecycle", Key: "k", Headers: broker.Headers{
		{Key: broker.HeaderType, Value: eventmodels.TypeJobQueued},
		{Key: broker.HeaderContentType, Value: eventmodels.ContentTypeJSON},
		{Key: broker.HeaderID, Value: "id-1"},
	},
		Body: []byte("{not json")}
	good := testkit.NewEventBuilder(2).JobQueued().Build()
	bus, _ := events.NewBus(pub)
	if err := pub.Publish(t.Context(), bad); err != nil {
		t.Fatal(err)
	}
	if err := bus.Publish(t.Context(), good); err != nil {
		t.Fatal(err)
	}
	if pub.Count() != 2 {
		t.Fatalf("Count = %d, want 2", pub.Count())
	}
	if got := pub.Events(); len(got) != 1 || !reflect.DeepEqual(got[0], good) {
		t.Fatalf("Events = %v, want only the good one", got)
	}
	errs := pub.DecodeErrors()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "job-lifecycle/k/job.queued/id-1") || !broker.IsPermanent(errs[0]) {
		t.Fatalf("DecodeErrors = %v", errs)
	}
	c := pub.Captured()
	if c[0].Err == nil || c[0].Event != nil || c[1].Err != nil || c[1].Event == nil {
		t.Fatalf("Captured = %+v", c)
	}
}

// TestMockPublisherWithRegistry: events of a type of your own decode once
// the mock has the registry the Bus has; without it they are decode
// errors naming the unknown type, and built-in events still decode.
func TestMockPublisherWithRegistry(t *testing.T) {
	reg := eventmodels.NewRegistry()
	require.NoError(t, eventmodels.Register[*siteCalibrated](reg, "site.calibrated", "site-events"))
	b := testkit.NewEventBuilder(3)
	site := testkit.NewDraft(b, &siteCalibrated{Base: eventmodels.Base{EventType: "site.calibrated", SchemaVersion: 1}, Site: "VLA"}).MustBuild(t)
	audit := b.Audit().Build()

	plain := testkit.NewMockPublisher()
	withReg := testkit.NewMockPublisher(testkit.WithRegistry(reg))
	for _, pub := range []*testkit.MockPublisher{plain, withReg} {
		bus, err := events.NewBus(pub, events.WithRegistry(reg))
		require.NoError(t, err)
		require.NoError(t, bus.Publish(t.Context(), site, audit))
	}
	errs := plain.DecodeErrors()
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], eventmodels.ErrUnknownEventType)
	require.Equal(t, []eventmodels.Event{audit}, plain.Events())

	require.Empty(t, withReg.DecodeErrors())
	require.Equal(t, []*siteCalibrated{site}, testkit.EventsOf[*siteCalibrated](withReg))
}

func TestMockPublisherFailures(t *testing.T) {
	pub := testkit.NewMockPublisher()
	boom := errors.New("boom")
	pub.FailNext(2, boom)
	for i := range 2 {
		if err := pub.Publish(t.Context(), msg("t", "k", i)); !errors.Is(err, boom) {
			t.Fatalf("call %d: err = %v, want boom", i, err)
		}
	}
	if err := pub.Publish(t.Context(), msg("t", "k", 3)); err != nil {
		t.Fatalf("third call: %v", err)
	}
	if pub.Count() != 1 {
		t.Fatalf("Count = %d, want 1: failed calls capture nothing", pub.Count())
	}
	pub.FailNext(1, nil)
	if err := pub.Publish(t.Context(), msg("t", "k", 4)); !errors.Is(err, testkit.ErrInjected) {
		t.Fatalf("FailNext(1, nil): err = %v", err)
	}
	pub.FailNext(5, boom)
	pub.FailNext(0, nil) // cancels
	if err := pub.Publish(t.Context(), msg("t", "k", 5)); err != nil {
		t.Fatalf("after FailNext(0): %v", err)
	}

	pub.FailMessages(func(m *broker.Message) bool { return m.Key == "bad" }, boom)
	err := pub.Publish(t.Context(), msg("t", "ok", 6), msg("t", "bad", 7), msg("t", "ok", 8))
	var perr *broker.PublishError
	if !errors.As(err, &perr) || len(perr.Failed) != 1 || perr.Failed[0].Index != 1 || !errors.Is(err, boom) {
		t.Fatalf("FailMessages: err = %v", err)
	}
	if got := len(pub.ByKey("ok")); got != 2 {
		t.Fatalf("FailMessages: %d good messages captured, want 2", got)
	}
	pub.FailMessages(nil, nil)
	if err := pub.Publish(t.Context(), msg("t", "bad", 9)); err != nil {
		t.Fatalf("after FailMessages(nil): %v", err)
	}

	for _, bad := range [][]*broker.Message{{nil}, {msg("", "k", 1)}, {msg("t", "k", 1), {Key: "no topic"}}} {
		before := pub.Count()
		if err := pub.Publish(t.Context(), bad...); !errors.Is(err, broker.ErrInvalidMessage) {
			t.Fatalf("invalid message: err = %v", err)
		}
		if pub.Count() != before {
			t.Fatal("an invalid call captured messages")
		}
	}
}

func TestMockPublisherHonoursContextAndLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := testkit.NewMockPublisher()
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		if err := pub.Publish(cancelled, msg("t", "k", 1)); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled ctx: err = %v", err)
		}

		pub.SetLatency(time.Hour)
		short, cancelShort := context.WithTimeout(context.Background(), time.Minute)
		defer cancelShort()
		if err := pub.Publish(short, msg("t", "k", 2)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("latency beyond the deadline: err = %v", err)
		}

		pub.FailNext(1, nil)
		start := time.Now()
		if err := pub.Publish(context.Background(), msg("t", "k", 3)); !errors.Is(err, testkit.ErrInjected) {
			t.Fatalf("failure after latency: err = %v", err)
		}
		if err := pub.Publish(context.Background(), msg("t", "k", 4)); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 2*time.Hour { // synctest's clock: exact
			t.Fatalf("two publishes took %v, want 2h of latency", took)
		}
		if pub.Count() != 1 {
			t.Fatalf("Count = %d, want 1", pub.Count())
		}
	})
}

func TestMockPublisherClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := testkit.NewMockPublisher()
		pub.SetLatency(time.Hour)
		errc := make(chan error, 1)
		go func() { errc <- pub.Publish(context.Background(), msg("t", "k", 1)) }()
		synctest.Wait() // the publish is in flight, waiting out its latency
		if err := pub.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, broker.ErrClosed) {
			t.Fatalf("in-flight publish: err = %v, want ErrClosed", err)
		}
		if err := pub.Publish(context.Background(), msg("t", "k", 2)); !errors.Is(err, broker.ErrClosed) {
			t.Fatalf("after Close: err = %v", err)
		}
		if err := pub.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if pub.Count() != 0 {
			t.Fatalf("Count = %d after closed publishes", pub.Count())
		}
	})
}

func TestMockPublisherConcurrentPublishAndWait(t *testing.T) {
	pub := testkit.NewMockPublisher()
	const writers, each = 8, 500
	waitErr := make(chan error, 1)
	go func() { waitErr <- pub.WaitFor(deadline(t, 10*time.Second), writers*each) }()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := pub.Publish(t.Context(), msg("t", fmt.Sprint("w", w), i)); err != nil {
					t.Error(err)
					return
				}
				_ = pub.Count() // readers run alongside writers
			}
		})
	}
	wg.Wait()
	if err := <-waitErr; err != nil {
		t.Fatal(err)
	}
	offsets := map[int64]bool{}
	for _, m := range pub.Messages() {
		offsets[m.Delivery.Offset] = true
	}
	if len(offsets) != writers*each {
		t.Fatalf("%d distinct offsets, want %d", len(offsets), writers*each)
	}
	for w := range writers {
		for i, m := range pub.ByKey(fmt.Sprint("w", w)) {
			if m.Header("seq") != fmt.Sprint(i) {
				t.Fatalf("writer %d: message %d has seq %s", w, i, m.Header("seq"))
			}
		}
	}
}

func TestMockPublisherWaitForExplainsTimeout(t *testing.T) {
	pub := testkit.NewMockPublisher()
	bus, _ := events.NewBus(pub)
	e := testkit.NewEventBuilder(4).JobQueued().With(func(e *eventmodels.JobQueued) { e.JobID = "job-7" }).Build()
	if err := bus.Publish(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	err := pub.WaitFor(deadline(t, 10*time.Millisecond), 3)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	want := "got 1 of 3 messages"
	detail := "job-lifecycle/job-7/job.queued/" + e.EventID.String()
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), detail) {
		t.Fatalf("err = %q, want it to contain %q and %q", err, want, detail)
	}
	if err := pub.WaitFor(deadline(t, time.Second), 1); err != nil {
		t.Fatalf("WaitFor(1) with one captured: %v", err)
	}
}

func TestMockPublisherSubscribeAndReset(t *testing.T) {
	pub := testkit.NewMockPublisher()
	all, lifecycle := testkit.NewMessageCapture(), testkit.NewMessageCapture()
	pub.Subscribe("", all.Handle)
	stop := pub.Subscribe(eventmodels.TopicJobLifecycle, lifecycle.Handle)
	pub.Subscribe("x", func(context.Context, *broker.Message) error { return errors.New("ignored") })
	bus, _ := events.NewBus(pub)
	b := testkit.NewEventBuilder(5)
	if err := bus.Publish(t.Context(), b.JobQueued().Build(), b.Audit().Build()); err != nil {
		t.Fatal(err)
	}
	if all.Count() != 2 || lifecycle.Count() != 1 {
		t.Fatalf("delivered %d to all and %d to lifecycle, want 2 and 1", all.Count(), lifecycle.Count())
	}
	if m := all.Messages()[1]; m.Delivery.Attempt != 1 || m.Delivery.Offset != 1 {
		t.Fatalf("delivery %+v", m.Delivery)
	}
	stop()
	if err := bus.Publish(t.Context(), b.JobQueued().Build()); err != nil {
		t.Fatal(err)
	}
	if lifecycle.Count() != 1 || all.Count() != 3 {
		t.Fatalf("after unsubscribe: %d and %d", lifecycle.Count(), all.Count())
	}

	pub.FailNext(3, nil)
	pub.SetLatency(time.Hour)
	pub.Reset()
	if pub.Count() != 0 || len(pub.Events()) != 0 || len(pub.Topics()) != 0 {
		t.Fatal("Reset kept messages")
	}
	if err := pub.Publish(t.Context(), msg("t", "k", 1)); err != nil {
		t.Fatalf("Reset kept failures or latency: %v", err)
	}
	if all.Count() != 4 {
		t.Fatal("Reset removed the subscription")
	}
}
