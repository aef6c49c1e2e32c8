package benchcore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/cosmic-horizons/events/kafkabus"
)

// peerKafkaDriver runs watermill-kafka: its Publisher (a sarama
// SyncProducer) and its Subscriber (a sarama consumer group per Router
// handler, one handler per member). Both start from watermill's default
// sarama configuration with what the SDK guarantees set on top (see
// PeerSaramaPublisherConfig); keys go through murmur2, as kafkabus sends
// them, so every arm spreads the events over the partitions alike.
type peerKafkaDriver struct {
	o   Options
	sdk *sdkParts
	p   *peerCodec

	pub    *kafka.Publisher
	sub    *kafka.Subscriber
	router *peerRouter
}

// PeerSaramaPublisherConfig is the peer's producer configuration:
// watermill-kafka's DefaultSaramaSyncPublisherConfig (retries 10, send
// at once: sarama's default flush triggers, no linger) with the SDK's
// delivery guarantees: the idempotent producer, acks from all in-sync
// replicas, one request in flight per broker; kafkabus's protocol version
// and murmur2 partitioner.
func PeerSaramaPublisherConfig() *sarama.Config {
	sc := kafka.DefaultSaramaSyncPublisherConfig()
	sc.ClientID = "eventbench-watermill"
	sc.Version, _ = sarama.ParseKafkaVersion(kafkabus.DefaultVersion)
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Partitioner = sarama.NewMurmur2Partitioner
	sc.Metadata.AllowAutoTopicCreation = false
	return sc
}

// PeerSaramaSubscriberConfig is the peer's consumer configuration:
// watermill-kafka's DefaultSaramaSubscriberConfig with what the other arms
// set: a new group starts at the oldest message, kafkabus's protocol
// version, session timeout and the bench's heartbeat, and a fetch window
// (channel buffer) of MaxInFlight.
func PeerSaramaSubscriberConfig(maxInFlight int) *sarama.Config {
	sc := kafka.DefaultSaramaSubscriberConfig()
	sc.ClientID = "eventbench-watermill"
	sc.Version, _ = sarama.ParseKafkaVersion(kafkabus.DefaultVersion)
	sc.Metadata.AllowAutoTopicCreation = false
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Group.Session.Timeout = kafkabus.DefaultSessionTimeout
	sc.Consumer.Group.Heartbeat.Interval = kafkaHeartbeat
	sc.ChannelBufferSize = maxInFlight
	return sc
}

func (d *peerKafkaDriver) kafkaConfig() kafkabus.Config {
	return kafkabus.Config{Brokers: d.o.Brokers, ClientID: "eventbench", HeartbeatInterval: kafkaHeartbeat}
}

// Prepare creates the topic (as the other arms do) and the publisher.
func (d *peerKafkaDriver) Prepare(ctx context.Context) error {
	if err := createTopic(ctx, d.o, d.kafkaConfig()); err != nil {
		return err
	}
	key := func(_ string, m *message.Message) (string, error) { return m.Metadata.Get("ce_subject"), nil }
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{
		Brokers:               d.o.Brokers,
		Marshaler:             kafka.NewWithPartitioningMarshaler(key),
		OverwriteSaramaConfig: PeerSaramaPublisherConfig(),
	}, watermill.NopLogger{})
	if err != nil {
		return err
	}
	d.pub = pub
	return nil
}

// Subscribe starts one Router handler per member and returns once the
// group is stable with every member holding partitions (the other arms
// return once each member has its assignment).
func (d *peerKafkaDriver) Subscribe(ctx context.Context, c *Collector) error {
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers:               d.o.Brokers,
		Unmarshaler:           kafka.DefaultMarshaler{},
		OverwriteSaramaConfig: PeerSaramaSubscriberConfig(d.o.MaxInFlight),
		ConsumerGroup:         d.o.Group,
	}, watermill.NopLogger{})
	if err != nil {
		return err
	}
	d.sub = sub
	if d.router, err = startRouter(ctx, d.p, c, sub, d.o.Topic, d.o.Subscribers); err != nil {
		return err
	}
	return waitGroupStable(ctx, d.o.Brokers, d.o.Group, d.o.Subscribers)
}

// waitGroupStable polls the group's description until it is stable with
// members members, each assigned at least one partition, or ctx ends.
func waitGroupStable(ctx context.Context, brokers []string, group string, members int) error {
	sc := sarama.NewConfig()
	sc.Version, _ = sarama.ParseKafkaVersion(kafkabus.DefaultVersion)
	ca, err := sarama.NewClusterAdmin(brokers, sc)
	if err != nil {
		return err
	}
	defer ca.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		ds, err := ca.DescribeConsumerGroups([]string{group})
		if err == nil && len(ds) == 1 && ds[0].State == "Stable" && len(ds[0].Members) == members {
			ready := true
			for _, m := range ds[0].Members {
				a, err := m.GetMemberAssignment()
				ready = ready && err == nil && a != nil && len(a.Topics) > 0
			}
			if ready {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("benchcore: group %s not stable with %d members after a minute (last error: %v)", group, members, err)
		}
		select { // polling the broker for a state it does not push
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (d *peerKafkaDriver) Start(ctx context.Context, c *Collector) error {
	if err := d.Prepare(ctx); err != nil {
		return err
	}
	return d.Subscribe(ctx, c)
}

func (d *peerKafkaDriver) Publish(_ context.Context, first uint64, n int, sent string) error {
	return peerPublish(d.p, d.sdk.workload, first, n, sent, func(m *message.Message, _ string) error {
		return d.pub.Publish(d.o.Topic, m)
	})
}

func (d *peerKafkaDriver) Close() error {
	errs := []error{d.router.close()}
	if d.sub != nil {
		errs = append(errs, d.sub.Close())
	}
	if d.pub != nil {
		errs = append(errs, d.pub.Close())
	}
	d.sdk.close()
	kd := kafkaDriver{o: d.o}
	errs = append(errs, kd.deleteTopics())
	return errors.Join(errs...)
}

func (d *peerKafkaDriver) Workload() *Workload { return d.sdk.workload }
