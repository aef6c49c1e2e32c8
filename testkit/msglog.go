package testkit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
)

// ErrInjected is the error an injected failure returns when the test gave
// none (MockPublisher.FailNext, MessageCapture.FailNext and FailWhen with a
// nil error).
var ErrInjected = errors.New("testkit: injected failure")

// Captured is one captured message and the result of decoding it.
type Captured struct {
	// Message is the captured copy.
	Message *broker.Message
	// Event is the decoded event; nil when decoding failed.
	Event eventmodels.Event
	// Err is the decoding error (from events.Bus.Decode), or nil.
	Err error
}

// EventSource is what EventsOf reads: MockPublisher and MessageCapture.
type EventSource interface {
	Events() []eventmodels.Event
}

// EventsOf returns the captured events of type T (a pointer type such as
// *eventmodels.JobCompleted) in capture order:
//
//	done := testkit.EventsOf[*eventmodels.JobCompleted](pub)
func EventsOf[T eventmodels.Event](src EventSource) []T {
	var out []T
	for _, e := range src.Events() {
		if t, ok := e.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// CaptureOption configures a MockPublisher or a MessageCapture.
type CaptureOption func(*captureConfig)

type captureConfig struct {
	registry *eventmodels.Registry
}

// WithRegistry sets the registry captured messages are decoded with, the
// one given to events.NewBus (events.WithRegistry) when the messages carry
// event types of your own; default eventmodels.NewRegistry(), the
// built-in types. Avro and JSON bodies are both read.
func WithRegistry(reg *eventmodels.Registry) CaptureOption {
	return func(c *captureConfig) { c.registry = reg }
}

// msgLog is the append-only store behind MockPublisher and MessageCapture:
// captured messages, their lazy decoding, distinct IDs, and a broadcast to
// waiters. Safe for concurrent use.
type msgLog struct {
	mu      sync.Mutex
	msgs    []*broker.Message // append-only until reset; elements never change
	decoded []decodeResult    // parallel to msgs; filled lazily
	ids     map[string]int    // deliveries per ce_id
	gen     uint64            // bumped by reset
	changed chan struct{}     // closed at the next change; nil when nobody waits

	registry *eventmodels.Registry
	decOnce  sync.Once
	dec      *events.Bus
	decErr   error
}

type decodeResult struct {
	done  bool
	event eventmodels.Event
	err   error
}

func newMsgLog(opts []CaptureOption) *msgLog {
	var cfg captureConfig
	for _, o := range opts {
		o(&cfg)
	}
	return &msgLog{ids: map[string]int{}, registry: cfg.registry}
}

// add appends msgs (already copied by the caller) and wakes waiters. stamp,
// if not nil, is called with each message and its position in the log
// before anyone else can see the message.
func (l *msgLog) add(msgs []*broker.Message, stamp func(pos int, m *broker.Message)) {
	l.mu.Lock()
	for _, m := range msgs {
		if stamp != nil {
			stamp(len(l.msgs), m)
		}
		l.msgs = append(l.msgs, m)
		l.decoded = append(l.decoded, decodeResult{})
		if id := broker.CanonicalID(m.Header(broker.HeaderID)); id != "" {
			l.ids[id]++
		}
	}
	l.wakeLocked()
	l.mu.Unlock()
}

func (l *msgLog) wakeLocked() {
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

func (l *msgLog) reset() {
	l.mu.Lock()
	l.msgs, l.decoded, l.ids = nil, nil, map[string]int{}
	l.gen++
	l.wakeLocked()
	l.mu.Unlock()
}

// view returns the messages so far without copying: the slice is capped, so
// later appends never show through it, and its elements are never modified.
func (l *msgLog) view() []*broker.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msgs[:len(l.msgs):len(l.msgs)]
}

func (l *msgLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.msgs)
}

func (l *msgLog) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ids)
}

// messages returns clones of the messages, so callers may modify them.
func (l *msgLog) messages(keep func(*broker.Message) bool) []*broker.Message {
	var out []*broker.Message
	for _, m := range l.view() {
		if keep == nil || keep(m) {
			out = append(out, cloneMessage(m))
		}
	}
	return out
}

func (l *msgLog) topics() []string {
	seen := map[string]bool{}
	for _, m := range l.view() {
		seen[m.Topic] = true
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// decoder returns a Bus that only decodes, built on first use.
func (l *msgLog) decoder() (*events.Bus, error) {
	l.decOnce.Do(func() {
		var opts []events.Option
		if l.registry != nil {
			opts = append(opts, events.WithRegistry(l.registry))
		}
		l.dec, l.decErr = events.NewBus(nil, opts...)
		if l.decErr != nil {
			l.decErr = fmt.Errorf("testkit: decoder: %w", l.decErr)
		}
	})
	return l.dec, l.decErr
}

// captured decodes what has not been decoded yet (outside the lock, so
// handlers and publishers are not held up) and returns every entry.
func (l *msgLog) captured() []Captured {
	l.mu.Lock()
	gen, msgs := l.gen, l.msgs[:len(l.msgs):len(l.msgs)]
	results := slices.Clone(l.decoded)
	l.mu.Unlock()

	dec, decErr := l.decoder()
	fresh := false
	for i, r := range results {
		if r.done {
			continue
		}
		fresh = true
		results[i].done = true
		if decErr != nil {
			results[i].err = decErr
			continue
		}
		results[i].event, results[i].err = dec.Decode(msgs[i])
	}
	if fresh {
		l.mu.Lock()
		if l.gen == gen { // not reset meanwhile: keep the work
			copy(l.decoded, results)
		}
		l.mu.Unlock()
	}
	out := make([]Captured, len(msgs))
	for i, m := range msgs {
		out[i] = Captured{Message: cloneMessage(m), Event: results[i].event, Err: results[i].err}
	}
	return out
}

func (l *msgLog) events(keep func(eventmodels.Event) bool) []eventmodels.Event {
	var out []eventmodels.Event
	for _, c := range l.captured() {
		if c.Err == nil && c.Event != nil && (keep == nil || keep(c.Event)) {
			out = append(out, c.Event)
		}
	}
	return out
}

func (l *msgLog) decodeErrors() []error {
	var out []error
	for i, c := range l.captured() {
		if c.Err != nil {
			out = append(out, fmt.Errorf("message %d (%s): %w", i, describeMessage(c.Message), c.Err))
		}
	}
	return out
}

// waitUntil blocks until cond holds over the messages so far, or ctx ends.
// cond runs without the lock on a view (see view). On ctx's end it returns
// an error wrapping ctx.Err() that starts with missing(msgs) and lists the
// last messages seen.
func (l *msgLog) waitUntil(ctx context.Context, cond func([]*broker.Message) bool, missing func([]*broker.Message) string) error {
	for {
		l.mu.Lock()
		msgs := l.msgs[:len(l.msgs):len(l.msgs)]
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		changed := l.changed
		l.mu.Unlock()
		if cond(msgs) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			msgs = l.view()
			if cond(msgs) { // it may have come in with the deadline
				return nil
			}
			return fmt.Errorf("testkit: %s: %w%s", missing(msgs), context.Cause(ctx), describeTail(msgs, 5))
		}
	}
}

// cloneMessage copies m, its headers and its body.
func cloneMessage(m *broker.Message) *broker.Message {
	c := m.Clone()
	c.Body = slices.Clone(m.Body)
	return c
}

// describeMessage renders m as topic/key/ce_type/ce_id.
func describeMessage(m *broker.Message) string {
	orDash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	return orDash(m.Topic) + "/" + orDash(m.Key) + "/" + orDash(m.Header(broker.HeaderType)) + "/" + orDash(m.Header(broker.HeaderID))
}

// describeTail lists the last n of msgs for an error message.
func describeTail(msgs []*broker.Message, n int) string {
	if len(msgs) == 0 {
		return "; nothing captured"
	}
	tail := msgs[max(0, len(msgs)-n):]
	parts := make([]string, len(tail))
	for i, m := range tail {
		parts[i] = describeMessage(m)
	}
	return fmt.Sprintf("; last %d (topic/key/ce_type/ce_id): %s", len(tail), strings.Join(parts, ", "))
}
