package broker_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// fakeConsumer records Close.
type fakeConsumer struct {
	topic  string
	closed int
	err    error
}

func (c *fakeConsumer) Close() error          { c.closed++; return c.err }
func (c *fakeConsumer) Done() <-chan struct{} { return nil }
func (c *fakeConsumer) Err() error            { return nil }

// fakeSubscriber fails the subscription of topic failOn. With barrier
// set, each Subscribe waits until barrier subscriptions are in progress at
// once (or ctx ends).
type fakeSubscriber struct {
	failOn  string
	barrier int

	mu      sync.Mutex
	subs    []broker.Subscription
	made    []*fakeConsumer
	arrived int
	all     chan struct{}
}

func (s *fakeSubscriber) Subscribe(ctx context.Context, sub broker.Subscription, _ broker.Handler) (broker.Consumer, error) {
	if s.barrier > 0 {
		s.mu.Lock()
		if s.all == nil {
			s.all = make(chan struct{})
		}
		if s.arrived++; s.arrived == s.barrier {
			close(s.all)
		}
		all := s.all
		s.mu.Unlock()
		select {
		case <-all:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if sub.Topic == s.failOn {
		return nil, errors.New("no such exchange")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = append(s.subs, sub)
	c := &fakeConsumer{topic: sub.Topic}
	s.made = append(s.made, c)
	return c, nil
}

func (s *fakeSubscriber) Close() error { return nil }

func TestSubscribeTopics(t *testing.T) {
	s := &fakeSubscriber{}
	h := func(context.Context, *broker.Message) error { return nil }
	cs, err := broker.SubscribeTopics(context.Background(), s, []string{"a", "b"}, broker.Subscription{Group: "g", Concurrency: 4}, h)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].(*fakeConsumer).topic != "a" || cs[1].(*fakeConsumer).topic != "b" {
		t.Fatalf("consumers %+v, want those of a and b in order", cs)
	}
	for _, sub := range s.subs {
		if sub.Group != "g" || sub.Concurrency != 4 {
			t.Fatalf("subscription %+v does not follow the template", sub)
		}
	}

	s = &fakeSubscriber{failOn: "c"}
	if _, err := broker.SubscribeTopics(context.Background(), s, []string{"a", "b", "c"}, broker.Subscription{Group: "g"}, h); err == nil || !strings.Contains(err.Error(), "subscribe c") {
		t.Fatalf("error %v, want one naming topic c", err)
	}
	if len(s.made) != 2 {
		t.Fatalf("%d consumers started, want a and b", len(s.made))
	}
	for _, c := range s.made {
		if c.closed != 1 {
			t.Errorf("consumer of %s closed %d times after the failure, want 1", c.topic, c.closed)
		}
	}

	// All at once: each Subscribe waits for the others to be in progress,
	// which one-after-the-other subscriptions never are.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s = &fakeSubscriber{barrier: 4}
	if cs, err := broker.SubscribeTopics(ctx, s, []string{"a", "b", "c", "d"}, broker.Subscription{Group: "g"}, h); err != nil || len(cs) != 4 {
		t.Fatalf("concurrent subscriptions: %d consumers, %v", len(cs), err)
	}
}

func TestCloseAll(t *testing.T) {
	boom := errors.New("commit failed")
	cs := []*fakeConsumer{{err: nil}, {err: boom}, {err: broker.ErrClosed}}
	err := broker.CloseAll(cs[0], cs[1], cs[2])
	if !errors.Is(err, boom) || errors.Is(err, broker.ErrClosed) {
		t.Fatalf("CloseAll = %v, want the commit error only", err)
	}
	if !slices.EqualFunc(cs, cs, func(a, _ *fakeConsumer) bool { return a.closed == 1 }) {
		t.Fatalf("not every consumer closed once: %+v", cs)
	}
	if err := broker.CloseAll(); err != nil {
		t.Fatalf("CloseAll() = %v", err)
	}
}
