package testkit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
)

// MockPublisher is an in-memory broker.Publisher for tests of code that
// publishes: it captures a copy of every message it confirms, decodes them
// into events on demand, and can be told to fail or to be slow.
//
// Give it to events.NewBus (or to the code under test) in place of a real
// backend, then query what was published:
//
//	pub := testkit.NewMockPublisher()
//	bus, _ := events.NewBus(pub)
//	_ = bus.Publish(ctx, event)
//	completed := testkit.EventsOf[*eventmodels.JobCompleted](pub)
//
// Publish follows the broker.Publisher contract: it honours ctx, returns
// broker.ErrClosed after Close, rejects a nil message or one without a topic
// with broker.ErrInvalidMessage (capturing nothing of that call), and
// captures the messages of one call together and in order. A captured
// message is a deep copy (headers and body), with Delivery.Partition -1 and
// Delivery.Offset its position in the capture log.
//
// Every method is safe for concurrent use.
type MockPublisher struct {
	log *msgLog

	mu       sync.Mutex
	failN    int
	failErr  error
	failMsg  func(*broker.Message) bool
	failMErr error
	latency  time.Duration
	subs     map[int]mockSub
	nextSub  int
	closed   bool
	done     chan struct{} // closed by Close
	inflight sync.WaitGroup
}

type mockSub struct {
	topic string
	h     broker.Handler
}

var _ broker.Publisher = (*MockPublisher)(nil)

// NewMockPublisher returns an open MockPublisher that confirms everything.
func NewMockPublisher(opts ...CaptureOption) *MockPublisher {
	return &MockPublisher{log: newMsgLog(opts), subs: map[int]mockSub{}, done: make(chan struct{})}
}

// Publish captures msgs, after the latency set by SetLatency, unless a
// failure is due. In order, it returns:
//   - broker.ErrClosed after Close (also when Close happens during the
//     latency wait);
//   - ctx's error if ctx has ended, or ends during the latency wait;
//   - an error matching broker.ErrInvalidMessage for a nil message or one
//     without a topic;
//   - the error given to FailNext, as is, while failures remain (one is
//     used per call);
//   - a *broker.PublishError naming the messages matched by FailMessages
//     (the others of the call are captured, as a backend confirms them).
//
// Nothing is captured when an error other than *broker.PublishError is
// returned. After capturing, Publish calls the handlers added with
// Subscribe.
func (p *MockPublisher) Publish(ctx context.Context, msgs ...*broker.Message) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return broker.ErrClosed
	}
	latency := p.latency
	p.inflight.Add(1)
	p.mu.Unlock()
	defer p.inflight.Done()

	if err := ctx.Err(); err != nil {
		return err
	}
	for i, m := range msgs {
		if m == nil {
			return fmt.Errorf("%w: message %d is nil", broker.ErrInvalidMessage, i)
		}
		if m.Topic == "" {
			return fmt.Errorf("%w: message %d has no topic", broker.ErrInvalidMessage, i)
		}
	}
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-p.done:
			t.Stop()
			return broker.ErrClosed
		}
	}

	p.mu.Lock()
	if p.failN > 0 {
		p.failN--
		err := p.failErr
		p.mu.Unlock()
		return err
	}
	failMsg, failMErr := p.failMsg, p.failMErr
	subs := make([]mockSub, 0, len(p.subs))
	for id := 0; id < p.nextSub; id++ {
		if s, ok := p.subs[id]; ok {
			subs = append(subs, s)
		}
	}
	p.mu.Unlock()

	var perr broker.PublishError
	keep := make([]*broker.Message, 0, len(msgs))
	for i, m := range msgs {
		if failMsg != nil && failMsg(m) {
			perr.Failed = append(perr.Failed, broker.FailedMessage{Index: i, Message: m, Err: failMErr})
			continue
		}
		c := cloneMessage(m)
		c.Delivery = broker.Delivery{Partition: -1}
		keep = append(keep, c)
	}
	if len(keep) > 0 {
		p.log.add(keep, func(pos int, m *broker.Message) { m.Delivery.Offset = int64(pos) })
		p.deliver(ctx, subs, keep)
	}
	if len(perr.Failed) > 0 {
		return &perr
	}
	return nil
}

// deliver hands each captured message to the matching subscribers.
func (p *MockPublisher) deliver(ctx context.Context, subs []mockSub, msgs []*broker.Message) {
	for _, s := range subs {
		for _, m := range msgs {
			if s.topic != "" && s.topic != m.Topic {
				continue
			}
			d := cloneMessage(m)
			d.Delivery.Attempt = 1
			d.Delivery.ReceivedAt = time.Now()
			_ = s.h(ctx, d) // a publisher does not see consumer errors
		}
	}
}

// Close makes later Publish calls return broker.ErrClosed, ends the latency
// wait of publishes in flight (they return broker.ErrClosed), and waits for
// them to return. Captured messages stay readable. Close is idempotent and
// returns nil.
func (p *MockPublisher) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.done)
	}
	p.mu.Unlock()
	p.inflight.Wait()
	return nil
}

// FailNext makes the next n Publish calls return err (ErrInjected if nil)
// and capture nothing. It replaces any failures still pending; n ≤ 0
// cancels them.
func (p *MockPublisher) FailNext(n int, err error) {
	if err == nil {
		err = ErrInjected
	}
	p.mu.Lock()
	p.failN, p.failErr = max(n, 0), err
	p.mu.Unlock()
}

// FailMessages makes every later message for which match returns true fail
// with err (ErrInjected if nil) inside a *broker.PublishError, as a backend
// reports messages it could not confirm; the other messages of the call are
// captured. A nil match stops it. match may be called concurrently.
func (p *MockPublisher) FailMessages(match func(*broker.Message) bool, err error) {
	if err == nil {
		err = ErrInjected
	}
	p.mu.Lock()
	p.failMsg, p.failMErr = match, err
	p.mu.Unlock()
}

// SetLatency makes each later Publish wait d (or until its ctx ends, or
// Close) before it captures or fails; 0 turns it off.
func (p *MockPublisher) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = max(d, 0)
	p.mu.Unlock()
}

// Subscribe calls h with a copy of every message captured from now on whose
// topic is topic ("" for every topic), synchronously from the publishing
// goroutine after the message is captured, in capture order within one
// Publish call. h's error is ignored (a publisher never sees consumer
// errors) and nothing is retried: use a real backend such as broker/memory
// to test retries and dead letters. The returned function removes the
// subscription. Typical use: route published messages to a MessageCapture
// or to the handler under test. A nil h subscribes nothing.
func (p *MockPublisher) Subscribe(topic string, h broker.Handler) (unsubscribe func()) {
	if h == nil {
		return func() {}
	}
	p.mu.Lock()
	id := p.nextSub
	p.nextSub++
	p.subs[id] = mockSub{topic: topic, h: h}
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		delete(p.subs, id)
		p.mu.Unlock()
	}
}

// Reset forgets every captured message and cancels injected failures and
// latency. Subscriptions and the closed state stay.
func (p *MockPublisher) Reset() {
	p.mu.Lock()
	p.failN, p.failErr, p.failMsg, p.failMErr, p.latency = 0, nil, nil, nil, 0
	p.mu.Unlock()
	p.log.reset()
}

// Count returns the number of captured messages.
func (p *MockPublisher) Count() int { return p.log.count() }

// Messages returns copies of the captured messages in capture order.
func (p *MockPublisher) Messages() []*broker.Message { return p.log.messages(nil) }

// ByKey returns copies of the captured messages with key, in capture order.
func (p *MockPublisher) ByKey(key string) []*broker.Message {
	return p.log.messages(func(m *broker.Message) bool { return m.Key == key })
}

// ByTopic returns copies of the captured messages of topic, in capture
// order.
func (p *MockPublisher) ByTopic(topic string) []*broker.Message {
	return p.log.messages(func(m *broker.Message) bool { return m.Topic == topic })
}

// Topics returns the distinct topics of the captured messages, sorted.
func (p *MockPublisher) Topics() []string { return p.log.topics() }

// Captured returns every captured message with its decoded event or
// decoding error, in capture order. Each message is decoded once, on the
// first call that needs it; the events are shared between calls, so treat
// them as read-only.
func (p *MockPublisher) Captured() []Captured { return p.log.captured() }

// Events returns the events of the captured messages that decoded, in
// capture order (see Captured). Messages that did not decode are left out:
// check DecodeErrors.
func (p *MockPublisher) Events() []eventmodels.Event { return p.log.events(nil) }

// EventsOfType returns the decoded events whose event_type is eventType.
func (p *MockPublisher) EventsOfType(eventType string) []eventmodels.Event {
	return p.log.events(func(e eventmodels.Event) bool { return e.Envelope().EventType == eventType })
}

// DecodeErrors returns one error per captured message that did not decode,
// naming the message; nil when every message decoded.
func (p *MockPublisher) DecodeErrors() []error { return p.log.decodeErrors() }

// WaitFor blocks until at least n messages have been captured (nil) or ctx
// ends: then the error wraps ctx's error (errors.Is(err,
// context.DeadlineExceeded)) and says how many of n arrived and which were
// the last. Use a ctx with a deadline.
func (p *MockPublisher) WaitFor(ctx context.Context, n int) error {
	return p.log.waitUntil(ctx,
		func(ms []*broker.Message) bool { return len(ms) >= n },
		func(ms []*broker.Message) string {
			return fmt.Sprintf("MockPublisher: got %d of %d messages", len(ms), n)
		})
}
