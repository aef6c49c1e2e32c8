package events_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
)

// laterPublisher is an AsyncPublisher that holds each call until release,
// so a test sees what happens between hand-off and completion.
type laterPublisher struct {
	capturePublisher
	mu      sync.Mutex
	pending []func()
}

func (p *laterPublisher) PublishAsync(ctx context.Context, done func(error), msgs ...*broker.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = append(p.pending, func() { done(p.Publish(ctx, msgs...)) })
	return nil
}

func (p *laterPublisher) release() {
	p.mu.Lock()
	pending := p.pending
	p.pending = nil
	p.mu.Unlock()
	for _, f := range pending {
		f()
	}
}

// recordHook is a PublishHook and a broker.HookPublished observer that
// records the outcomes it is told.
type recordHook struct {
	mu       sync.Mutex
	ended    []error
	observed []error
}

func (h *recordHook) BeforePublish(ctx context.Context, _ []*broker.Message) (context.Context, func(error)) {
	return ctx, func(err error) { h.mu.Lock(); h.ended = append(h.ended, err); h.mu.Unlock() }
}

func (h *recordHook) OnPublished(_ context.Context, _ []*broker.Message, _ time.Duration, err error) {
	h.mu.Lock()
	h.observed = append(h.observed, err)
	h.mu.Unlock()
}

func (h *recordHook) counts() (int, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ended), len(h.observed)
}

// TestBusPublishAsyncCompletesLater: PublishAsync returns after the
// hand-off; done, the hook's end and the observers run once, at completion,
// with the backend's outcome.
func TestBusPublishAsyncCompletesLater(t *testing.T) {
	pub := &laterPublisher{}
	hook := &recordHook{}
	bus, err := events.NewBus(pub, events.WithHooks(hook))
	if err != nil {
		t.Fatal(err)
	}
	evs := samples.All()
	var mu sync.Mutex
	var results []error
	for _, e := range evs {
		if err := bus.PublishAsync(context.Background(), func(err error) { mu.Lock(); results = append(results, err); mu.Unlock() }, e); err != nil {
			t.Fatalf("PublishAsync: %v", err)
		}
	}
	if n := len(pub.Messages()); n != 0 {
		t.Fatalf("%d messages published before the backend completed", n)
	}
	if e, o := hook.counts(); e != 0 || o != 0 {
		t.Fatalf("hooks told of %d/%d outcomes before completion", e, o)
	}
	pub.release()
	mu.Lock()
	defer mu.Unlock()
	if len(results) != len(evs) {
		t.Fatalf("done ran %d times for %d calls", len(results), len(evs))
	}
	for i, err := range results {
		if err != nil {
			t.Errorf("done #%d = %v", i, err)
		}
	}
	if got := len(pub.Messages()); got != len(evs) {
		t.Fatalf("%d messages published, want %d", got, len(evs))
	}
	if e, o := hook.counts(); e != len(evs) || o != len(evs) {
		t.Fatalf("hooks told of %d/%d outcomes, want %d", e, o, len(evs))
	}
}

// TestBusPublishAsyncRefusals: an invalid event is returned (matching
// broker.ErrInvalidMessage), nothing is sent and done never runs; a nil
// done is refused the same way.
func TestBusPublishAsyncRefusals(t *testing.T) {
	pub := &laterPublisher{}
	bus, err := events.NewBus(pub)
	if err != nil {
		t.Fatal(err)
	}
	called := 0
	bad := eventmodels.NewJobQueued("u", "", "q", -1)
	if err := bus.PublishAsync(context.Background(), func(error) { called++ }, samples.All()[0], bad); !errors.Is(err, broker.ErrInvalidMessage) {
		t.Fatalf("PublishAsync with an invalid event = %v, want ErrInvalidMessage", err)
	}
	if err := bus.PublishAsync(context.Background(), nil, samples.All()[0]); !errors.Is(err, broker.ErrInvalidMessage) {
		t.Fatalf("PublishAsync with a nil done = %v, want ErrInvalidMessage", err)
	}
	pub.release()
	if called != 0 || pub.Calls() != 0 {
		t.Fatalf("done ran %d times, %d publish calls; want none", called, pub.Calls())
	}
}

// TestBusPublishAsyncOnSyncBackend: a backend that is not an
// AsyncPublisher is published to synchronously; done runs before
// PublishAsync returns, and a failure that is not a *PublishError is
// returned instead.
func TestBusPublishAsyncOnSyncBackend(t *testing.T) {
	bus, pub := newBus(t)
	var got []error
	if err := bus.PublishAsync(context.Background(), func(err error) { got = append(got, err) }, samples.All()[0]); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != nil || len(pub.Messages()) != 1 {
		t.Fatalf("done results %v, %d messages; want one nil, one message", got, len(pub.Messages()))
	}
	pub.failNext = 1
	if err := bus.PublishAsync(context.Background(), func(err error) { got = append(got, err) }, samples.All()[0]); !errors.Is(err, errPublish) {
		t.Fatalf("PublishAsync on a failing backend = %v, want its error", err)
	}
	if len(got) != 1 {
		t.Fatalf("done ran for a call that returned an error: %v", got)
	}
}
