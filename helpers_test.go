package events_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
)

// errPublish is what a failing capturePublisher returns.
var errPublish = errors.New("publish refused")

// capturePublisher is a Publisher that records what it is given; it can be
// told to fail its next calls.
type capturePublisher struct {
	mu       sync.Mutex
	msgs     []*broker.Message
	calls    int
	failNext int
}

func (p *capturePublisher) Publish(_ context.Context, msgs ...*broker.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.failNext != 0 {
		if p.failNext > 0 {
			p.failNext--
		}
		return errPublish
	}
	for _, m := range msgs {
		p.msgs = append(p.msgs, m.Clone())
	}
	return nil
}

func (p *capturePublisher) Close() error { return nil }

func (p *capturePublisher) Messages() []*broker.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.msgs)
}

func (p *capturePublisher) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

func newBus(t *testing.T, opts ...events.Option) (*events.Bus, *capturePublisher) {
	t.Helper()
	pub := &capturePublisher{}
	bus, err := events.NewBus(pub, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return bus, pub
}
