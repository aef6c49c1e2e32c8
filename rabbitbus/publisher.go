package rabbitbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// maxChannelFailures bounds how often the messages of one Publish call are
// sent again after their channel was closed by a channel error (not a lost
// connection, which is retried until ctx ends).
const maxChannelFailures = 3

// Publisher publishes to RabbitMQ with publisher confirms. It implements
// broker.Publisher and is safe for concurrent use.
//
// Each topic is a durable topic exchange, declared on first use; the
// routing key is the message's event type (ce_type). Messages are
// persistent and mandatory: one that no queue takes fails with
// broker.ErrUnroutable (unless its topic is in Config.DropUnroutable).
//
// Delivery is at least once. Publish returns nil only when the broker
// confirmed every message. A message whose connection (or channel) is lost
// before its confirm is sent again, in order, as soon as a connection is
// back: the broker may then hold it twice, and the copy is marked so that a
// rabbitbus consumer reports it as Delivery.Redelivered. A message the
// broker nacks (a quorum queue electing a new leader after a node loss, a
// queue refusing more) is sent again, with backoff, for Config.NackRetry,
// then fails with ErrNacked. While no node is reachable, Publish waits for
// one, bounded by its ctx; nothing is dropped silently.
//
// Messages of one call with equal keys are published in order; a re-send
// keeps the order of the messages it re-sends, but if the broker nacks one
// message and takes a later one of the same call, the nacked one arrives
// after it.
type Publisher struct {
	cfg   Config
	log   *slog.Logger
	hooks broker.Hooks
	mgr   *connManager
	pool  channelPool
	exch  exchangeCache

	mu      sync.Mutex
	closed  bool
	calls   sync.WaitGroup
	closing context.Context // cancelled by Close: waits for a connection give up
	cancel  context.CancelFunc
	// gaveUp is cancelled when Close stops waiting for the calls in
	// progress (Config.CloseTimeout): their waits for confirms end too.
	gaveUp context.Context
	giveUp context.CancelFunc
}

// NewPublisher validates cfg, connects to the first node of cfg.URLs that
// answers (trying each once: a *ConnectError when none does, matching
// ErrAccessRefused for refused credentials) and returns a Publisher with
// its own connection. ctx bounds the connection attempts.
func NewPublisher(ctx context.Context, cfg Config) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return newPublisher(ctx, cfg)
}

func newPublisher(ctx context.Context, cfg Config) (*Publisher, error) {
	p := &Publisher{cfg: cfg, log: cfg.Logger, hooks: cfg.Hooks}
	p.pool = channelPool{size: cfg.PublishChannels, window: cfg.ConfirmWindow}
	mgr, err := newConnManager(ctx, &p.cfg, "publisher")
	if err != nil {
		return nil, err
	}
	p.mgr = mgr
	p.closing, p.cancel = context.WithCancel(context.Background())
	p.gaveUp, p.giveUp = context.WithCancel(context.Background())
	return p, nil
}

// Publish sends msgs and returns when the broker confirmed every one of
// them (see broker.Publisher). All messages of one call go out on one
// channel, in order. The error is nil; or, before anything was sent, an
// error matching broker.ErrInvalidMessage, broker.ErrMessageTooLarge
// (Message.Size over Config.MaxMessageBytes) or broker.ErrClosed; or ctx's
// error when ctx ended first (the messages may or may not have arrived);
// or a *broker.PublishError naming each message that failed, with
// broker.ErrUnroutable, ErrNacked, a *TopologyError, or broker.ErrClosed
// when Close stopped a wait for a connection.
func (p *Publisher) Publish(ctx context.Context, msgs ...*broker.Message) error {
	start := time.Now()
	err := p.publish(ctx, msgs, pubOptions{mandatory: true})
	if len(p.hooks) > 0 {
		p.hooks.Published(ctx, msgs, time.Since(start), err)
	}
	return err
}

// pubOptions are the variations dead letters need.
type pubOptions struct {
	mandatory bool
	bcc       string // an extra routing key (BCC header): the group's dead-letter queue
	maxSize   int    // the size limit; 0: Config.MaxMessageBytes
}

func (p *Publisher) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.calls.Add(1)
	return true
}

func (p *Publisher) publish(ctx context.Context, msgs []*broker.Message, opt pubOptions) error {
	if !p.enter() {
		return broker.ErrClosed
	}
	defer p.calls.Done()
	if len(msgs) == 0 {
		return nil
	}
	out, topics, err := p.prepare(msgs, opt)
	if err != nil {
		return err
	}
	return p.send(ctx, msgs, out, topics)
}

// PublishAsync implements broker.AsyncPublisher: the messages are checked
// in the caller's goroutine (an invalid or oversized one, or Close, is
// returned at once and done is not called), then sent and confirmed as by
// Publish on a goroutine of the call's own, which calls done with Publish's
// result. Calls are independent, as concurrent Publish calls are: each goes
// out on a channel of the pool, so order across calls is not kept (order
// within a call is). Close waits for calls in flight as it waits for
// Publish calls.
func (p *Publisher) PublishAsync(ctx context.Context, done func(error), msgs ...*broker.Message) error {
	if done == nil {
		return fmt.Errorf("rabbitbus: PublishAsync: nil done func: %w", broker.ErrInvalidMessage)
	}
	if !p.enter() {
		return broker.ErrClosed
	}
	if len(msgs) == 0 {
		p.calls.Done()
		done(nil)
		return nil
	}
	if err := ctx.Err(); err != nil {
		p.calls.Done()
		return err
	}
	out, topics, err := p.prepare(msgs, pubOptions{mandatory: true})
	if err != nil {
		p.calls.Done()
		return err
	}
	start := time.Now()
	go func() {
		defer p.calls.Done()
		err := p.send(ctx, msgs, out, topics)
		if len(p.hooks) > 0 {
			p.hooks.Published(ctx, msgs, time.Since(start), err)
		}
		done(err)
	}()
	return nil
}

// send publishes the prepared messages out until every one is confirmed or
// failed (Publish's loop).
func (p *Publisher) send(ctx context.Context, msgs []*broker.Message, out []outMsg, topics []string) error {
	// Waits for a connection also end when Close is called, waits for
	// confirms when Close gives up. The merged context is made only if a
	// wait needs it: the common call (connected, room in the window) waits
	// only for its confirms, on ctx and gaveUp directly.
	wctx := &orContext{Context: ctx, other: p.closing}
	defer wctx.release()

	call := newCall(len(out))
	todo := make([]int, len(out))
	for i := range todo {
		todo[i] = i
	}
	channelFailures := 0
	var nacks nackRetry
	for len(todo) > 0 {
		s, err := p.mgr.current(wctx)
		if err == nil {
			err = p.mgr.waitUnblocked(wctx)
		}
		if err != nil {
			return p.stopped(ctx, call, msgs, err)
		}
		if err := p.exch.ensure(s, topics); err != nil {
			if isConnLoss(err) {
				waitLost(wctx, s)
				continue
			}
			call.failAll(refusal(err))
			break
		}
		pc, err := p.pool.get(s)
		if err != nil {
			if isConnLoss(err) {
				waitLost(wctx, s)
				continue
			}
			call.failAll(err)
			break
		}
		sendErr := pc.send(wctx, call, out, todo)
		if err := call.wait(ctx, p.gaveUp.Done()); err != nil {
			if ctx.Err() == nil { // Close gave up
				call.failAll(fmt.Errorf("rabbitbus: no confirm within CloseTimeout %v of Close (the message may or may not have arrived): %w",
					p.cfg.CloseTimeout, broker.ErrClosed))
				return call.result(msgs)
			}
			return fmt.Errorf("rabbitbus: publish: %w", err)
		}
		if call.hasNacked() {
			if !nacks.retry(wctx, p.cfg) {
				if ctx.Err() != nil || p.closing.Err() != nil {
					return p.stopped(ctx, call, msgs, wctx.Err())
				}
				call.failAll(ErrNacked)
				break
			}
			call.requeueNacked()
		}
		var lost bool
		todo, lost = call.pending(out)
		if len(todo) == 0 {
			break
		}
		p.retried(ctx, msgs, todo, sendErr)
		if sendErr != nil && !errors.Is(sendErr, errConnLost) {
			// ctx or Close ended the wait for room in the window.
			return p.stopped(ctx, call, msgs, sendErr)
		}
		if sendErr == nil && !pc.isDead() {
			continue // only nacked messages, sent again after the pause
		}
		cause := pc.cause()
		if cause == nil {
			cause = sendErr
		}
		p.log.Debug("rabbitbus: channel lost before confirms; sending again", "messages", len(todo), "in_flight_lost", lost, "error", cause)
		if !isChannelError(cause) {
			// Lost with its connection (the next channel will wait for a
			// new one), or retired after a nack: send on another.
			continue
		}
		// The broker closed the channel (an exchange deleted under us, …).
		p.exch.forget()
		if channelFailures++; channelFailures >= maxChannelFailures {
			call.failAll(fmt.Errorf("rabbitbus: channel closed by the broker: %w", refusal(cause)))
			break
		}
	}
	return call.result(msgs)
}

// stopped reports a publish abandoned while waiting: ctx's error, or
// ErrClosed (for the messages not confirmed) when Close caused it.
func (p *Publisher) stopped(ctx context.Context, call *publishCall, msgs []*broker.Message, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("rabbitbus: publish: %w", ctx.Err())
	}
	if p.closing.Err() != nil || errors.Is(err, broker.ErrClosed) {
		call.failAll(broker.ErrClosed)
		if res := call.result(msgs); res != nil {
			var pe *broker.PublishError
			if errors.As(res, &pe) && len(pe.Failed) == len(msgs) {
				return broker.ErrClosed
			}
			return res
		}
		return nil
	}
	call.failAll(err)
	return call.result(msgs)
}

// prepare checks every message and turns it into its wire form; nothing is
// sent if one fails.
func (p *Publisher) prepare(msgs []*broker.Message, opt pubOptions) ([]outMsg, []string, error) {
	out := make([]outMsg, len(msgs))
	var topics []string // few: a linear search beats a map
	for i, m := range msgs {
		if m == nil {
			return nil, nil, fmt.Errorf("%w: message #%d is nil", broker.ErrInvalidMessage, i)
		}
		if err := checkTopic(m.Topic); err != nil {
			return nil, nil, fmt.Errorf("%w: message #%d: %w", broker.ErrInvalidMessage, i, err)
		}
		limit := p.cfg.MaxMessageBytes
		if opt.maxSize > 0 {
			limit = opt.maxSize
		}
		if n := m.Size(); n > limit {
			return nil, nil, fmt.Errorf("%w: message #%d (topic %q, key %q) is %d bytes, the limit is %d",
				broker.ErrMessageTooLarge, i, m.Topic, m.Key, n, limit)
		}
		if err := checkHeaders(m); err != nil {
			return nil, nil, fmt.Errorf("message #%d: %w", i, err)
		}
		key, pub := toPublishing(m)
		if len(key) > 255 {
			return nil, nil, fmt.Errorf("%w: message #%d: event type (routing key) longer than 255 bytes", broker.ErrInvalidMessage, i)
		}
		if opt.bcc != "" {
			pub.Headers["BCC"] = []any{opt.bcc}
		}
		out[i] = outMsg{exchange: m.Topic, key: key, pub: pub, mandatory: opt.mandatory && !p.cfg.dropsUnroutable(m.Topic)}
		if !slices.Contains(topics, m.Topic) {
			topics = append(topics, m.Topic)
		}
	}
	return out, topics, nil
}

// Close waits for the Publish calls in progress to finish (a call waiting
// for a lost connection gives up with broker.ErrClosed; one waiting for
// confirms gets them), then closes the connection. Publish after Close
// returns broker.ErrClosed. Close is idempotent.
//
// Close returns within Config.CloseTimeout plus Config.DialTimeout (the
// bound on closing the connection) whatever is in flight: when the calls
// have not finished within CloseTimeout, the messages still waiting for a
// confirm fail with broker.ErrClosed (their Publish calls return a
// *broker.PublishError matching it), the connection is closed, and Close
// returns an error saying so. Otherwise it returns nil.
func (p *Publisher) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	var err error
	if !waitTimeout(&p.calls, p.cfg.CloseTimeout) {
		p.giveUp()
		err = fmt.Errorf("rabbitbus: close: Publish calls still waiting for confirms after CloseTimeout %v; "+
			"their unconfirmed messages failed with broker.ErrClosed", p.cfg.CloseTimeout)
	}
	// Closing the connection first also ends a call blocked writing to a
	// dead socket.
	p.mgr.close()
	p.calls.Wait()
	p.giveUp()
	return err
}

// waitTimeout waits for wg for at most d, and reports whether it finished.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// nackRetry paces the re-sending of nacked messages: with backoff from
// Config.ReconnectBackoffMin to ReconnectBackoffMax, for at most
// Config.NackRetry after the first nack of the call.
type nackRetry struct {
	first   time.Time
	backoff time.Duration
}

// retry waits before the next attempt; false when the time is up (or ctx
// ended) and the nacked messages fail.
func (r *nackRetry) retry(ctx context.Context, cfg Config) bool {
	if cfg.NackRetry < 0 {
		return false
	}
	if r.first.IsZero() {
		r.first, r.backoff = time.Now(), cfg.ReconnectBackoffMin
	}
	wait := jitter(r.backoff)
	if time.Since(r.first)+wait > cfg.NackRetry {
		return false
	}
	r.backoff = min(r.backoff*2, cfg.ReconnectBackoffMax)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// waitLost returns when s's connection is known to be gone (so that the
// next current() waits for a new one), when ctx ends, or after a second at
// most: an operation that failed as if the connection were lost while it is
// not (a channel closed under it) is simply tried again.
func waitLost(ctx context.Context, s *session) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-s.lost:
	case <-ctx.Done():
	case <-t.C:
	}
}

// orContext is ctx that also ends when other does (with context.Canceled),
// its Done channel made only when first asked for: checks of Err cost
// nothing, and no goroutine or registration exists unless a wait selects
// on Done. Not safe for concurrent use; release it when done.
type orContext struct {
	context.Context
	other  context.Context
	merged context.Context
	stop   context.CancelFunc
}

func (c *orContext) Done() <-chan struct{} {
	if c.merged == nil {
		c.merged, c.stop = mergeDone(c.Context, c.other)
	}
	return c.merged.Done()
}

func (c *orContext) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if c.other.Err() != nil {
		return context.Canceled
	}
	return nil
}

func (c *orContext) release() {
	if c.stop != nil {
		c.stop()
	}
}

// mergeDone returns a context done when ctx or other is, with ctx's values.
func mergeDone(ctx, other context.Context) (context.Context, context.CancelFunc) {
	merged, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(other, cancel)
	return merged, func() { stop(); cancel() }
}

// retried tells the hooks of the messages (indexes idx of msgs) about to be
// sent again.
func (p *Publisher) retried(ctx context.Context, msgs []*broker.Message, idx []int, err error) {
	again := make([]*broker.Message, len(idx))
	for i, j := range idx {
		again[i] = msgs[j]
	}
	broker.Hooks(p.cfg.Hooks).PublishRetried(ctx, again, err)
}
