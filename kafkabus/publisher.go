package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/events/broker"
)

// publisher is the Publish side of a Backend: one sarama async producer
// shared by every caller. Each Publish call tracks its own messages through
// ProducerMessage.Metadata and waits for their acknowledgement; concurrent
// calls are batched together by the producer.
type publisher struct {
	cfg      Config
	version  int // record format version, for ProducerMessage.ByteSize
	producer sarama.AsyncProducer
	hooks    broker.Hooks

	// mu is held for reading by every Publish for its whole duration and
	// for writing by Close, so Close waits for in-flight calls and no
	// message is sent after the producer started closing.
	mu     sync.RWMutex
	closed bool
	// results is done when the Successes and Errors readers have exited.
	results sync.WaitGroup
}

func newPublisher(cfg Config, sc *sarama.Config) (*publisher, error) {
	p, err := sarama.NewAsyncProducer(cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("kafkabus: start producer: %w", err)
	}
	pub := &publisher{cfg: cfg, producer: p, hooks: broker.Hooks(cfg.Hooks), version: 2}
	pub.results.Add(2)
	go pub.readSuccesses()
	go pub.readErrors()
	return pub, nil
}

// call is one Publish call in flight.
type call struct {
	remaining atomic.Int32
	done      chan struct{}
	msgs      []*broker.Message
	entries   []entry

	mu     sync.Mutex
	failed []broker.FailedMessage
}

// entry is the Metadata of one ProducerMessage: its call and position.
type entry struct {
	c   *call
	idx int
}

func (c *call) resolve(idx int, err error) {
	if err != nil {
		c.mu.Lock()
		c.failed = append(c.failed, broker.FailedMessage{Index: idx, Message: c.msgs[idx], Err: err})
		c.mu.Unlock()
	}
	if c.remaining.Add(-1) == 0 {
		close(c.done)
	}
}

func (p *publisher) readSuccesses() {
	defer p.results.Done()
	for pm := range p.producer.Successes() {
		if e, ok := pm.Metadata.(*entry); ok {
			e.c.resolve(e.idx, nil)
		}
	}
}

func (p *publisher) readErrors() {
	defer p.results.Done()
	for pe := range p.producer.Errors() {
		err := mapProduceError(pe.Err)
		if e, ok := pe.Msg.Metadata.(*entry); ok {
			e.c.resolve(e.idx, err)
		}
		p.cfg.Logger.Error("kafka produce failed", "topic", pe.Msg.Topic, "partition", pe.Msg.Partition, "error", pe.Err)
	}
}

// mapProduceError adds the broker sentinel that matches a sarama error.
func mapProduceError(err error) error {
	var cfgErr sarama.ConfigurationError
	switch {
	case errors.Is(err, sarama.ErrMessageSizeTooLarge), errors.As(err, &cfgErr) && strings.Contains(string(cfgErr), "MaxMessageBytes"):
		return fmt.Errorf("%w: %w", broker.ErrMessageTooLarge, err)
	case errors.Is(err, sarama.ErrUnknownTopicOrPartition):
		return fmt.Errorf("%w: %w", broker.ErrUnroutable, err)
	case errors.Is(err, sarama.ErrTopicAuthorizationFailed), errors.Is(err, sarama.ErrClusterAuthorizationFailed),
		errors.Is(err, sarama.ErrTransactionalIDAuthorizationFailed):
		return fmt.Errorf("%w: %w", broker.ErrNotAuthorized, err)
	case errors.Is(err, sarama.ErrInvalidTopic), errors.Is(err, sarama.ErrInvalidRecord):
		return fmt.Errorf("%w: %w", broker.ErrInvalidMessage, err)
	case errors.Is(err, sarama.ErrShuttingDown):
		return fmt.Errorf("%w: %w", broker.ErrClosed, err)
	}
	return err
}

// Publish implements broker.Publisher.Publish.
func (p *publisher) Publish(ctx context.Context, msgs ...*broker.Message) (err error) {
	if len(msgs) == 0 {
		return nil
	}
	start := time.Now()
	defer func() {
		if len(p.hooks) > 0 {
			p.hooks.Published(ctx, msgs, time.Since(start), err)
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &call{done: make(chan struct{}), msgs: msgs, entries: make([]entry, len(msgs))}
	pms := make([]sarama.ProducerMessage, len(msgs))
	for i, m := range msgs {
		if err := p.encode(&pms[i], m, i); err != nil {
			return err
		}
		c.entries[i] = entry{c: c, idx: i}
		pms[i].Metadata = &c.entries[i]
	}
	c.remaining.Store(int32(len(msgs)))

	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return broker.ErrClosed
	}
	in := p.producer.Input()
	for i := range pms {
		select {
		case in <- &pms[i]:
		case <-ctx.Done():
			return fmt.Errorf("kafkabus: publish: %d of %d message(s) handed to the producer: %w", i, len(msgs), ctx.Err())
		}
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return fmt.Errorf("kafkabus: publish: waiting for acknowledgement: %w", ctx.Err())
	}
	if len(c.failed) == 0 {
		return nil
	}
	slices.SortFunc(c.failed, func(a, b broker.FailedMessage) int { return a.Index - b.Index })
	return &broker.PublishError{Failed: c.failed}
}

// encode fills pm from m, checking what Kafka would refuse before anything
// of the call is sent.
func (p *publisher) encode(pm *sarama.ProducerMessage, m *broker.Message, i int) error {
	if m == nil || m.Topic == "" {
		return fmt.Errorf("kafkabus: message #%d has no topic: %w", i, broker.ErrInvalidMessage)
	}
	pm.Topic = m.Topic
	if m.Key != "" {
		pm.Key = sarama.StringEncoder(m.Key)
	}
	if m.Body != nil {
		pm.Value = sarama.ByteEncoder(m.Body)
	}
	if len(m.Headers) > 0 {
		pm.Headers = make([]sarama.RecordHeader, 0, len(m.Headers))
		for k, v := range m.Headers {
			pm.Headers = append(pm.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
		}
	}
	if size := pm.ByteSize(p.version); size > p.cfg.MaxMessageBytes {
		return fmt.Errorf("kafkabus: message #%d (topic %q, key %q) is %d bytes as a record, over MaxMessageBytes %d; nothing was sent: %w",
			i, m.Topic, m.Key, size, p.cfg.MaxMessageBytes, broker.ErrMessageTooLarge)
	}
	return nil
}

// Close waits for in-flight Publish calls, flushes and stops the producer.
func (p *publisher) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.producer.AsyncClose()
	p.results.Wait()
	return nil
}
