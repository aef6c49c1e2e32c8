package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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
	client   sarama.Client
	producer sarama.AsyncProducer
	hooks    broker.Hooks

	// mu is held for reading by every Publish while it hands its messages
	// to the producer, and for writing by Close, so no message is handed
	// over after the producer started closing.
	mu     sync.RWMutex
	closed bool
	// gaveUp is closed when Close stops waiting for the producer (after
	// Config.CloseTimeout): hand-offs and waits for acknowledgements still
	// in progress end, their messages failed with broker.ErrClosed.
	gaveUp     chan struct{}
	gaveUpCtx  context.Context // done with gaveUp, for PublishAsync's waits
	giveUpCtx  context.CancelFunc
	giveUpOnce sync.Once
	// results is done when the Successes and Errors readers have exited.
	results sync.WaitGroup
}

func newPublisher(cfg Config, sc *sarama.Config) (*publisher, error) {
	// The producer gets a client of its own so that Close can close its
	// connections even when the producer never finishes shutting down.
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("kafkabus: start producer: %w", err)
	}
	p, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("kafkabus: start producer: %w", err)
	}
	pub := &publisher{cfg: cfg, client: client, producer: p, hooks: broker.Hooks(cfg.Hooks), version: 2, gaveUp: make(chan struct{})}
	pub.gaveUpCtx, pub.giveUpCtx = context.WithCancel(context.Background())
	pub.results.Add(2)
	go pub.readSuccesses()
	go pub.readErrors()
	return pub, nil
}

// call is one Publish call in flight.
type call struct {
	done    chan struct{} // closed once every message is settled
	msgs    []*broker.Message
	entries []entry

	mu        sync.Mutex
	remaining int
	settled   []bool
	failed    []broker.FailedMessage
	// onSettled, when set, runs once every message is settled, after mu
	// is released (PublishAsync's completion).
	onSettled func()
}

func newCall(msgs []*broker.Message) *call {
	return &call{done: make(chan struct{}), msgs: msgs, entries: make([]entry, len(msgs)), remaining: len(msgs), settled: make([]bool, len(msgs))}
}

// entry is the Metadata of one ProducerMessage: its call and position.
type entry struct {
	c   *call
	idx int
}

// resolve settles message idx: acknowledged (nil) or failed. A message
// already settled (failed by failRest) stays as it is.
func (c *call) resolve(idx int, err error) {
	c.mu.Lock()
	last := c.settle(idx, err)
	c.mu.Unlock()
	if last && c.onSettled != nil {
		c.onSettled()
	}
}

// failRest fails with err every message not settled yet.
func (c *call) failRest(err error) {
	c.mu.Lock()
	last := false
	for i := range c.settled {
		last = c.settle(i, err) || last
	}
	c.mu.Unlock()
	if last && c.onSettled != nil {
		c.onSettled()
	}
}

// settle does resolve's work and reports whether it settled the last
// message; the caller holds mu.
func (c *call) settle(idx int, err error) bool {
	if c.settled[idx] {
		return false
	}
	c.settled[idx] = true
	if err != nil {
		c.failed = append(c.failed, broker.FailedMessage{Index: idx, Message: c.msgs[idx], Err: err})
	}
	if c.remaining--; c.remaining == 0 {
		close(c.done)
		return true
	}
	return false
}

// result returns nil when every message was acknowledged, else a
// *broker.PublishError naming the others. Every message is settled.
func (c *call) result() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.failed) == 0 {
		return nil
	}
	failed := slices.Clone(c.failed)
	slices.SortFunc(failed, func(a, b broker.FailedMessage) int { return a.Index - b.Index })
	return &broker.PublishError{Failed: failed}
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
	c, pms, err := p.prepare(msgs)
	if err != nil {
		return err
	}
	if err := p.handOff(ctx, c, pms); err != nil {
		return err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return fmt.Errorf("kafkabus: publish: waiting for acknowledgement: %w", ctx.Err())
	case <-p.gaveUp:
		c.failRest(p.errGaveUp())
	}
	return c.result()
}

// prepare encodes msgs for the producer, each tracked by the returned call.
func (p *publisher) prepare(msgs []*broker.Message) (*call, []sarama.ProducerMessage, error) {
	c := newCall(msgs)
	pms := make([]sarama.ProducerMessage, len(msgs))
	for i, m := range msgs {
		if err := p.encode(&pms[i], m, i); err != nil {
			return nil, nil, err
		}
		c.entries[i] = entry{c: c, idx: i}
		pms[i].Metadata = &c.entries[i]
	}
	return c, pms, nil
}

// PublishAsync implements broker.AsyncPublisher: Publish's checks and
// hand-off, in the caller's goroutine and in order (so messages with equal
// keys keep their order across calls too), then done with what Publish
// would have returned once every message is acknowledged or failed. No
// goroutine waits per call: the producer's result readers complete it.
func (p *publisher) PublishAsync(ctx context.Context, done func(error), msgs ...*broker.Message) error {
	if done == nil {
		return fmt.Errorf("kafkabus: PublishAsync: nil done func: %w", broker.ErrInvalidMessage)
	}
	if len(msgs) == 0 {
		done(nil)
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	c, pms, err := p.prepare(msgs)
	if err != nil {
		return err
	}
	w := &asyncWait{}
	finish := func(err error) {
		if !w.finish() {
			return
		}
		if len(p.hooks) > 0 {
			p.hooks.Published(ctx, msgs, time.Since(start), err)
		}
		done(err)
	}
	c.mu.Lock()
	c.onSettled = func() { finish(c.result()) }
	c.mu.Unlock()
	if err := p.handOff(ctx, c, pms); err != nil {
		if c.isSettled() {
			return nil // Close gave up: every message failed, done was told
		}
		// Nothing, or part, was handed over (the part may or may not be
		// delivered, as when Publish's ctx ends): the caller learns it
		// here, and done is not called.
		w.finish()
		return err
	}
	w.add(context.AfterFunc(ctx, func() {
		finish(fmt.Errorf("kafkabus: publish: waiting for acknowledgement: %w", ctx.Err()))
	}))
	w.add(context.AfterFunc(p.gaveUpCtx, func() { c.failRest(p.errGaveUp()) }))
	return nil
}

// asyncWait is the end of one PublishAsync call: finished once, and the
// context.AfterFunc registrations to drop then.
type asyncWait struct {
	mu       sync.Mutex
	finished bool
	stops    []func() bool
}

// finish marks the call finished and drops its registrations; false when
// it already was.
func (w *asyncWait) finish() bool {
	w.mu.Lock()
	if w.finished {
		w.mu.Unlock()
		return false
	}
	w.finished = true
	stops := w.stops
	w.stops = nil
	w.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	return true
}

// add keeps stop for finish, or calls it when the call already finished.
func (w *asyncWait) add(stop func() bool) {
	w.mu.Lock()
	if w.finished {
		w.mu.Unlock()
		stop()
		return
	}
	w.stops = append(w.stops, stop)
	w.mu.Unlock()
}

// isSettled reports whether every message of c is settled.
func (c *call) isSettled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remaining == 0
}

// handOff gives the call's messages to the producer, in order. It fails
// with broker.ErrClosed once Close has started, with ctx's error when ctx
// ends first, and with a *broker.PublishError matching broker.ErrClosed
// (the messages not acknowledged) when Close gives up meanwhile.
func (p *publisher) handOff(ctx context.Context, c *call, pms []sarama.ProducerMessage) error {
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
			return fmt.Errorf("kafkabus: publish: %d of %d message(s) handed to the producer: %w", i, len(pms), ctx.Err())
		case <-p.gaveUp:
			c.failRest(p.errGaveUp())
			return c.result()
		}
	}
	return nil
}

// errGaveUp is the error of the messages Close stopped waiting for.
func (p *publisher) errGaveUp() error {
	return fmt.Errorf("kafkabus: not acknowledged within CloseTimeout %v of Close (may or may not have been written): %w", p.cfg.CloseTimeout, broker.ErrClosed)
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
		for _, hdr := range m.Headers {
			k, v := hdr.Key, hdr.Value
			pm.Headers = append(pm.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
		}
	}
	if size := pm.ByteSize(p.version); size > p.cfg.MaxMessageBytes {
		return fmt.Errorf("kafkabus: message #%d (topic %q, key %q) is %d bytes as a record, over MaxMessageBytes %d; nothing was sent: %w",
			i, m.Topic, m.Key, size, p.cfg.MaxMessageBytes, broker.ErrMessageTooLarge)
	}
	return nil
}

// Close stops the producer: Publish calls still handing messages over are
// let finish, the producer flushes what it holds and Close waits for the
// acknowledgements, then closes the producer's connections. It returns
// within Config.CloseTimeout whatever is queued: when that passes, the
// messages not acknowledged fail with broker.ErrClosed (so do the Publish
// calls waiting for them), the connections are closed under the producer,
// and Close returns an error saying so. Close is idempotent.
func (p *publisher) Close() error {
	timer := time.AfterFunc(p.cfg.CloseTimeout, p.giveUp)
	defer timer.Stop()
	p.mu.Lock() // a hand-off blocked on the producer ends when Close gives up
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.producer.AsyncClose()
	drained := make(chan struct{})
	go func() { p.results.Wait(); close(drained) }()
	select {
	case <-drained:
		if err := p.client.Close(); err != nil {
			return fmt.Errorf("kafkabus: close producer connections: %w", err)
		}
		return nil
	case <-p.gaveUp:
		// The producer's goroutines end once the closed connections fail
		// what they still hold; the readers settle it for nobody.
		_ = p.client.Close()
		return fmt.Errorf("kafkabus: close: the producer had not delivered every message within CloseTimeout %v; "+
			"the unacknowledged ones failed with broker.ErrClosed and its connections were closed", p.cfg.CloseTimeout)
	}
}

// giveUp ends every wait for the producer (see Config.CloseTimeout).
func (p *publisher) giveUp() { p.giveUpOnce.Do(func() { close(p.gaveUp); p.giveUpCtx() }) }
