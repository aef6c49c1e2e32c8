package memory

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// Publish appends msgs to their topics' partition logs, in argument order,
// and returns once every one is appended: appended is this backend's
// confirmation, and an appended message reaches every group registered on
// the topic. Topics are created on first use. A non-empty key always maps to
// the same partition (FNV-1a), so messages of one key keep their order;
// messages with an empty key are spread round-robin.
//
// Every message is checked before anything is appended: a nil message or
// one without a Topic fails the call with broker.ErrInvalidMessage, one
// whose Size exceeds MaxMessageBytes with broker.ErrMessageTooLarge, and then
// nothing is appended. Publish stores a copy of each message's Headers; the
// Body is shared, never modified. msgs are not modified.
//
// When a partition is full of messages some group still needs, Publish
// waits for room (the default). If ctx ends first it
// returns ctx's error, and if the broker closes first a *broker.PublishError
// matching broker.ErrClosed; with Config.FailWhenFull it returns at once a
// *broker.PublishError matching ErrBufferFull. In each case the messages of
// the call before the one that waited stay appended and are delivered; the
// PublishError lists the ones that were not.
//
// If ctx has ended when Publish is called, it appends nothing and returns
// ctx's error. Publish is safe for concurrent use. After Close it returns
// broker.ErrClosed. The Hooks option's HookPublished hooks are called
// before it returns.
func (b *Backend) Publish(ctx context.Context, msgs ...*broker.Message) error {
	return b.publish(ctx, b.cfg.MaxMessageBytes, msgs)
}

var _ broker.AsyncPublisher = (*Backend)(nil)

// PublishAsync implements broker.AsyncPublisher. Appending is this
// backend's confirmation, so the work is Publish's, done at once: done is
// called with Publish's result before PublishAsync returns, except when
// nothing was appended (an invalid message, ctx ended, Close), which
// PublishAsync returns instead.
func (b *Backend) PublishAsync(ctx context.Context, done func(error), msgs ...*broker.Message) error {
	if done == nil {
		return fmt.Errorf("memory: PublishAsync: nil done func: %w", broker.ErrInvalidMessage)
	}
	err := b.Publish(ctx, msgs...)
	var pe *broker.PublishError
	if err != nil && !errors.As(err, &pe) {
		return err
	}
	done(err)
	return nil
}

// deadLetters is the publisher of a subscription's dead letters: the
// broker, taking messages up to MaxMessageBytes + broker.DeadLetterOverhead,
// so that the dead letter of any message the broker accepted fits.
type deadLetters struct{ b *Backend }

func (d deadLetters) Publish(ctx context.Context, msgs ...*broker.Message) error {
	return d.b.publish(ctx, d.b.cfg.MaxMessageBytes+broker.DeadLetterOverhead, msgs)
}

func (deadLetters) Close() error { return nil }

// publish is Publish with a size limit.
func (b *Backend) publish(ctx context.Context, limit int, msgs []*broker.Message) (err error) {
	if len(b.cfg.Hooks) > 0 {
		start := time.Now()
		defer func() { broker.Hooks(b.cfg.Hooks).Published(ctx, msgs, time.Since(start), err) }()
	}
	if b.closed.Load() {
		return broker.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, m := range msgs {
		if err := check(i, m, limit); err != nil {
			return err
		}
	}
	var (
		t      *topic
		locked *partition
	)
	for i, m := range msgs {
		if t == nil || t.name != m.Topic {
			t = b.topic(m.Topic)
		}
		p := t.partitionFor(m.Key)
		e := entry{key: m.Key, headers: m.Headers.Clone(), body: m.Body}
		if p != locked {
			if locked != nil {
				locked.notify()
				locked.mu.Unlock()
			}
			locked = p
			p.mu.Lock()
		}
		for !p.makeRoom() {
			p.notify() // the consumers must see what this call appended
			if b.cfg.FailWhenFull {
				p.mu.Unlock()
				return notAppended(msgs, i, ErrBufferFull)
			}
			room := p.roomChan()
			p.mu.Unlock()
			select {
			case <-room:
			case <-ctx.Done():
				return ctx.Err()
			case <-b.done:
				return notAppended(msgs, i, broker.ErrClosed)
			}
			p.mu.Lock()
		}
		p.push(e)
	}
	if locked != nil {
		locked.notify()
		locked.mu.Unlock()
	}
	return nil
}

// check validates message i of a Publish call.
func check(i int, m *broker.Message, limit int) error {
	if m == nil {
		return fmt.Errorf("memory: message #%d is nil: %w", i, broker.ErrInvalidMessage)
	}
	if strings.TrimSpace(m.Topic) == "" {
		return fmt.Errorf("memory: message #%d (key %q) has no topic: %w", i, m.Key, broker.ErrInvalidMessage)
	}
	if n := m.Size(); n > limit {
		return fmt.Errorf("memory: message #%d (topic %q, key %q) is %d bytes, over the %d-byte limit: %w",
			i, m.Topic, m.Key, n, limit, broker.ErrMessageTooLarge)
	}
	return nil
}

// notAppended reports msgs[from:] as not confirmed.
func notAppended(msgs []*broker.Message, from int, cause error) error {
	pe := &broker.PublishError{Failed: make([]broker.FailedMessage, 0, len(msgs)-from)}
	for i := from; i < len(msgs); i++ {
		pe.Failed = append(pe.Failed, broker.FailedMessage{Index: i, Message: msgs[i], Err: cause})
	}
	return pe
}
