package memory

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

var _ broker.Replayer = (*Backend)(nil)

// replayBatch is how many entries Replay copies out of a partition in one
// lock; it commits its pin after each batch.
const replayBatch = 256

// Replay implements broker.Replayer: it hands every message the topic
// retains, partition by partition (0, 1, …) and in offset order within each,
// up to each partition's end at the time of the call, to h, then returns
// nil. It runs h on the calling goroutine, one message at a time, with
// ctx, and with messages built as a subscription builds them (a fresh
// Headers map; Delivery with the partition, the offset, Attempt 1 and
// ReceivedAt) except that Delivery.Group is empty. Handlers are not wrapped
// in the broker's middleware or broker.Pipeline: no retries, dead letters,
// hooks or panic recovery (a panic reaches the caller, the replay's hold on
// the topic released).
//
// Replay joins no group and commits nothing: every group's committed
// offsets are unchanged. While it runs it holds, like an ephemeral
// subscription, the messages of the partitions it has not finished yet from
// its position on, so they are not trimmed under it even when every group
// has committed them; on a partition full of them (see BufferSize) a
// publisher waits for the replay to move on (an h that publishes to the
// topic it replays would wait for itself once that partition is full).
// Messages published during the replay are not included.
//
// A topic the broker has never seen (topics are created on first publish
// or subscribe) has no messages: Replay returns nil at once, without
// creating it. Replay stops at the first error h returns and returns it as a
// *broker.HandlerError naming the message (errors.Is and errors.As see the
// handler's error); when ctx ends it returns ctx's error, checked before
// each message; when the broker closes, broker.ErrClosed. After Close it
// returns broker.ErrClosed; an empty topic or a nil h is an error matching
// broker.ErrInvalidSubscription. Replay is safe for concurrent use.
func (b *Backend) Replay(ctx context.Context, topic string, h broker.Handler) error {
	if b.closing.Load() {
		return broker.ErrClosed
	}
	if strings.TrimSpace(topic) == "" {
		return fmt.Errorf("memory: replay needs a topic: %w", broker.ErrInvalidSubscription)
	}
	if h == nil {
		return fmt.Errorf("memory: replay of %q: nil handler: %w", topic, broker.ErrInvalidSubscription)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t := (*b.topics.Load())[topic]
	if t == nil {
		return nil
	}
	pins := make([]pin, len(t.parts))
	for i, p := range t.parts {
		pins[i] = p.pin()
	}
	defer func() {
		for _, pn := range pins {
			if pn.cur != nil {
				pn.cur.part.unregister(pn.cur)
			}
		}
	}()
	var batch []entry
	for i := range pins {
		pn := &pins[i]
		p := pn.cur.part
		for pos := pn.from; pos < pn.end; {
			p.mu.Lock()
			batch = p.read(pos, int(min(replayBatch, pn.end-pos)), batch[:0])
			p.mu.Unlock()
			at := time.Now()
			for k := range batch {
				if b.closing.Load() {
					return broker.ErrClosed
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				m := batch[k].message(t.name, p.id, pos, at)
				if err := h(ctx, m); err != nil {
					return &broker.HandlerError{
						Topic: t.name, Partition: p.id, Offset: pos, Key: m.Key, Attempts: 1, Err: err,
					}
				}
				pos++
			}
			clear(batch)
			p.commit(pn.cur, pos)
		}
		p.unregister(pn.cur)
		pn.cur = nil
	}
	return nil
}

// pin is a replay's hold on one partition: a cursor of no group at the
// oldest retained entry, which keeps the partition from trimming what the
// replay has not handed out yet, and the end captured with it.
type pin struct {
	cur       *cursor
	from, end int64
}

// pin registers a replay cursor at the oldest retained entry and captures
// the end, in one lock.
func (p *partition) pin() pin {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := &cursor{part: p, committed: p.start, delivered: p.start}
	p.cursors = append(p.cursors, c)
	return pin{cur: c, from: p.start, end: p.end()}
}
