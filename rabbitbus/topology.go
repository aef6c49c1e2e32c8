package rabbitbus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/cosmic-horizons/events/broker"
)

// Topology. For a topic T and a durable group G with queue Q (by default
// "T.G", see Config.QueueName):
//
//	exchange T             topic, durable; alternate-exchange T.unmatched
//	exchange T.unmatched   fanout, durable, internal: what no binding of T took
//	exchange T.dlq         the dead-letter topic of T (an ordinary topic: same shape)
//	queue    Q             quorum (Config.QueueType), bound to T by each of the
//	                       subscription's EventTypes (default "#");
//	                       x-dead-letter-exchange T.dlq, x-dead-letter-routing-key
//	                       "rabbitbus.dlq.Q"
//	queue    Q.dlq         same type, bound to T.dlq by "rabbitbus.dlq.Q": the
//	                       group's own dead letters
//	queue    Q.unmatched   only for a filtered group: classic, x-max-length 0,
//	                       bound to T.unmatched, so that an event type no group
//	                       wants is accepted and dropped rather than returned
//	                       as unroutable
//
// An ephemeral subscription gets an exclusive, auto-delete classic queue
// "T.<group or live>.eph-<random>" (and its own sink when filtered), gone
// with its connection.
const (
	suffixDLQ       = broker.DeadLetterSuffix
	suffixUnmatched = ".unmatched"
	dlqKeyPrefix    = "rabbitbus.dlq."
	// maxQueueName leaves room for the suffixes and the dead-letter routing
	// key below AMQP's 255-byte limit on names.
	maxQueueName = 240
	// maxTopicName leaves room for ".dlq.unmatched".
	maxTopicName = 255 - len(suffixDLQ) - len(suffixUnmatched)
	// shortenAbove is where DefaultQueueName starts hashing.
	shortenAbove = 230
)

// DefaultQueueName returns the queue of group on topic: "<topic>.<group>",
// or, when that is longer than 230 bytes, its first 213 bytes followed by
// "~" and 16 hex digits of its SHA-256, so that it stays unique.
func DefaultQueueName(topic, group string) string {
	name := topic + "." + group
	if len(name) <= shortenAbove {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:shortenAbove-17] + "~" + hex.EncodeToString(sum[:8])
}

// alternateExchange is the exchange that takes what no binding of topic
// took.
func alternateExchange(topic string) string { return topic + suffixUnmatched }

// dlqKey is the routing key that addresses queue's own dead-letter queue
// on the dead-letter exchange.
func dlqKey(queue string) string { return dlqKeyPrefix + queue }

// checkTopic reports a topic name rabbitbus cannot use as an exchange.
func checkTopic(topic string) error {
	switch {
	case strings.TrimSpace(topic) == "":
		return errors.New("empty topic")
	case len(topic) > maxTopicName:
		return fmt.Errorf("topic %q… is longer than %d bytes", topic[:32], maxTopicName)
	case strings.HasPrefix(topic, "amq."):
		return fmt.Errorf("topic %q: the amq. prefix is reserved by RabbitMQ", topic)
	}
	return nil
}

// checkQueue reports a queue name rabbitbus cannot use.
func checkQueue(queue string) error {
	switch {
	case strings.TrimSpace(queue) == "":
		return errors.New("empty queue name")
	case len(queue) > maxQueueName:
		return fmt.Errorf("queue name %q… is longer than %d bytes", queue[:32], maxQueueName)
	case strings.HasPrefix(queue, "amq."):
		return fmt.Errorf("queue %q: the amq. prefix is reserved by RabbitMQ", queue)
	}
	for _, w := range strings.Split(queue, ".") {
		if w == "*" || w == "#" {
			return fmt.Errorf("queue %q: a dot-separated word may not be * or #", queue)
		}
	}
	return nil
}

// patterns returns the binding keys of sub and whether they filter.
func patterns(sub *broker.Subscription) (keys []string, filtered bool) {
	if len(sub.EventTypes) == 0 || slices.Contains(sub.EventTypes, "#") {
		return []string{"#"}, false
	}
	keys = slices.Clone(sub.EventTypes)
	slices.Sort(keys)
	return slices.Compact(keys), true
}

// declareExchange declares topic's exchange and its alternate exchange.
func declareExchange(ch *amqp.Channel, topic string) error {
	ae := alternateExchange(topic)
	if err := ch.ExchangeDeclare(ae, amqp.ExchangeFanout, true, false, true, false, nil); err != nil {
		return topologyError("exchange", ae, err)
	}
	if err := ch.ExchangeDeclare(topic, amqp.ExchangeTopic, true, false, false, false, amqp.Table{"alternate-exchange": ae}); err != nil {
		return topologyError("exchange", topic, err)
	}
	return nil
}

// groupTopology is what a subscription needs declared.
type groupTopology struct {
	topic     string
	queue     string
	ephemeral bool
	keys      []string
	filtered  bool
}

// queueArgs returns the arguments of the group's main queue.
func (g *groupTopology) queueArgs(cfg *Config) amqp.Table {
	if g.ephemeral {
		return amqp.Table{"x-queue-type": QueueClassic}
	}
	args := amqp.Table{
		"x-queue-type":              cfg.QueueType,
		"x-dead-letter-exchange":    broker.DeadLetterTopic(g.topic),
		"x-dead-letter-routing-key": dlqKey(g.queue),
	}
	if cfg.DeliveryLimit > 0 {
		args["x-delivery-limit"] = int64(cfg.DeliveryLimit)
	}
	if cfg.SingleActiveConsumer {
		args["x-single-active-consumer"] = true
	}
	return args
}

// declare declares the whole topology of g on ch, idempotently.
func (g *groupTopology) declare(ch *amqp.Channel, cfg *Config) error {
	if err := declareExchange(ch, g.topic); err != nil {
		return err
	}
	durable, autoDelete, exclusive := !g.ephemeral, g.ephemeral, g.ephemeral
	if !g.ephemeral {
		dlx := broker.DeadLetterTopic(g.topic)
		if err := declareExchange(ch, dlx); err != nil {
			return err
		}
		dlq := g.queue + suffixDLQ
		if _, err := ch.QueueDeclare(dlq, true, false, false, false, amqp.Table{"x-queue-type": cfg.QueueType}); err != nil {
			return topologyError("queue", dlq, err)
		}
		if err := ch.QueueBind(dlq, dlqKey(g.queue), dlx, false, nil); err != nil {
			return topologyError("binding", dlq, err)
		}
	}
	if _, err := ch.QueueDeclare(g.queue, durable, autoDelete, exclusive, false, g.queueArgs(cfg)); err != nil {
		return topologyError("queue", g.queue, err)
	}
	for _, k := range g.keys {
		if err := ch.QueueBind(g.queue, k, g.topic, false, nil); err != nil {
			return topologyError("binding", g.queue, err)
		}
	}
	if g.filtered {
		sink := g.queue + suffixUnmatched
		args := amqp.Table{"x-queue-type": QueueClassic, "x-max-length": int64(0)}
		if _, err := ch.QueueDeclare(sink, durable, autoDelete, exclusive, false, args); err != nil {
			return topologyError("queue", sink, err)
		}
		if err := ch.QueueBind(sink, "", alternateExchange(g.topic), false, nil); err != nil {
			return topologyError("binding", sink, err)
		}
	}
	return nil
}

// withChannel runs fn on a fresh channel of m's connection and closes the
// channel. It returns when fn does or ctx ends (amqp091 calls cannot be
// interrupted; an abandoned fn finishes in the background).
func withChannel(ctx context.Context, m *connManager, fn func(*amqp.Channel) error) error {
	s, err := m.current(ctx)
	if err != nil {
		return err
	}
	ch, err := s.channel()
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		err := fn(ch)
		_ = ch.Close()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// exchangeCache remembers the exchanges declared on the current connection,
// so that Publish declares each topic's exchange once per connection.
type exchangeCache struct {
	mu    sync.RWMutex
	gen   uint64
	known map[string]bool
	// ch is the channel declarations run on; reopened after an error
	// (a failed declaration closes its channel).
	ch *amqp.Channel
}

// ensure declares the exchanges of topics not yet declared on s.
func (c *exchangeCache) ensure(s *session, topics []string) error {
	c.mu.RLock()
	all := c.gen == s.gen && c.known != nil
	for _, t := range topics {
		if !all {
			break
		}
		all = c.known[t]
	}
	c.mu.RUnlock()
	if all {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != s.gen || c.known == nil {
		c.gen, c.known, c.ch = s.gen, make(map[string]bool), nil
	}
	for _, t := range topics {
		if c.known[t] {
			continue
		}
		if c.ch == nil || c.ch.IsClosed() {
			ch, err := s.channel()
			if err != nil {
				return err
			}
			c.ch = ch
		}
		if err := declareExchange(c.ch, t); err != nil {
			return err
		}
		c.known[t] = true
	}
	return nil
}

// forget drops what the cache knows (an exchange was deleted under it).
func (c *exchangeCache) forget() {
	c.mu.Lock()
	c.known = nil
	c.mu.Unlock()
}
