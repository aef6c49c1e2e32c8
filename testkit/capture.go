package testkit

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
)

// MessageCapture is a broker.Handler for tests of what a subscription
// delivers: it keeps a copy of every message it acknowledges, lets the test
// wait for them with a deadline, checks per-key order and counts
// duplicates, and can be told to fail so that retries and dead letters can
// be driven.
//
//	capture := testkit.NewMessageCapture()
//	_, err := sub.Subscribe(ctx, broker.Subscription{Topic: "job-lifecycle", Group: "g"}, capture.Handle)
//	…
//	if err := capture.WaitFor(ctx, 10); err != nil { t.Fatal(err) } // ctx with a deadline
//	capture.AssertOrderedByKey(t, testkit.EventTimeSeq)
//
// Handle may be called from many goroutines at once; every method is safe
// for concurrent use. Waits wake on each captured message (no polling) and
// end when their ctx ends.
type MessageCapture struct {
	log *msgLog

	mu      sync.Mutex
	failN   int
	failErr error
	rules   []failRule
	delay   time.Duration
	failed  []*broker.Message
	calls   int
}

type failRule struct {
	match func(*broker.Message) bool
	err   error
}

// NewMessageCapture returns an empty capture that acknowledges everything.
func NewMessageCapture(opts ...CaptureOption) *MessageCapture {
	return &MessageCapture{log: newMsgLog(opts)}
}

// Handle is the handler: pass capture.Handle (or Handler()) to Subscribe.
// It waits the delay set by SetDelay (returning ctx's error, capturing
// nothing, if ctx ends first); then, if a failure injected by FailNext or
// FailWhen applies, it records the message in Failed and returns that
// error; otherwise it captures a copy of m and returns nil.
func (c *MessageCapture) Handle(ctx context.Context, m *broker.Message) error {
	c.mu.Lock()
	c.calls++
	delay := c.delay
	c.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if err := c.injected(m); err != nil {
		c.mu.Lock()
		c.failed = append(c.failed, cloneMessage(m))
		c.mu.Unlock()
		return err
	}
	c.log.add([]*broker.Message{cloneMessage(m)}, nil)
	return nil
}

// injected returns the failure due for m, if any. Rules run without the
// lock, so a match function may call the capture's methods.
func (c *MessageCapture) injected(m *broker.Message) error {
	c.mu.Lock()
	if c.failN > 0 {
		c.failN--
		err := c.failErr
		c.mu.Unlock()
		return err
	}
	rules := c.rules
	c.mu.Unlock()
	for _, r := range rules {
		if r.match(m) {
			return r.err
		}
	}
	return nil
}

// Handler returns Handle as a broker.Handler.
func (c *MessageCapture) Handler() broker.Handler { return c.Handle }

// FailNext makes the next n handler calls return err (ErrInjected if nil)
// without capturing. It replaces any pending count; n ≤ 0 cancels it.
func (c *MessageCapture) FailNext(n int, err error) {
	if err == nil {
		err = ErrInjected
	}
	c.mu.Lock()
	c.failN, c.failErr = max(n, 0), err
	c.mu.Unlock()
}

// FailWhen makes every later handler call whose message matches return err
// (ErrInjected if nil) without capturing. Rules add up; the first that
// matches wins. match may be called concurrently; it can look at
// m.Delivery.Attempt to fail only the first attempts:
//
//	capture.FailWhen(func(m *broker.Message) bool { return m.Delivery.Attempt < 3 }, errFlaky)
//
// Wrap err with broker.Permanent to send the message straight to the dead
// letter.
func (c *MessageCapture) FailWhen(match func(*broker.Message) bool, err error) {
	if match == nil {
		return
	}
	if err == nil {
		err = ErrInjected
	}
	c.mu.Lock()
	c.rules = append(c.rules[:len(c.rules):len(c.rules)], failRule{match, err})
	c.mu.Unlock()
}

// ClearFailures cancels FailNext and every FailWhen rule.
func (c *MessageCapture) ClearFailures() {
	c.mu.Lock()
	c.failN, c.failErr, c.rules = 0, nil, nil
	c.mu.Unlock()
}

// SetDelay makes each later handler call wait d (or until its ctx ends)
// before anything else, to simulate a slow consumer; 0 turns it off.
func (c *MessageCapture) SetDelay(d time.Duration) {
	c.mu.Lock()
	c.delay = max(d, 0)
	c.mu.Unlock()
}

// Reset forgets captured and failed messages and the call count, and
// cancels injected failures and the delay.
func (c *MessageCapture) Reset() {
	c.mu.Lock()
	c.failN, c.failErr, c.rules, c.delay, c.failed, c.calls = 0, nil, nil, 0, nil, 0
	c.mu.Unlock()
	c.log.reset()
}

// Calls returns how many times Handle was called, failures included.
func (c *MessageCapture) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// Failed returns copies of the messages whose handling the capture failed
// on purpose (FailNext, FailWhen), in call order.
func (c *MessageCapture) Failed() []*broker.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*broker.Message, len(c.failed))
	for i, m := range c.failed {
		out[i] = cloneMessage(m)
	}
	return out
}

// Count returns the number of captured (acknowledged) messages, duplicates
// included.
func (c *MessageCapture) Count() int { return c.log.count() }

// Distinct returns the number of distinct ce_id headers among the captured
// messages, compared as broker.CanonicalID (messages without one are not
// counted).
func (c *MessageCapture) Distinct() int { return c.log.distinct() }

// Messages returns copies of the captured messages in capture order.
func (c *MessageCapture) Messages() []*broker.Message { return c.log.messages(nil) }

// ByKey returns copies of the captured messages with key, in capture order.
func (c *MessageCapture) ByKey(key string) []*broker.Message {
	return c.log.messages(func(m *broker.Message) bool { return m.Key == key })
}

// Keys returns the distinct keys of the captured messages, sorted.
func (c *MessageCapture) Keys() []string {
	seen := map[string]bool{}
	for _, m := range c.log.view() {
		seen[m.Key] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Captured returns every captured message with its decoded event or
// decoding error (see MockPublisher.Captured).
func (c *MessageCapture) Captured() []Captured { return c.log.captured() }

// Events returns the events of the captured messages that decoded, in
// capture order; check DecodeErrors for the others.
func (c *MessageCapture) Events() []eventmodels.Event { return c.log.events(nil) }

// DecodeErrors returns one error per captured message that did not decode.
func (c *MessageCapture) DecodeErrors() []error { return c.log.decodeErrors() }

// Duplicates returns, for every ID seen on more than one captured message,
// how many times it was seen. id extracts the ID; nil means the ce_id
// header, compared as broker.CanonicalID (a UUID in either case). Messages with an empty ID are ignored. An empty map means no
// duplicates.
func (c *MessageCapture) Duplicates(id func(*broker.Message) string) map[string]int {
	if id == nil {
		id = func(m *broker.Message) string { return broker.CanonicalID(m.Header(broker.HeaderID)) }
	}
	seen := map[string]int{}
	for _, m := range c.log.view() {
		if s := id(m); s != "" {
			seen[s]++
		}
	}
	for k, n := range seen {
		if n < 2 {
			delete(seen, k)
		}
	}
	return seen
}

// WaitFor blocks until at least n messages have been captured (nil) or ctx
// ends: the error then wraps ctx's error and says how many of n arrived
// and which were the last, e.g. "testkit: got 7 of 10 messages: context
// deadline exceeded; last 5 (topic/key/ce_type/ce_id): …". Use a ctx with
// a deadline.
func (c *MessageCapture) WaitFor(ctx context.Context, n int) error {
	return c.log.waitUntil(ctx,
		func(ms []*broker.Message) bool { return len(ms) >= n },
		func(ms []*broker.Message) string { return fmt.Sprintf("got %d of %d messages", len(ms), n) })
}

// WaitForDistinct is WaitFor counting distinct ce_id headers, so that
// redeliveries do not count twice.
func (c *MessageCapture) WaitForDistinct(ctx context.Context, n int) error {
	return c.log.waitUntil(ctx,
		func([]*broker.Message) bool { return c.log.distinct() >= n },
		func(ms []*broker.Message) string {
			return fmt.Sprintf("got %d of %d distinct messages (%d deliveries)", c.log.distinct(), n, len(ms))
		})
}

// WaitUntil blocks until cond, called with every captured message so far,
// returns true (nil), or ctx ends: the error then wraps ctx's error and
// names what (a description of the condition), the count seen and the last
// messages. cond is called again after every captured message, never
// concurrently with itself for one WaitUntil; it must not modify the
// messages or the slice.
func (c *MessageCapture) WaitUntil(ctx context.Context, what string, cond func([]*broker.Message) bool) error {
	return c.log.waitUntil(ctx, cond, func(ms []*broker.Message) string {
		return fmt.Sprintf("%s: not reached after %d messages", what, len(ms))
	})
}

// CheckOrderedByKey checks that the messages of every key were captured in
// increasing order of seq (equal values pass). Redeliveries — a message
// whose ce_id was captured before — are skipped, since at-least-once
// delivery may repeat a message after later ones. It returns nil, or an
// error describing the first violation (key, positions in the capture log
// and within the key, sequence values, ce_id) and the number of violations.
func (c *MessageCapture) CheckOrderedByKey(seq func(*broker.Message) int64) error {
	return checkOrder(c.log.view(), seq)
}

// AssertOrderedByKey reports the result of CheckOrderedByKey with
// t.Errorf and returns whether the order held.
func (c *MessageCapture) AssertOrderedByKey(t testing.TB, seq func(*broker.Message) int64) bool {
	t.Helper()
	if err := c.CheckOrderedByKey(seq); err != nil {
		t.Errorf("%v", err)
		return false
	}
	return true
}

func checkOrder(msgs []*broker.Message, seq func(*broker.Message) int64) error {
	type keyState struct {
		n       int   // messages of the key so far
		maxSeq  int64 // highest sequence so far
		maxPos  int   // its position in msgs
		history []int64
	}
	keys := map[string]*keyState{}
	seen := map[string]bool{}
	var first error
	violations := 0
	for pos, m := range msgs {
		if id := broker.CanonicalID(m.Header(broker.HeaderID)); id != "" {
			if seen[id] {
				continue
			}
			seen[id] = true
		}
		s := seq(m)
		k := keys[m.Key]
		if k == nil {
			k = &keyState{maxSeq: s, maxPos: pos}
			keys[m.Key] = k
		} else if s < k.maxSeq {
			violations++
			if first == nil {
				first = fmt.Errorf("key %q: message #%d (the key's #%d, seq %d, %s) arrived after message #%d (seq %d); the key's sequence so far: %v",
					m.Key, pos, k.n, s, describeMessage(m), k.maxPos, k.maxSeq, append(k.history, s))
			}
		} else {
			k.maxSeq, k.maxPos = s, pos
		}
		k.n++
		k.history = lastN(append(k.history, s), 10)
	}
	if first != nil {
		return fmt.Errorf("testkit: %d ordering violation(s) in %d messages of %d keys; first: %w", violations, len(msgs), len(keys), first)
	}
	return nil
}

func lastN(s []int64, n int) []int64 { return s[max(0, len(s)-n):] }

// HeaderSeq returns a sequence function for CheckOrderedByKey that reads an
// integer header (e.g. "seq"); a missing or malformed header gives -1.
func HeaderSeq(name string) func(*broker.Message) int64 {
	return func(m *broker.Message) int64 {
		v, err := strconv.ParseInt(m.Header(name), 10, 64)
		if err != nil {
			return -1
		}
		return v
	}
}

// EventTimeSeq is a sequence function for CheckOrderedByKey: the ce_time
// header (the event's timestamp) in Unix nanoseconds, or -1 if missing.
// Events from an EventBuilder have strictly increasing timestamps.
func EventTimeSeq(m *broker.Message) int64 {
	t, ok := events.PublishedAt(m)
	if !ok {
		return -1
	}
	return t.UnixNano()
}
