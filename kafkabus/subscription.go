package kafkabus

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/dispatch"
)

// subscription is a running Subscribe: the partitions the group (or the
// ephemeral partition consumers) hand it, run on a dispatch.Runtime, which
// owns the workers, the in-flight bound, the commit watermark and the
// drain. It implements broker.Consumer through the runtime.
type subscription struct {
	*dispatch.Runtime
	sub   broker.Subscription // defaults applied
	cfg   Config
	log   *slog.Logger
	hooks []broker.Hook

	// runCtx ends when the subscription must stop (the runtime's
	// Stopping: Close, Subscribe's ctx, the Backend's Close, a failure
	// under OnFailureStop).
	runCtx  context.Context
	stopRun context.CancelFunc

	mu        sync.Mutex
	handedOut map[int32]int64 // partition -> last offset handed out by an ended claim
}

func newSubscription(ctx context.Context, sub broker.Subscription, cfg Config, h broker.Handler, deadLetters broker.Publisher) (*subscription, error) {
	log := cfg.Logger.With("topic", sub.Topic, "group", sub.Group)
	rt, err := dispatch.New(ctx, dispatch.Config{
		Subscription: sub,
		Handler:      h,
		Pipeline: broker.Pipeline{
			DeadLetters:       deadLetters,
			DeadLetterMaxSize: cfg.MaxMessageBytes + broker.DeadLetterOverhead,
			Hooks:             cfg.Hooks,
			Logger:            log,
		},
	})
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	s := &subscription{
		Runtime: rt, sub: rt.Subscription(), cfg: cfg, log: log, hooks: cfg.Hooks,
		runCtx: runCtx, stopRun: stop, handedOut: make(map[int32]int64),
	}
	go func() {
		select {
		case <-rt.Stopping():
			stop()
		case <-runCtx.Done():
		}
	}()
	return s, nil
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

// finish ends the subscription once every claim has returned.
func (s *subscription) finish(err error) {
	s.stopRun()
	s.Finish(err)
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

// clientError reports an error of the Kafka client running in the
// background to the logger and hooks.
func (s *subscription) clientError(topic string, partition int32, err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	s.log.Warn("kafkabus: consumer error", "partition", partition, "error", err)
	notifyClientError(s.hooks, s.sub.Group, topic, partition, err)
}
