package benchcore

import (
	"context"
	"errors"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/rabbitbus"
)

// PeerPublishChannels is the size of watermill-amqp's publish channel
// pool in the peer: one confirm-mode channel per publisher of the
// comparison (64), since watermill-amqp waits for each message's
// confirmation on the channel it took from the pool. Its default (0) opens
// and closes a channel per Publish.
const PeerPublishChannels = 64

// peerRabbitDriver runs watermill-amqp on the topology rabbitbus declares
// for the group (the topic exchange, a durable queue of Options.QueueType
// bound with "#"), as the raw arm does, so that every arm writes to the
// same kind of queue: its topology builder declares nothing. Publishes are
// persistent and mandatory, with publisher confirms, on a pool of
// PeerPublishChannels channels; each member is a Router handler consuming
// on a channel of its own with a prefetch of MaxInFlight, acking each
// message once handled.
type peerRabbitDriver struct {
	o   Options
	sdk *sdkParts
	p   *peerCodec

	admin  *rabbitbus.Backend
	pub    *wamqp.Publisher
	sub    *wamqp.Subscriber
	router *peerRouter
}

// noTopology is a watermill-amqp TopologyBuilder that declares nothing:
// rabbitbus declared the topology.
type noTopology struct{}

func (noTopology) BuildTopology(*amqp.Channel, wamqp.BuildTopologyParams, wamqp.Config, watermill.LoggerAdapter) error {
	return nil
}

func (noTopology) ExchangeDeclare(*amqp.Channel, string, wamqp.Config) error { return nil }

// PeerAMQPConfig is the peer's watermill-amqp configuration for the
// exchange and queue named.
func PeerAMQPConfig(url, exchange, queue string, prefetch int) wamqp.Config {
	return wamqp.Config{
		Connection: wamqp.ConnectionConfig{
			AmqpURI: url,
			AmqpConfig: &amqp.Config{Heartbeat: rabbitbus.DefaultHeartbeat,
				Properties: amqp.Table{"connection_name": "eventbench-watermill"}},
			Reconnect: wamqp.DefaultReconnectConfig(),
		},
		Marshaler: wamqp.DefaultMarshaler{}, // persistent delivery mode
		Exchange:  wamqp.ExchangeConfig{GenerateName: wamqp.GenerateExchangeNameConstant(exchange), Type: "topic", Durable: true},
		Queue:     wamqp.QueueConfig{GenerateName: wamqp.GenerateQueueNameConstant(queue), Durable: true},
		QueueBind: wamqp.QueueBindConfig{GenerateRoutingKey: func(string) string { return "#" }},
		Publish: wamqp.PublishConfig{
			GenerateRoutingKey: func(topic string) string { return topic },
			Mandatory:          true,
			ChannelPoolSize:    PeerPublishChannels,
			ConfirmDelivery:    true,
		},
		Consume:         wamqp.ConsumeConfig{Qos: wamqp.QosConfig{PrefetchCount: prefetch}},
		TopologyBuilder: noTopology{},
	}
}

func (d *peerRabbitDriver) config() wamqp.Config {
	return PeerAMQPConfig(d.o.URLs[0], d.o.Topic, d.admin.QueueName(d.o.Topic, d.o.Group), d.o.MaxInFlight)
}

// Prepare declares the group's topology with rabbitbus and connects the
// publisher.
func (d *peerRabbitDriver) Prepare(ctx context.Context) error {
	cl, err := rabbitbus.New(ctx, rabbitbus.Config{URLs: d.o.URLs, QueueType: d.o.QueueType, ConnectionName: "eventbench"})
	if err != nil {
		return err
	}
	d.admin = cl
	sub := broker.Subscription{Topic: d.o.Topic, Group: d.o.Group, Concurrency: d.o.Concurrency, MaxInFlight: d.o.MaxInFlight}
	if err := cl.DeclareGroup(ctx, sub); err != nil {
		return err
	}
	pub, err := wamqp.NewPublisher(d.config(), watermill.NopLogger{})
	if err != nil {
		return err
	}
	d.pub = pub
	return nil
}

// Subscribe starts one Router handler (one channel) per member.
func (d *peerRabbitDriver) Subscribe(ctx context.Context, c *Collector) error {
	sub, err := wamqp.NewSubscriber(d.config(), watermill.NopLogger{})
	if err != nil {
		return err
	}
	d.sub = sub
	d.router, err = startRouter(ctx, d.p, c, sub, d.o.Topic, d.o.Subscribers)
	return err
}

func (d *peerRabbitDriver) Start(ctx context.Context, c *Collector) error {
	if err := d.Prepare(ctx); err != nil {
		return err
	}
	return d.Subscribe(ctx, c)
}

func (d *peerRabbitDriver) Publish(_ context.Context, first uint64, n int, sent string) error {
	return peerPublish(d.p, d.sdk.workload, first, n, sent, func(m *message.Message, _ string) error {
		return d.pub.Publish(d.o.Topic, m)
	})
}

func (d *peerRabbitDriver) Close() error {
	errs := []error{d.router.close()}
	if d.sub != nil {
		errs = append(errs, d.sub.Close())
	}
	if d.pub != nil {
		errs = append(errs, d.pub.Close())
	}
	if d.admin != nil {
		errs = append(errs, dropTopology(d.admin, d.o.Topic, d.o.Group), d.admin.Close())
	}
	d.sdk.close()
	return errors.Join(errs...)
}

func (d *peerRabbitDriver) Workload() *Workload { return d.sdk.workload }
