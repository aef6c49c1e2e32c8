package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/events/broker"
)

var _ broker.Replayer = (*Backend)(nil)

// ErrUnknownTopic is matched (errors.Is) by the error Replay returns for a
// topic the cluster does not have; that error also matches
// sarama.ErrUnknownTopicOrPartition.
var ErrUnknownTopic = errors.New("kafkabus: unknown topic")

// replayFetchWait is how long a replay's fetch waits at a partition's end
// for more records (sarama's Consumer.MaxWaitTime, 500ms by default).
const replayFetchWait = 10 * time.Millisecond

// errReplayOver is the cause Replay cancels its reader with when the replay
// ends on the caller's side (done, handler error, panic).
var errReplayOver = errors.New("kafkabus: replay over")

// Replay implements broker.Replayer. It reads the topic with a plain
// partition consumer on a connection of its own — no consumer group, no
// offset commit, so no group's position changes — partition by partition
// in ascending order, each from its oldest retained offset up to the
// high-water mark read when the call starts. Empty partitions, and
// partitions whose records retention has all removed, are skipped; records
// published during the replay are not included. If retention removes the
// start of a partition before Replay reaches it, the partition is read from
// its new start.
//
// h runs on the calling goroutine, one message at a time, with messages
// built as a subscription builds them (key, body, headers; Delivery with the
// partition, the offset, Attempt 1 and ReceivedAt) except that
// Delivery.Group is empty. Its ctx is ctx, also cancelled when the Backend
// closes. h is not wrapped in Config.Hooks or broker.Pipeline: no
// retries, dead letters or panic recovery (a panic reaches the caller, the
// connection closed).
//
// Replay returns nil once every message is handed out. It stops at the
// first error h returns and returns it as a *broker.HandlerError naming the
// message (errors.Is and errors.As see the handler's error). When ctx ends
// it returns ctx's error at once, even while a fetch is outstanding (the
// connection is then closed in the background, and Backend.Close waits for
// it); when the Backend closes, broker.ErrClosed. A topic the cluster does
// not have fails with an error matching ErrUnknownTopic (after the client's
// metadata retries); an empty topic or a nil h with one matching
// broker.ErrInvalidSubscription; after Close, Replay returns
// broker.ErrClosed. Fetch errors the client retries by itself are logged
// and passed to HookClientError hooks, with group "". Replay is safe for
// concurrent use.
//
// Replay waits for the record just below each partition's high-water mark,
// which a topic written by kafkabus (or any non-transactional producer)
// always has. On a topic written by transactional producers, a partition
// whose last record is a transaction marker makes it wait for the next
// record, or for ctx.
func (b *Backend) Replay(ctx context.Context, topic string, h broker.Handler) error {
	if topic == "" {
		return fmt.Errorf("kafkabus: replay needs a topic: %w", broker.ErrInvalidSubscription)
	}
	if h == nil {
		return fmt.Errorf("kafkabus: replay of %q: nil handler: %w", topic, broker.ErrInvalidSubscription)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return broker.ErrClosed
	}
	b.replays.Add(1)
	b.mu.Unlock()

	rctx, cancel := context.WithCancelCause(ctx)
	unwatch := context.AfterFunc(b.life, func() { cancel(broker.ErrClosed) })
	r := &replayReader{cfg: b.cfg, topic: topic, ctx: rctx, out: make(chan replayItem), done: make(chan struct{})}
	go func() {
		defer b.replays.Done()
		r.run()
	}()
	waitReader := true
	defer func() {
		unwatch()
		cancel(errReplayOver)
		if waitReader {
			<-r.done
		}
	}()
	stopped := func() error {
		waitReader = false // it may be stuck in a fetch: let it close in the background
		if err := ctx.Err(); err != nil {
			return err
		}
		return broker.ErrClosed
	}
	for {
		if rctx.Err() != nil {
			return stopped()
		}
		select {
		case it := <-r.out:
			if it.msg == nil {
				if it.err != nil && rctx.Err() != nil {
					return stopped() // the reader saw ctx end first
				}
				return it.err
			}
			if err := h(rctx, it.msg); err != nil {
				return &broker.HandlerError{
					Topic: topic, Partition: it.msg.Delivery.Partition, Offset: it.msg.Delivery.Offset,
					Key: it.msg.Key, Attempts: 1, Err: err,
				}
			}
		case <-rctx.Done():
			return stopped()
		}
	}
}

// replayReader does a Replay's Kafka I/O on a goroutine of its own and
// hands the messages over one at a time (out is unbuffered). It stops when
// ctx ends, and closes every consumer and connection it opened before done
// is closed.
type replayReader struct {
	cfg   Config
	topic string
	ctx   context.Context
	out   chan replayItem
	done  chan struct{}
}

// replayItem is a message, or (msg nil) the end of the reader: err nil
// when every partition was read.
type replayItem struct {
	msg *broker.Message
	err error
}

// replaySpan is the part of a partition a replay reads: [from, end).
type replaySpan struct {
	partition int32
	from, end int64
}

func (r *replayReader) run() {
	defer close(r.done)
	err := r.read()
	select {
	case r.out <- replayItem{err: err}:
	case <-r.ctx.Done():
	}
}

// read connects, takes every partition's log start and high-water mark,
// then reads the partitions one after the other.
func (r *replayReader) read() error {
	sc := r.cfg.sarama()
	// Replay reads only what is there: a fetch at a partition's end need
	// not wait for more (closing a partition consumer waits for its fetch).
	sc.Consumer.MaxWaitTime = replayFetchWait
	client, err := sarama.NewClient(r.cfg.Brokers, sc)
	if err != nil {
		return fmt.Errorf("kafkabus: replay of %q: connect: %w", r.topic, err)
	}
	defer func() { _ = client.Close() }()
	parts, err := client.Partitions(r.topic)
	if err != nil {
		if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			return fmt.Errorf("kafkabus: replay of %q: %w: %w", r.topic, ErrUnknownTopic, err)
		}
		return fmt.Errorf("kafkabus: replay of %q: partitions: %w", r.topic, err)
	}
	slices.Sort(parts)
	spans := make([]replaySpan, 0, len(parts))
	for _, p := range parts {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		end, err := client.GetOffset(r.topic, p, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("kafkabus: replay of %q: high-water mark of partition %d: %w", r.topic, p, err)
		}
		from, err := client.GetOffset(r.topic, p, sarama.OffsetOldest)
		if err != nil {
			return fmt.Errorf("kafkabus: replay of %q: log start of partition %d: %w", r.topic, p, err)
		}
		spans = append(spans, replaySpan{partition: p, from: from, end: end})
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("kafkabus: replay of %q: consumer: %w", r.topic, err)
	}
	defer func() { _ = consumer.Close() }()
	for _, s := range spans {
		if s.from >= s.end {
			continue // empty, or everything removed by retention
		}
		if err := r.partition(client, consumer, s); err != nil {
			return err
		}
	}
	return nil
}

// partition hands out the records of s in order and closes its partition
// consumer.
func (r *replayReader) partition(client sarama.Client, consumer sarama.Consumer, s replaySpan) error {
	pc, err := consumer.ConsumePartition(r.topic, s.partition, s.from)
	if errors.Is(err, sarama.ErrOffsetOutOfRange) {
		// Retention removed the start since the replay began.
		if s.from, err = client.GetOffset(r.topic, s.partition, sarama.OffsetOldest); err == nil {
			if s.from >= s.end {
				return nil
			}
			pc, err = consumer.ConsumePartition(r.topic, s.partition, s.from)
		}
	}
	if err != nil {
		return fmt.Errorf("kafkabus: replay of %q: consume partition %d from %d: %w", r.topic, s.partition, s.from, err)
	}
	defer func() { _ = pc.Close() }() // its errors were read below
	errs := pc.Errors()
	hc := newHeaderCache()
	for {
		select {
		case cm, ok := <-pc.Messages():
			if !ok {
				return fmt.Errorf("kafkabus: replay of %q: partition %d consumer stopped before offset %d", r.topic, s.partition, s.end-1)
			}
			if cm.Offset >= s.end {
				return nil // past the mark: the last record before it was not a data record
			}
			m := new(broker.Message)
			fillMessage(m, cm, time.Now(), hc)
			select {
			case r.out <- replayItem{msg: m}:
			case <-r.ctx.Done():
				return r.ctx.Err()
			}
			if cm.Offset >= s.end-1 {
				return nil
			}
		case cerr, ok := <-errs:
			if !ok {
				errs = nil // closed with Messages, which reports it
				continue
			}
			if errors.Is(cerr.Err, sarama.ErrOffsetOutOfRange) {
				return fmt.Errorf("kafkabus: replay of %q: partition %d: records removed by retention while being read: %w", r.topic, s.partition, cerr.Err)
			}
			r.cfg.Logger.Warn("kafkabus: replay: consumer error", "topic", r.topic, "partition", s.partition, "error", cerr.Err)
			notifyClientError(r.cfg.Hooks, "", r.topic, s.partition, cerr.Err)
		case <-r.ctx.Done():
			return r.ctx.Err()
		}
	}
}
