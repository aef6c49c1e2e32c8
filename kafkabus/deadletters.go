package kafkabus

import (
	"context"
	"fmt"
	"sync"

	"github.com/cosmic-horizons/events/broker"
)

// DeadLetterMaxMessageBytes is the record size a dead-letter topic must
// take for a backend with MaxMessageBytes n: the largest record Publish
// accepts, plus what the dead-letter headers add, plus room for the record
// batch header. Admin.EnsureTopics creates "<topic>.dlq" topics with this
// max.message.bytes.
func DeadLetterMaxMessageBytes(n int) int { return n + broker.DeadLetterOverhead + 1024 }

// deadLetters is the publisher of a Backend's dead letters: an idempotent
// producer of its own, connected on first use, that takes records up to
// MaxMessageBytes + broker.DeadLetterOverhead, so that the dead letter of
// any message Publish accepted fits. (The main producer cannot simply take
// larger records: its batches to ordinary topics would outgrow their
// max.message.bytes.) The Backend closes it after its subscriptions.
type deadLetters struct {
	cfg Config

	mu     sync.Mutex
	pub    *publisher
	closed bool
}

func newDeadLetters(cfg Config) *deadLetters {
	cfg.MaxMessageBytes += broker.DeadLetterOverhead
	return &deadLetters{cfg: cfg}
}

// Publish implements broker.Publisher. A failure to connect is returned as
// is (transient: the dead-letter step retries it).
func (d *deadLetters) Publish(ctx context.Context, msgs ...*broker.Message) error {
	p, err := d.get()
	if err != nil {
		return err
	}
	return p.Publish(ctx, msgs...)
}

// Close implements broker.Publisher; it does nothing (see close).
func (d *deadLetters) Close() error { return nil }

func (d *deadLetters) get() (*publisher, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, broker.ErrClosed
	}
	if d.pub == nil {
		sc := d.cfg.sarama()
		sc.ClientID = d.cfg.ClientID + "-dlq"
		p, err := newPublisher(d.cfg, sc)
		if err != nil {
			return nil, fmt.Errorf("kafkabus: dead-letter producer: %w", err)
		}
		d.pub = p
	}
	return d.pub, nil
}

// close stops the producer, once the subscriptions have stopped.
func (d *deadLetters) close() error {
	d.mu.Lock()
	d.closed = true
	p := d.pub
	d.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Close()
}
