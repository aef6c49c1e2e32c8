package broker_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// publishedOnly implements HookPublished and nothing else.
type publishedOnly struct{ calls *[]string }

func (p publishedOnly) OnPublished(_ context.Context, msgs []*broker.Message, took time.Duration, err error) {
	*p.calls = append(*p.calls, "publishedOnly")
}

func TestHooksPublishedCallsOnlyPublishHooks(t *testing.T) {
	var calls []string
	rec := &recorder{}
	hs := broker.Hooks{rec, publishedOnly{&calls}, "not a hook", nil}
	msgs := []*broker.Message{newMessage(), newMessage()}
	hs.Published(context.Background(), msgs, time.Millisecond, errPublish)
	if !reflect.DeepEqual(calls, []string{"publishedOnly"}) {
		t.Fatalf("calls = %v", calls)
	}
	if ev := rec.Events(); !reflect.DeepEqual(ev, []string{"published:2"}) || !errors.Is(rec.Errs()[0], errPublish) {
		t.Fatalf("recorder saw %v %v", ev, rec.Errs())
	}
}

// TestHooksAreFoundByTypeAssertion: a hook implementing only some
// interfaces is called for those, and the pipeline does not trip over it.
func TestHooksAreFoundByTypeAssertion(t *testing.T) {
	var calls []string
	p, pub, rec := pipeline(broker.Subscription{Retry: fast(2)})
	p.Hooks = append(p.Hooks, publishedOnly{&calls}, 42)
	if err := p.Wrap(failing(errBoom))(context.Background(), newMessage()); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 0 || len(pub.Messages()) != 1 {
		t.Fatalf("calls %v, dead letters %d", calls, len(pub.Messages()))
	}
	if got := rec.Events(); len(got) != 4 {
		t.Fatalf("recorder saw %v", got)
	}
}
