package benchcore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/rabbitbus"
)

// rabbitDriver runs RabbitMQ through rabbitbus (SDK) or amqp091 alone
// (raw). Both use the topology rabbitbus declares (topic exchange, a
// durable queue of Options.QueueType bound with "#"), persistent messages,
// publisher confirms and per-message consumer acks; raw publishers share
// rabbitbus's default number of confirm channels.
type rabbitDriver struct {
	o   Options
	sdk *sdkParts

	admin *rabbitbus.Backend // topology (both modes) and SDK traffic
	cons  []broker.Consumer

	pubConn, subConn *amqp.Connection
	pubChans         []*amqp.Channel
	next             atomic.Uint64
	subChans         []*amqp.Channel
	consuming        sync.WaitGroup
}

func newRabbitDriver(o Options, sdk *sdkParts) *rabbitDriver { return &rabbitDriver{o: o, sdk: sdk} }

func (d *rabbitDriver) Start(ctx context.Context, c *Collector) error {
	if err := d.Prepare(ctx); err != nil {
		return err
	}
	return d.Subscribe(ctx, c)
}

func (d *rabbitDriver) subscription() broker.Subscription {
	return broker.Subscription{Topic: d.o.Topic, Group: d.o.Group, Concurrency: d.o.Concurrency, MaxInFlight: d.o.MaxInFlight}
}

// Prepare declares the topology rabbitbus declares for the group (so
// the queue keeps what is published from now on) and connects the
// publishers.
func (d *rabbitDriver) Prepare(ctx context.Context) error {
	cfg := rabbitbus.Config{URLs: d.o.URLs, QueueType: d.o.QueueType, ConnectionName: "eventbench"}
	cl, err := rabbitbus.New(ctx, cfg)
	if err != nil {
		return err
	}
	d.admin = cl
	if err := cl.DeclareGroup(ctx, d.subscription()); err != nil {
		return err
	}
	if d.o.Mode == ModeSDK {
		return d.sdk.attach(cl, d.o.Topic)
	}
	if d.pubConn, err = d.dial("publisher"); err != nil {
		return err
	}
	for range rabbitbus.DefaultPublishChannels {
		ch, err := d.pubConn.Channel()
		if err != nil {
			return err
		}
		if err := ch.Confirm(false); err != nil {
			return err
		}
		d.pubChans = append(d.pubChans, ch)
	}
	return nil
}

// Subscribe starts the group's consumers.
func (d *rabbitDriver) Subscribe(ctx context.Context, c *Collector) error {
	if d.o.Mode == ModeSDK {
		for range d.o.Subscribers {
			cons, err := d.sdk.subscribe(ctx, d.subscription(), c)
			if err != nil {
				return err
			}
			d.cons = append(d.cons, cons)
		}
		return nil
	}
	return d.subscribeRaw(c)
}

func (d *rabbitDriver) dial(role string) (*amqp.Connection, error) {
	var errs []error
	for _, u := range d.o.URLs {
		conn, err := amqp.DialConfig(u, amqp.Config{Heartbeat: rabbitbus.DefaultHeartbeat,
			Properties: amqp.Table{"connection_name": "eventbench-raw " + role}})
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func (d *rabbitDriver) subscribeRaw(c *Collector) error {
	var err error
	if d.subConn, err = d.dial("subscriber"); err != nil {
		return err
	}
	queue := d.admin.QueueName(d.o.Topic, d.o.Group)
	for i := range d.o.Subscribers {
		ch, err := d.subConn.Channel()
		if err != nil {
			return err
		}
		if err := ch.Qos(d.o.MaxInFlight, 0, false); err != nil {
			return err
		}
		ds, err := ch.Consume(queue, fmt.Sprintf("eventbench-%d", i), false, false, false, false, nil)
		if err != nil {
			return err
		}
		d.subChans = append(d.subChans, ch)
		d.consuming.Go(func() {
			for dl := range ds {
				typ, _ := dl.Headers["cloudEvents_type"].(string)
				ds, _ := dl.Headers["cloudEvents_dataschema"].(string)
				sent, _ := dl.Headers[HeaderSent].(string)
				d.sdk.raw.consumeRaw(c, dl.Body, typ, ds, sent)
				_ = dl.Ack(false)
			}
		})
	}
	return nil
}

// publishing is what rabbitbus puts on the wire for m.
func publishing(m *broker.Message) (string, amqp.Publishing) {
	h := make(amqp.Table, len(m.Headers)+1)
	p := amqp.Publishing{DeliveryMode: amqp.Persistent, Body: m.Body, Headers: h, Timestamp: time.Now()}
	for _, hdr := range m.Headers {
		k, v := hdr.Key, hdr.Value
		switch {
		case k == broker.HeaderContentType:
			p.ContentType = v
		case strings.HasPrefix(k, "ce_"):
			h["cloudEvents_"+k[3:]] = v
		default:
			h[k] = v
		}
	}
	h[rabbitbus.HeaderKey] = m.Key
	p.MessageId = m.Header(broker.HeaderID)
	p.CorrelationId = m.Header(broker.HeaderCorrelationID)
	p.Type = m.Header(broker.HeaderType)
	return p.Type, p
}

func (d *rabbitDriver) Publish(ctx context.Context, first uint64, n int, sent string) error {
	if d.o.Mode == ModeSDK {
		return d.sdk.publish(ctx, first, n, sent)
	}
	ch := d.pubChans[d.next.Add(1)%uint64(len(d.pubChans))]
	dcs := make([]*amqp.DeferredConfirmation, n)
	pe := &broker.PublishError{}
	for i := range n {
		m, err := d.sdk.raw.brokerMessage(d.sdk.workload, first+uint64(i), sent)
		if err != nil {
			pe.Failed = append(pe.Failed, broker.FailedMessage{Index: i, Err: err})
			continue
		}
		key, p := publishing(m)
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, d.o.Topic, key, true, false, p)
		if err != nil {
			pe.Failed = append(pe.Failed, broker.FailedMessage{Index: i, Err: err})
			continue
		}
		dcs[i] = dc
	}
	for i, dc := range dcs {
		if dc == nil {
			continue
		}
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			if err == nil {
				err = rabbitbus.ErrNacked
			}
			pe.Failed = append(pe.Failed, broker.FailedMessage{Index: i, Err: err})
		}
	}
	if len(pe.Failed) > 0 {
		return pe
	}
	return nil
}

func (d *rabbitDriver) Close() error {
	var errs []error
	for _, c := range d.cons {
		errs = append(errs, c.Close())
	}
	// Raw consumers: cancel, let the acks of what was delivered go out,
	// then close the channel (closing first loses acks on quorum queues).
	for i, ch := range d.subChans {
		errs = append(errs, ch.Cancel(fmt.Sprintf("eventbench-%d", i), false))
	}
	d.consuming.Wait()
	for _, ch := range append(d.subChans, d.pubChans...) {
		_ = ch.Close()
	}
	for _, conn := range []*amqp.Connection{d.pubConn, d.subConn} {
		if conn != nil {
			_ = conn.Close()
		}
	}
	if d.admin != nil {
		errs = append(errs, dropTopology(d.admin, d.o.Topic, d.o.Group), d.admin.Close())
	}
	d.sdk.close()
	return errors.Join(errs...)
}

func (d *rabbitDriver) Workload() *Workload { return d.sdk.workload }

// dropTopology deletes a run's group queues and topic exchange, each try up
// to three times a second apart: deleting a quorum queue can fail while the
// broker's write-ahead log restarts (seen here: Exception 541
// INTERNAL_ERROR, "wal_down" in the broker's log), and a run's figures do
// not depend on its cleanup. The last error of each is returned.
func dropTopology(admin *rabbitbus.Backend, topic, group string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	try := func(op func(context.Context) error) error {
		var err error
		for attempt := range 3 {
			if attempt > 0 {
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
					return errors.Join(err, ctx.Err())
				}
			}
			if err = op(ctx); err == nil {
				return nil
			}
		}
		return err
	}
	return errors.Join(
		try(func(ctx context.Context) error { return admin.DeleteGroup(ctx, topic, group) }),
		try(func(ctx context.Context) error { return admin.DeleteTopic(ctx, topic) }))
}
