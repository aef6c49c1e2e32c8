package broker

import (
	"context"
)

// Publisher sends messages to a broker.
//
// Publish must be safe for concurrent use by many goroutines; backends batch
// concurrent calls internally, so throughput comes from concurrency, not from
// giving up confirmation.
type Publisher interface {
	// Publish sends msgs and returns only when the broker has confirmed
	// every one of them (Kafka: acks=all on the idempotent producer;
	// RabbitMQ: publisher confirms with mandatory routing; memory: appended
	// to the partition log). A nil error means every message is durable in
	// the backend's sense. On failure the error is a *PublishError naming
	// each failed message (the others were confirmed), or a sentinel such
	// as ErrClosed when nothing was sent. Messages with equal keys passed to
	// one call keep their order. When ctx ends before confirmation, Publish
	// returns ctx's error; the messages may or may not have been delivered
	// (at-least-once: publish them again). Publish does not modify msgs.
	Publish(ctx context.Context, msgs ...*Message) error
	// Close waits for in-flight publishes to finish, then releases
	// resources. Publish after Close returns ErrClosed. Close is idempotent.
	Close() error
}

// AsyncPublisher is a Publisher that can also hand messages over without
// waiting for their confirmation, so that one caller keeps many messages in
// flight. memory, kafkabus and rabbitbus backends implement it.
type AsyncPublisher interface {
	Publisher
	// PublishAsync checks msgs as Publish does and hands them to the
	// backend, then returns; done is called exactly once, later, with what
	// Publish would have returned (nil when every message was confirmed,
	// else a *PublishError naming each failed one, or ctx's error when ctx
	// ended before the confirmations: the messages may or may not have been
	// delivered). When PublishAsync returns an error instead (an invalid or
	// oversized message, ErrClosed, ctx ended during the hand-off), done is
	// never called and nothing, or only part of msgs, was handed over
	// (at-least-once: publish them again).
	//
	// Hand-off keeps argument order, and on backends that say so (memory,
	// kafkabus) order across calls made one after another: messages with
	// equal keys are delivered in the order they were handed over.
	// PublishAsync may block while the backend's buffers are full, bounded
	// by ctx. done may run on any goroutine, possibly before PublishAsync
	// returns; it must not block. Hooks see each call when it completes.
	PublishAsync(ctx context.Context, done func(error), msgs ...*Message) error
}

// Handler handles one message. Returning nil acknowledges it (commits its
// offset once every earlier message of the partition is done, or acks it on
// AMQP). A returned error is retried in place, then dead-lettered, as the
// Subscription says. A Handler must honour ctx: it is cancelled when the
// handler timeout expires or the drain bound at shutdown is reached.
//
// The message and its Headers belong to the handler for the duration of the
// call; keep m.Clone() to retain it.
type Handler func(ctx context.Context, m *Message) error

// Middleware wraps a Handler with a policy (retries, dead letter, tracing…).
type Middleware func(Handler) Handler

// Chain applies middleware to h so that the first listed runs first
// (outermost).
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// Subscriber delivers messages to handlers.
//
// Subscribe and Close are safe for concurrent use.
type Subscriber interface {
	// Subscribe starts consuming sub.Topic for sub.Group and returns once
	// consumption is set up (the group joined, the queue declared and
	// consumed), so a message published after Subscribe returns reaches the
	// subscription. Configuration problems, an unreachable broker or a
	// topology mismatch are returned here.
	//
	// The subscription runs until ctx is cancelled, the returned Consumer is
	// closed, or the Subscriber is closed; in each case it stops fetching,
	// lets in-flight handlers finish (bounded by Subscription.DrainTimeout),
	// commits what finished, and stops. h is called from as many goroutines
	// as Subscription.Concurrency, never concurrently for one key.
	Subscribe(ctx context.Context, sub Subscription, h Handler) (Consumer, error)
	// Close stops every subscription as described above, then releases
	// resources. Subscribe after Close returns ErrClosed. Close is
	// idempotent.
	Close() error
}

// Consumer is a running subscription.
type Consumer interface {
	// Close stops the subscription: no new messages are handed out,
	// in-flight handlers finish (bounded by DrainTimeout; then their ctx is
	// cancelled), finished work is committed, and Close returns. It returns
	// the error that stopped the consumer, if any. Close is idempotent.
	Close() error
	// Done is closed when the subscription has fully stopped, for whatever
	// reason (ctx cancelled, Close, a fatal error).
	Done() <-chan struct{}
	// Err returns the error that stopped the subscription: nil while it
	// runs and after a clean stop; a *HandlerError when a handler failed
	// with OnFailure set to OnFailureStop; a backend error otherwise.
	Err() error
}

// Backend is a Publisher and Subscriber in one, as every backend of this
// module is.
type Backend interface {
	Publisher
	Subscriber
}
