package kafkabus

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/internal/inflight"
)

// subscription is a running Subscribe: the pipeline-wrapped handler, the
// worker pool, and the lifecycle shared by group and ephemeral consumers.
// It implements broker.Consumer.
type subscription struct {
	sub     broker.Subscription // defaults applied
	cfg     Config
	log     *slog.Logger
	hooks   []broker.Hook
	handler broker.Handler

	// handlerCtx carries the Subscribe ctx's values but not its
	// cancellation: handlers keep running through a stop until the drain
	// deadline.
	handlerCtx context.Context
	// runCtx ends when the subscription must stop (Close, Subscribe's ctx,
	// the Backend's Close, a failure under OnFailureStop).
	runCtx  context.Context
	stopRun context.CancelFunc
	unwatch func() bool // stops watching Subscribe's ctx

	inFlight chan struct{} // a slot per message handed out (MaxInFlight)
	held     *inflight.Set // the same messages with their receive times, for Health
	queues   []chan []*delivery
	workers  sync.WaitGroup
	seed     maphash.Seed

	// stuck is set when a claim let its partition go while a handler that
	// ignores its ctx was still running: the subscription then stops
	// without waiting for that worker.
	stuck atomic.Bool

	mu        sync.Mutex
	err       error
	handedOut map[int32]int64 // partition -> last offset handed out by an ended claim
	done      chan struct{}
}

func newSubscription(ctx context.Context, sub broker.Subscription, cfg Config, h broker.Handler, deadLetters broker.Publisher) *subscription {
	sub = sub.WithDefaults()
	runCtx, stop := context.WithCancel(context.Background())
	log := cfg.Logger.With("topic", sub.Topic, "group", sub.Group)
	s := &subscription{
		sub: sub, cfg: cfg, log: log, hooks: cfg.Hooks,
		handler: broker.Pipeline{
			Subscription:      sub,
			DeadLetters:       deadLetters,
			DeadLetterMaxSize: cfg.MaxMessageBytes + broker.DeadLetterOverhead,
			Middleware:        cfg.Middleware,
			Hooks:             cfg.Hooks,
			Logger:            log,
		}.Wrap(h),
		handlerCtx: context.WithoutCancel(ctx),
		runCtx:     runCtx,
		stopRun:    stop,
		inFlight:   make(chan struct{}, sub.MaxInFlight),
		held:       inflight.New(sub.MaxInFlight),
		queues:     make([]chan []*delivery, sub.Concurrency),
		seed:       maphash.MakeSeed(),
		handedOut:  make(map[int32]int64),
		done:       make(chan struct{}),
	}
	for i := range s.queues {
		s.queues[i] = make(chan []*delivery, sub.MaxInFlight)
		s.workers.Add(1)
		go s.worker(s.queues[i])
	}
	// Cancelling Subscribe's ctx stops the subscription like Close.
	s.unwatch = context.AfterFunc(ctx, stop)
	return s
}

// drainTimeout is how long a claim waits for its in-flight handlers: the
// subscription's DrainTimeout, but within the group's rebalance timeout
// when partitions are revoked by a rebalance (a member that overruns it is
// removed from the group).
func (s *subscription) drainTimeout() time.Duration {
	d := s.sub.DrainTimeout
	if s.runCtx.Err() == nil && !s.sub.Ephemeral {
		d = min(d, s.cfg.RebalanceTimeout*3/4)
	}
	return d
}

// fail records err as the reason the subscription stops, and stops it.
func (s *subscription) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.log.Error("kafkabus: subscription stopping after a handler failure", "error", err)
	s.stopRun()
}

// finish stops the workers and marks the subscription done. It runs once,
// after every claim has returned.
func (s *subscription) finish(err error) {
	for _, q := range s.queues {
		close(q)
	}
	if !s.stuck.Load() {
		s.workers.Wait()
	}
	s.mu.Lock()
	if s.err == nil && err != nil {
		s.err = err
	}
	s.mu.Unlock()
	s.stopRun()
	s.unwatch()
	close(s.done)
}

func (s *subscription) handedOutBefore(partition int32) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if off, ok := s.handedOut[partition]; ok {
		return off
	}
	return -1
}

func (s *subscription) recordHandedOut(partition int32, last int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.handedOut[partition]; last >= 0 && (!ok || last > cur) {
		s.handedOut[partition] = last
	}
}

// Close implements broker.Consumer.
func (s *subscription) Close() error {
	s.stopRun()
	<-s.done
	return s.Err()
}

// Done implements broker.Consumer.
func (s *subscription) Done() <-chan struct{} { return s.done }

// Err implements broker.Consumer.
func (s *subscription) Err() error {
	select {
	case <-s.done:
	default:
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// clientError reports an error of the Kafka client running in the
// background to the logger and hooks.
func (s *subscription) clientError(topic string, partition int32, err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	s.log.Warn("kafkabus: consumer error", "partition", partition, "error", err)
	notifyClientError(s.hooks, s.sub.Group, topic, partition, err)
}
