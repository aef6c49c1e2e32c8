package otelevents_test

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

var errBoom = errors.New("boom")

func failing(err error) broker.Handler {
	return func(context.Context, *broker.Message) error { return err }
}

func fast(attempts int) broker.RetryPolicy {
	return broker.RetryPolicy{MaxAttempts: attempts, InitialBackoff: time.Microsecond, MaxBackoff: time.Microsecond}
}

// newMessage returns a consumed-looking message of job-lifecycle, group g.
func newMessage() *broker.Message {
	return &broker.Message{
		Topic: "job-lifecycle", Key: "job-1", Body: []byte("body"),
		Headers: broker.Headers{
			{Key: broker.HeaderID, Value: "0190f1c2-0000-7000-8000-000000000001"},
			{Key: broker.HeaderType, Value: "job.queued"},
		},
		Delivery: broker.Delivery{Partition: 3, Offset: 42, Group: "g", ReceivedAt: time.Unix(1, 0)},
	}
}

// capturePublisher keeps what it is given.
type capturePublisher struct {
	mu   sync.Mutex
	msgs []*broker.Message
}

func (p *capturePublisher) Publish(_ context.Context, msgs ...*broker.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		p.msgs = append(p.msgs, m.Clone())
	}
	return nil
}

func (p *capturePublisher) Close() error { return nil }

func (p *capturePublisher) Messages() []*broker.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*broker.Message(nil), p.msgs...)
}

// pipeline returns a Pipeline over sub (topic job-lifecycle, group g by
// default) with fast retries and a capturing dead-letter publisher.
func pipeline(sub broker.Subscription) (broker.Pipeline, *capturePublisher) {
	if sub.Topic == "" {
		sub.Topic, sub.Group = "job-lifecycle", "g"
	}
	if sub.Retry.InitialBackoff == 0 {
		sub.Retry.InitialBackoff, sub.Retry.MaxBackoff = time.Microsecond, time.Microsecond
	}
	pub := &capturePublisher{}
	return broker.Pipeline{Subscription: sub, DeadLetters: pub}, pub
}
