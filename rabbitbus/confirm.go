package rabbitbus

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/cosmic-horizons/events/broker"
)

// States of one message of a Publish call.
const (
	stPending   uint8 = iota // to be sent (first time, or again after a loss)
	stInflight               // written, waiting for its confirm
	stConfirmed              // acked by the broker and routed
	stNacked                 // nacked: sent again after a pause, for Config.NackRetry
	stFailed                 // returned or refused: reported, never re-sent
)

// outMsg is one message of a Publish call, ready for the wire.
type outMsg struct {
	exchange  string
	key       string
	mandatory bool
	pub       amqp.Publishing
	sent      bool // written at least once: a re-send carries headerResent
}

// publishCall tracks the messages of one Publish call. Confirms settle its
// messages from the channel's dispatcher goroutine.
type publishCall struct {
	mu       sync.Mutex
	state    []uint8
	errs     []error
	inflight int
	wake     chan struct{}
}

func newCall(n int) *publishCall {
	return &publishCall{state: make([]uint8, n), errs: make([]error, n), wake: make(chan struct{}, 1)}
}

func (c *publishCall) setInflight(i int) {
	c.mu.Lock()
	c.state[i] = stInflight
	c.inflight++
	c.mu.Unlock()
}

// settle ends message i's wait: confirmed, failed, or back to pending (lost
// before its confirm). It is a no-op for a message not in flight.
func (c *publishCall) settle(i int, st uint8, err error) {
	c.mu.Lock()
	if c.state[i] != stInflight {
		c.mu.Unlock()
		return
	}
	c.state[i], c.errs[i] = st, err
	c.inflight--
	n := c.inflight
	c.mu.Unlock()
	if n == 0 {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// wait returns when no message of the call is in flight, or ctx ends
// (ctx's error), or stop is closed (context.Canceled).
func (c *publishCall) wait(ctx context.Context, stop <-chan struct{}) error {
	for {
		c.mu.Lock()
		n := c.inflight
		c.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-c.wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return context.Canceled
		}
	}
}

// pending returns the indexes of the messages still to be sent, and
// whether any of them was lost in flight (written, then the channel died).
func (c *publishCall) pending(out []outMsg) (idx []int, lost bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, st := range c.state {
		if st == stPending {
			idx = append(idx, i)
			lost = lost || out[i].sent
		}
	}
	return idx, lost
}

// hasNacked reports whether a message of the call was nacked.
func (c *publishCall) hasNacked() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.state, stNacked)
}

// requeueNacked makes the nacked messages pending again and reports how
// many there were.
func (c *publishCall) requeueNacked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for i, st := range c.state {
		if st == stNacked {
			c.state[i] = stPending
			n++
		}
	}
	return n
}

// failAll fails every message not confirmed or failed yet with err.
func (c *publishCall) failAll(err error) {
	c.mu.Lock()
	for i, st := range c.state {
		if st == stPending || st == stInflight || st == stNacked {
			c.state[i], c.errs[i] = stFailed, err
		}
	}
	c.inflight = 0
	c.mu.Unlock()
}

// result returns nil when every message was confirmed, else a
// *broker.PublishError naming the others.
func (c *publishCall) result(msgs []*broker.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var failed []broker.FailedMessage
	for i, st := range c.state {
		if st != stConfirmed {
			err := c.errs[i]
			if err == nil {
				err = errConnLost
			}
			failed = append(failed, broker.FailedMessage{Index: i, Message: msgs[i], Err: err})
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &broker.PublishError{Failed: failed}
}

// pendingPub is a written message waiting for its confirm.
type pendingPub struct {
	call     *publishCall
	i        int
	returned bool // a basic.return came for it: it reached no queue
}

// pubChannel is one confirm-mode channel. Publishes on it are serialised
// (mu), so the delivery tag of each is known: the channel's count of
// publishes. A dispatcher goroutine receives the broker's returns and
// confirms. Both notification channels are unbuffered on purpose: amqp091's
// reader goroutine hands over a basic.return before it reads the
// basic.ack of the same message, and the single dispatcher finishes with
// the return before it can take the ack, so a returned message is never
// reported as delivered.
type pubChannel struct {
	s      *session
	ch     *amqp.Channel
	window chan struct{} // one token per message in flight

	mu  sync.Mutex // held while publishing
	seq uint64     // delivery tag of the last publish

	pmu     sync.Mutex
	pending map[uint64]*pendingPub // nil once the channel is dead

	dead chan struct{} // closed when the channel is closed
	err  error         // why; written before dead is closed

	// retired is set at the first nack: RabbitMQ 3.10 keeps nacking every
	// publish of a channel that was refused by a quorum queue whose leader
	// died, even after a new leader is elected (measured here; fresh
	// channels are fine). The pool stops handing it out, and it is closed
	// once nothing is in flight on it.
	retired   atomic.Bool
	closeOnce sync.Once
}

func openPubChannel(s *session, window int) (*pubChannel, error) {
	ch, err := s.channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		if isConnLoss(err) {
			return nil, fmt.Errorf("%w: confirm.select: %w", errConnLost, err)
		}
		return nil, fmt.Errorf("rabbitbus: confirm.select: %w", err)
	}
	pc := &pubChannel{
		s:       s,
		ch:      ch,
		window:  make(chan struct{}, window),
		pending: make(map[uint64]*pendingPub, window),
		dead:    make(chan struct{}),
	}
	returns := ch.NotifyReturn(make(chan amqp.Return))
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation))
	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	go pc.dispatch(returns, confirms, closes)
	return pc, nil
}

// cause returns why the channel died, or nil while it lives.
func (pc *pubChannel) cause() error {
	pc.pmu.Lock()
	defer pc.pmu.Unlock()
	return pc.err
}

func (pc *pubChannel) isDead() bool {
	select {
	case <-pc.dead:
		return true
	default:
		return false
	}
}

func (pc *pubChannel) dispatch(returns <-chan amqp.Return, confirms <-chan amqp.Confirmation, closes <-chan *amqp.Error) {
	for confirms != nil {
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			pc.markReturned(r)
		case c, ok := <-confirms:
			if !ok {
				confirms = nil
				continue
			}
			pc.confirm(c.DeliveryTag, c.Ack)
		}
	}
	// amqp091 sends the close reason before it closes the listeners.
	var cause error = errConnLost
	select {
	case e, ok := <-closes:
		if ok && e != nil {
			cause = e
		}
	default:
	}
	pc.pmu.Lock()
	pending := pc.pending
	pc.pending = nil
	pc.err = cause
	pc.pmu.Unlock()
	for _, p := range pending {
		p.call.settle(p.i, stPending, cause)
	}
	close(pc.dead)
}

func (pc *pubChannel) markReturned(r amqp.Return) {
	tag, ok := r.Headers[headerSeq].(int64)
	if !ok {
		return
	}
	pc.pmu.Lock()
	if p := pc.pending[uint64(tag)]; p != nil {
		p.returned = true
	}
	pc.pmu.Unlock()
}

func (pc *pubChannel) confirm(tag uint64, ack bool) {
	pc.pmu.Lock()
	p := pc.pending[tag]
	delete(pc.pending, tag)
	pc.pmu.Unlock()
	if p == nil {
		return
	}
	<-pc.window
	if !ack {
		pc.retired.Store(true)
	}
	if pc.retired.Load() {
		pc.pmu.Lock()
		idle := len(pc.pending) == 0
		pc.pmu.Unlock()
		if idle {
			// Not from this goroutine: the close waits for the reader
			// goroutine, which may be waiting to hand us a notification.
			pc.closeOnce.Do(func() { go func() { _ = pc.ch.Close() }() })
		}
	}
	switch {
	case !ack:
		p.call.settle(p.i, stNacked, ErrNacked)
	case p.returned:
		p.call.settle(p.i, stFailed, broker.ErrUnroutable)
	default:
		p.call.settle(p.i, stConfirmed, nil)
	}
}

// send writes the messages idx of call, in order. It stops at the first
// failure: the channel died (the rest stay pending, to be sent again), or
// ctx ended while waiting for room in the window (the caller gives up).
func (pc *pubChannel) send(ctx context.Context, call *publishCall, out []outMsg, idx []int) error {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	for _, i := range idx {
		select {
		case pc.window <- struct{}{}:
		default:
			select {
			case pc.window <- struct{}{}:
			case <-pc.dead:
				return fmt.Errorf("%w: %w", errConnLost, pc.err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		tag := pc.seq + 1
		o := &out[i]
		o.pub.Headers[headerSeq] = int64(tag)
		if o.sent {
			o.pub.Headers[headerResent] = "true"
		}
		call.setInflight(i)
		pc.pmu.Lock()
		if pc.pending == nil {
			pc.pmu.Unlock()
			call.settle(i, stPending, pc.err)
			return fmt.Errorf("%w: %w", errConnLost, pc.err)
		}
		pc.pending[tag] = &pendingPub{call: call, i: i}
		pc.pmu.Unlock()
		o.sent = true
		if _, err := pc.ch.PublishWithDeferredConfirm(o.exchange, o.key, o.mandatory, false, o.pub); err != nil {
			pc.pmu.Lock()
			if pc.pending != nil {
				delete(pc.pending, tag)
				<-pc.window
			}
			pc.pmu.Unlock()
			call.settle(i, stPending, err)
			return fmt.Errorf("%w: publish: %w", errConnLost, err)
		}
		pc.seq = tag
	}
	return nil
}

// channelPool holds Config.PublishChannels confirm channels of the current
// connection, opened on first use and replaced when they die.
type channelPool struct {
	size, window int

	mu    sync.Mutex
	gen   uint64
	chans []*pubChannel
	next  uint64
}

// get returns a live channel of s, round robin.
func (pl *channelPool) get(s *session) (*pubChannel, error) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	switch {
	case s.gen > pl.gen || pl.chans == nil:
		pl.gen, pl.chans = s.gen, make([]*pubChannel, pl.size)
	case s.gen < pl.gen:
		return nil, fmt.Errorf("%w: stale connection", errConnLost)
	}
	pl.next++
	i := int(pl.next % uint64(pl.size))
	if pc := pl.chans[i]; pc != nil && !pc.isDead() && !pc.retired.Load() {
		return pc, nil
	}
	pc, err := openPubChannel(s, pl.window)
	if err != nil {
		return nil, err
	}
	pl.chans[i] = pc
	return pc, nil
}
