package broker_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

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

// fakeSubscriber fails the subscription of topic failOn.
type fakeSubscriber struct {
	failOn string
	subs   []broker.Subscription
	made   []*fakeConsumer
}

func (s *fakeSubscriber) Subscribe(_ context.Context, sub broker.Subscription, _ broker.Handler) (broker.Consumer, error) {
	if sub.Topic == s.failOn {
		return nil, errors.New("no such exchange")
	}
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
	if len(cs) != 2 || len(s.subs) != 2 || s.subs[0].Topic != "a" || s.subs[1].Topic != "b" || s.subs[1].Group != "g" || s.subs[1].Concurrency != 4 {
		t.Fatalf("subscriptions %+v", s.subs)
	}

	s = &fakeSubscriber{failOn: "c"}
	if _, err := broker.SubscribeTopics(context.Background(), s, []string{"a", "b", "c"}, broker.Subscription{Group: "g"}, h); err == nil || !strings.Contains(err.Error(), "subscribe c") {
		t.Fatalf("error %v, want one naming topic c", err)
	}
	for _, c := range s.made {
		if c.closed != 1 {
			t.Errorf("consumer of %s closed %d times after the failure, want 1", c.topic, c.closed)
		}
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
