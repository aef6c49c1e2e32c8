package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	events "github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/internal/ctxcall"
	"github.com/cosmic-horizons/events/rabbitbus"
)

// rabbitBackend talks AMQP 0-9-1 directly: it reads dead-letter queues
// with basic.get, holding what it read unacknowledged so that closing the
// channel gives it all back in order, and puts dead letters back on their
// group's queue through the default exchange with publisher confirms.
type rabbitBackend struct {
	cfg  rabbitbus.Config
	conn *amqp.Connection
}

func openRabbit(ctx context.Context, o *options) (*rabbitBackend, error) {
	cfg, err := rabbitbus.ConfigFromEnv()
	if err != nil {
		return nil, usagef("%v", err)
	}
	if len(o.urls) > 0 {
		cfg.URLs = o.urls
	}
	if err := cfg.Validate(); err != nil {
		return nil, usagef("RabbitMQ configuration: %v", err)
	}
	heartbeat, dialTimeout := cfg.Heartbeat, cfg.DialTimeout
	if heartbeat <= 0 {
		heartbeat = rabbitbus.DefaultHeartbeat
	}
	if dialTimeout <= 0 {
		dialTimeout = rabbitbus.DefaultDialTimeout
	}
	var errs []error
	for _, u := range cfg.URLs {
		conn, err := ctxcall.Do(ctx, func() (*amqp.Connection, error) {
			return amqp.DialConfig(u, amqp.Config{Heartbeat: heartbeat, TLSClientConfig: cfg.TLS,
				Dial: amqp.DefaultDial(dialTimeout), Properties: amqp.Table{"connection_name": "evctl"}})
		})
		if err == nil {
			return &rabbitBackend{cfg: cfg, conn: conn}, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", redactURL(u), err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("connect to RabbitMQ: %w", errors.Join(errs...))
}

// redactURL hides the password of an AMQP URL.
func redactURL(u string) string {
	if at := strings.LastIndexByte(u, '@'); at > 0 {
		if i := strings.Index(u, "://"); i >= 0 && i+3 < at {
			creds := u[i+3 : at]
			if c := strings.IndexByte(creds, ':'); c >= 0 {
				return u[:i+3] + creds[:c] + ":***" + u[at:]
			}
		}
	}
	return u
}

func (r *rabbitBackend) close() error { return r.conn.Close() }

// queue returns the state of a queue, and false if it does not exist.
func (r *rabbitBackend) queue(name string) (amqp.Queue, bool, error) {
	ch, err := r.conn.Channel()
	if err != nil {
		return amqp.Queue{}, false, err
	}
	q, err := ch.QueueDeclarePassive(name, false, false, false, false, nil)
	if err != nil {
		if isNotFound(err) {
			return amqp.Queue{}, false, nil // the failure closed the channel
		}
		return amqp.Queue{}, false, fmt.Errorf("queue %q: %w", name, err)
	}
	_ = ch.Close()
	return q, true, nil
}

// exchangeExists reports whether an exchange exists.
func (r *rabbitBackend) exchangeExists(name string) (bool, error) {
	ch, err := r.conn.Channel()
	if err != nil {
		return false, err
	}
	if err := ch.ExchangeDeclarePassive(name, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("exchange %q: %w", name, err)
	}
	_ = ch.Close()
	return true, nil
}

func isNotFound(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == amqp.NotFound
}

// topicNames returns --topic, or the platform topics.
func topicNames(o *options) []string {
	if len(o.topics) > 0 {
		return o.topics
	}
	var out []string
	for _, s := range events.PlatformTopics() {
		out = append(out, s.Name)
	}
	return out
}

func (r *rabbitBackend) deadLetterSources(ctx context.Context, o *options) ([]string, error) {
	if len(o.dlqs) > 0 {
		for _, q := range o.dlqs {
			if _, ok, err := r.queue(q); err != nil {
				return nil, err
			} else if !ok {
				return nil, fmt.Errorf("no queue %q on the broker", q)
			}
		}
		return o.dlqs, nil
	}
	if len(o.groups) == 0 {
		return nil, usagef("RabbitMQ cannot list queues over AMQP: name the groups whose dead letters to read (--group G: the queues \"<topic>.G.dlq\" of the platform topics or --topic), or the queues (--dlq)")
	}
	var out []string
	for _, g := range o.groups {
		for _, t := range topicNames(o) {
			q := rabbitbus.GroupDeadLetterQueue(rabbitbus.DefaultQueueName(t, g))
			_, ok, err := r.queue(q)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, q)
			}
		}
	}
	return out, ctx.Err()
}

// getAll takes up to n messages from src with basic.get on ch, calling fn
// for each with its delivery; they stay unacknowledged unless fn acks them.
func getAll(ctx context.Context, ch *amqp.Channel, src string, n int, fn func(d *amqp.Delivery, r *record) error) error {
	for i := range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, ok, err := ch.Get(src, false)
		if err != nil {
			return fmt.Errorf("get from %q: %w", src, err)
		}
		if !ok {
			return nil // someone else took the rest
		}
		m, _ := rabbitbus.MessageFromDelivery(&d, src)
		if err := fn(&d, &record{source: src, partition: -1, offset: int64(i), msg: m}); err != nil {
			return err
		}
	}
	return nil
}

func (r *rabbitBackend) scan(ctx context.Context, src string, limit int, fn func(*record) error) error {
	ch, err := r.conn.Channel()
	if err != nil {
		return err
	}
	// Closing the channel gives every message read back, in front of the
	// queue and in order.
	defer ch.Close()
	if _, err := ch.QueueDeclarePassive(src, false, false, false, false, nil); err != nil {
		return fmt.Errorf("queue %q: %w", src, err)
	}
	// Until the queue has nothing ready: what this channel took stays
	// unacknowledged, so nothing is read twice. (Messages another reader
	// is giving back at this moment are not ready yet and may be missed.)
	n := math.MaxInt
	if limit > 0 {
		n = limit
	}
	err = getAll(ctx, ch, src, n, func(_ *amqp.Delivery, rec *record) error { return fn(rec) })
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// redrive puts the selected messages of a group's dead-letter queue
// "<queue>.dlq" back on "<queue>" (the default exchange routes by queue
// name, so only the group that gave up sees them again), acknowledging
// each dead letter only after the broker confirmed its copy. A crash
// between the confirm and the ack leaves that one message in the
// dead-letter queue as well; everything acknowledged is gone from it.
// Messages not selected are given back, in order, when the channel closes.
func (r *rabbitBackend) redrive(ctx context.Context, src string, p *redrivePlan) (*redriveResult, error) {
	res := &redriveResult{Source: src, DryRun: p.dryRun}
	target, ok := strings.CutSuffix(src, broker.DeadLetterSuffix)
	if !ok {
		return res, fmt.Errorf("%q is not a dead-letter queue \"<queue>%s\": cannot tell where its messages go back", src, broker.DeadLetterSuffix)
	}
	if _, exists, err := r.queue(target); err != nil {
		return res, err
	} else if !exists {
		return res, fmt.Errorf("queue %q, where the dead letters of %q go back, does not exist", target, src)
	}
	getCh, err := r.conn.Channel()
	if err != nil {
		return res, err
	}
	defer getCh.Close()
	pubCh, err := r.conn.Channel()
	if err != nil {
		return res, err
	}
	defer pubCh.Close()
	if err := pubCh.Confirm(false); err != nil {
		return res, fmt.Errorf("confirm mode: %w", err)
	}
	returns := pubCh.NotifyReturn(make(chan amqp.Return, 1))
	q, err := getCh.QueueDeclarePassive(src, false, false, false, false, nil)
	if err != nil {
		return res, fmt.Errorf("queue %q: %w", src, err)
	}
	err = getAll(ctx, getCh, src, q.Messages, func(d *amqp.Delivery, rec *record) error {
		res.Read++
		m := rec.msg
		if !p.selected(m) {
			return nil
		}
		if bodyDropped(m) {
			res.Skipped++
			return nil
		}
		if p.dryRun {
			res.Redriven++
			p.moved(rec, target)
			return nil
		}
		out := redriven(m, originalTopic(m, src), p.env.now())
		_, pub, err := rabbitbus.PublishingOf(out)
		if err != nil {
			return fmt.Errorf("%s: %w", rec.position(), err)
		}
		dc, err := pubCh.PublishWithDeferredConfirmWithContext(ctx, "", target, true, false, pub)
		if err != nil {
			return fmt.Errorf("republish %s to %q: %w", rec.position(), target, err)
		}
		acked, err := dc.WaitContext(ctx)
		if err != nil {
			return fmt.Errorf("confirm of %s: %w", rec.position(), err)
		}
		if !acked {
			return fmt.Errorf("republish %s to %q: the broker nacked it", rec.position(), target)
		}
		select {
		case ret := <-returns:
			return fmt.Errorf("republish %s: returned by the broker: %s", rec.position(), ret.ReplyText)
		default:
		}
		res.Redriven++
		p.moved(rec, target)
		if err := p.confirmed(); err != nil {
			return err
		}
		if err := getCh.Ack(d.DeliveryTag, false); err != nil {
			return fmt.Errorf("ack %s: %w", rec.position(), err)
		}
		return p.committed()
	})
	if err != nil {
		return res, err
	}
	// A synchronous round trip: the broker has processed every ack sent
	// before it when the answer comes.
	if _, err := getCh.QueueDeclarePassive(src, false, false, false, false, nil); err != nil {
		return res, fmt.Errorf("queue %q: %w", src, err)
	}
	return res, nil
}

func (r *rabbitBackend) tail(ctx context.Context, topic string, _ bool, ready func(string), fn func(*record) error) error {
	if ok, err := r.exchangeExists(topic); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("no exchange %q on the broker", topic)
	}
	ch, err := r.conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	// A server-named, exclusive, auto-delete queue of our own: the
	// services' queues are never touched, and it is gone with the channel.
	q, err := ch.QueueDeclare("", false, true, true, false, amqp.Table{"x-queue-type": rabbitbus.QueueClassic})
	if err != nil {
		return fmt.Errorf("tail queue: %w", err)
	}
	if err := ch.QueueBind(q.Name, "#", topic, false, nil); err != nil {
		return fmt.Errorf("bind tail queue to %q: %w", topic, err)
	}
	deliveries, err := ch.ConsumeWithContext(ctx, q.Name, "", true, true, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume tail queue: %w", err)
	}
	ready(fmt.Sprintf("RabbitMQ exchange %s through the temporary queue %s (from now on)", topic, q.Name))
	for i := int64(0); ; i++ {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil
			}
			return ctx.Err()
		case d, ok := <-deliveries:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("the broker closed the tail")
			}
			m, _ := rabbitbus.MessageFromDelivery(&d, topic)
			if err := fn(&record{source: topic, partition: -1, offset: i, msg: m}); err != nil {
				if errors.Is(err, errStop) {
					return nil
				}
				return err
			}
		}
	}
}

func (r *rabbitBackend) topics(ctx context.Context, o *options) (*topicsReport, error) {
	rep := &topicsReport{Broker: brokerRabbit, Ensured: o.ensure}
	if o.ensure {
		for _, name := range topicNames(o) {
			for _, t := range []string{name, broker.DeadLetterTopic(name)} {
				if err := r.ensureTopic(rep, t); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, g := range o.groups {
		for _, t := range topicNames(o) {
			main := rabbitbus.DefaultQueueName(t, g)
			for _, name := range []string{main, rabbitbus.GroupDeadLetterQueue(main)} {
				q, ok, err := r.queue(name)
				if err != nil {
					return nil, err
				}
				if ok {
					rep.addLag(g, t, name, -1, int64(q.Messages), -1, -1, q.Consumers)
				}
			}
		}
	}
	return rep, ctx.Err()
}

// ensureTopic declares topic's exchanges as rabbitbus does and records
// whether they were created, were already there, or differ.
func (r *rabbitBackend) ensureTopic(rep *topicsReport, topic string) error {
	existed, err := r.exchangeExists(topic)
	if err != nil {
		return err
	}
	ch, err := r.conn.Channel()
	if err != nil {
		return err
	}
	err = rabbitbus.DeclareTopic(ch, topic)
	var te *rabbitbus.TopologyError
	switch {
	case err == nil:
		_ = ch.Close()
		if existed {
			rep.Unchanged = append(rep.Unchanged, topic)
		} else {
			rep.Created = append(rep.Created, topic)
		}
	case errors.Is(err, rabbitbus.ErrTopologyMismatch) && errors.As(err, &te):
		setting := te.Argument
		if setting == "" {
			setting = "exchange arguments"
		}
		rep.Drift = append(rep.Drift, driftView{Topic: te.Name, Setting: setting,
			Want: "as rabbitbus declares it (durable topic exchange, alternate-exchange " + topic + ".unmatched)", Got: te.Err.Error()})
	default:
		return err
	}
	return nil
}
