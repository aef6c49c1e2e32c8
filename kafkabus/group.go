package kafkabus

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/IBM/sarama"
)

// readySignal reports the outcome of a subscription's set-up once: nil when
// consumption started, or the error that prevented it.
type readySignal struct {
	once  sync.Once
	fired atomic.Bool
	ch    chan error
}

func newReadySignal() *readySignal { return &readySignal{ch: make(chan error, 1)} }

func (r *readySignal) fire(err error) {
	r.once.Do(func() {
		r.fired.Store(true)
		r.ch <- err
	})
}

// groupHandler is the sarama.ConsumerGroupHandler of a group subscription.
// Each ConsumeClaim runs one claim: it hands the partition's messages to
// the subscription's workers and, when the partition is revoked (the
// session ends) or the subscription stops, drains and returns. sarama then
// commits the offsets marked as messages finished.
type groupHandler struct {
	s       *subscription
	ready   *readySignal
	pending atomic.Int32 // claims of the first session not yet started
}

// Setup runs when the member got its assignment, before the claims start.
func (h *groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	parts := sess.Claims()[h.s.sub.Topic]
	h.s.log.Info("kafkabus: partitions assigned", "generation", sess.GenerationID(),
		"member", sess.MemberID(), "partitions", parts)
	notifyRebalance(h.s.hooks, h.s.sub.Group, h.s.sub.Topic, sess.GenerationID(), parts)
	if !h.ready.fired.Load() {
		h.pending.Store(int32(len(parts)))
		if len(parts) == 0 {
			h.ready.fire(nil)
		}
	}
	return nil
}

// ConsumeClaim consumes one partition until it is revoked. By the time it
// runs, sarama has resolved the partition's start offset, so once every
// claim of the first session has started, Subscribe can return.
func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, cl sarama.ConsumerGroupClaim) error {
	topic, partition := cl.Topic(), cl.Partition()
	c := h.s.newClaim(topic, partition, func(off int64) { sess.MarkOffset(topic, partition, off, "") })
	if !h.ready.fired.Load() && h.pending.Add(-1) == 0 {
		h.ready.fire(nil)
	}
	c.run(sess.Context().Done(), cl.Messages())
	return nil
}

// Cleanup runs once every claim of the session has returned, before sarama
// commits the marked offsets.
func (h *groupHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	h.ready.fire(nil)
	h.s.log.Info("kafkabus: partitions released", "generation", sess.GenerationID(), "member", sess.MemberID())
	return nil
}

// runGroup is the life of a group subscription: one Consume call per
// session (a rebalance ends a session), until the subscription stops.
func (s *subscription) runGroup(cg sarama.ConsumerGroup, ready *readySignal) {
	h := &groupHandler{s: s, ready: ready}
	errsDone := make(chan struct{})
	go func() {
		defer close(errsDone)
		for err := range cg.Errors() {
			topic, partition := s.sub.Topic, int32(-1)
			var ce *sarama.ConsumerError
			if errors.As(err, &ce) {
				topic, partition = ce.Topic, ce.Partition
			}
			s.clientError(topic, partition, err)
		}
	}()
	var stopErr error
	backoff := s.cfg.RetryBackoff
	for s.runCtx.Err() == nil {
		err := cg.Consume(s.runCtx, []string{s.sub.Topic}, h)
		if s.runCtx.Err() != nil {
			break
		}
		if err == nil {
			backoff = s.cfg.RetryBackoff
			continue // the session ended with a rebalance: join the next one
		}
		if !ready.fired.Load() && !transientJoinError(err) {
			stopErr = err
			ready.fire(err)
			break
		}
		if errors.Is(err, sarama.ErrClosedConsumerGroup) {
			stopErr = err
			break
		}
		s.clientError(s.sub.Topic, -1, err)
		t := time.NewTimer(backoff)
		select {
		case <-s.runCtx.Done():
		case <-t.C:
		}
		t.Stop()
		backoff = min(2*backoff, 10*time.Second)
	}
	if err := cg.Close(); err != nil {
		s.clientError(s.sub.Topic, -1, err)
	}
	<-errsDone
	s.finish(stopErr)
}

// transientJoinError reports whether err, returned by a subscription's first
// Consume, is worth joining again rather than failing Subscribe: a broken or
// timed-out connection (sarama returns those at once), or a coordinator
// that is moving, loading or rebalancing past sarama's own retries. Other
// errors (an unknown topic, authorization, an invalid session timeout) are
// the caller's to fix and fail Subscribe. Transient ones are reported
// through the logger and hooks and retried with backoff until Subscribe's
// ctx ends.
func transientJoinError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, target := range []error{
		io.EOF, io.ErrUnexpectedEOF, syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.EPIPE,
		sarama.ErrOutOfBrokers, sarama.ErrNotConnected,
		sarama.ErrNotCoordinatorForConsumer, sarama.ErrConsumerCoordinatorNotAvailable,
		sarama.ErrRebalanceInProgress, sarama.ErrOffsetsLoadInProgress, sarama.ErrRequestTimedOut,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
