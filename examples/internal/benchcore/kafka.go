package benchcore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/kafkabus"
)

// kafkaHeartbeat is the group heartbeat of both modes: how soon members
// learn of a rebalance, so that M members join in about a second each.
const kafkaHeartbeat = time.Second

// kafkaDriver runs Kafka through kafkabus (SDK) or sarama alone (raw),
// with the producer settings kafkabus uses (idempotent, acks=all, one
// request in flight per broker, murmur2, the same flush triggers), so that
// the difference measured is kafkabus's own.
type kafkaDriver struct {
	o   Options
	sdk *sdkParts

	kb   *kafkabus.Backend
	cons []broker.Consumer

	prod    sarama.SyncProducer
	groups  []sarama.ConsumerGroup
	stop    context.CancelFunc
	running sync.WaitGroup
}

func newKafkaDriver(o Options, sdk *sdkParts) *kafkaDriver { return &kafkaDriver{o: o, sdk: sdk} }

func (d *kafkaDriver) config() kafkabus.Config {
	return kafkabus.Config{Brokers: d.o.Brokers, ClientID: "eventbench", HeartbeatInterval: kafkaHeartbeat}
}

// rawConfig is sarama configured as kafkabus configures it.
func (d *kafkaDriver) rawConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.ClientID = "eventbench-raw"
	sc.Version, _ = sarama.ParseKafkaVersion(kafkabus.DefaultVersion)
	sc.Metadata.AllowAutoTopicCreation = false
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Partitioner = sarama.NewMurmur2Partitioner
	// kafkabus's default flush: every trigger off (sarama's zeros), so a
	// batch goes as soon as the broker's previous request is answered.
	sc.Producer.Flush.Frequency, sc.Producer.Flush.Messages, sc.Producer.Flush.Bytes = 0, 0, 0
	sc.Producer.Retry.Max = kafkabus.DefaultProducerRetries
	sc.Producer.Retry.Backoff = kafkabus.DefaultRetryBackoff
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Offsets.AutoCommit.Interval = time.Second
	sc.Consumer.Group.Session.Timeout = kafkabus.DefaultSessionTimeout
	sc.Consumer.Group.Heartbeat.Interval = kafkaHeartbeat
	sc.ChannelBufferSize = d.o.MaxInFlight
	return sc
}

func (d *kafkaDriver) Start(ctx context.Context, c *Collector) error {
	if err := d.Prepare(ctx); err != nil {
		return err
	}
	return d.Subscribe(ctx, c)
}

// createTopic creates the run's topic (and its dead-letter topic, which
// deleteTopics removes).
func createTopic(ctx context.Context, o Options, cfg kafkabus.Config) error {
	admin, err := kafkabus.NewAdmin(ctx, cfg)
	if err != nil {
		return err
	}
	defer admin.Close()
	spec := broker.TopicSpec{Name: o.Topic, Partitions: int32(o.Partitions), ReplicationFactor: 3, Retention: time.Hour}
	if _, err := admin.EnsureTopics(ctx, []broker.TopicSpec{spec}, kafkabus.WithDeadLetterTopics()); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	return nil
}

// Prepare creates the topic and the producer (a new group reads the topic
// from its oldest message in both modes, so nothing published before
// Subscribe is missed).
func (d *kafkaDriver) Prepare(ctx context.Context) error {
	if err := createTopic(ctx, d.o, d.config()); err != nil {
		return err
	}
	if d.o.Mode == ModeSDK {
		kb, err := kafkabus.New(ctx, d.config())
		if err != nil {
			return err
		}
		d.kb = kb
		return d.sdk.attach(kb, d.o.Topic)
	}
	prod, err := sarama.NewSyncProducer(d.o.Brokers, d.rawConfig())
	if err != nil {
		return err
	}
	d.prod = prod
	return nil
}

// Subscribe joins the consumer-group members one after the other.
func (d *kafkaDriver) Subscribe(ctx context.Context, c *Collector) error {
	if d.o.Mode == ModeSDK {
		return d.subscribeSDK(ctx, c)
	}
	return d.subscribeRaw(ctx, c)
}

func (d *kafkaDriver) subscribeSDK(ctx context.Context, c *Collector) error {
	for range d.o.Subscribers {
		cons, err := d.sdk.subscribe(ctx, broker.Subscription{
			Topic: d.o.Topic, Group: d.o.Group, Concurrency: d.o.Concurrency, MaxInFlight: d.o.MaxInFlight,
		}, c)
		if err != nil {
			return err
		}
		d.cons = append(d.cons, cons)
	}
	return nil
}

func (d *kafkaDriver) subscribeRaw(ctx context.Context, c *Collector) error {
	sc := d.rawConfig()
	runCtx, stop := context.WithCancel(context.Background())
	d.stop = stop
	for range d.o.Subscribers {
		cg, err := sarama.NewConsumerGroup(d.o.Brokers, d.o.Group, sc)
		if err != nil {
			return err
		}
		d.groups = append(d.groups, cg)
		h := &rawGroupHandler{c: c, raw: d.sdk.raw, ready: make(chan struct{})}
		d.running.Go(func() {
			for runCtx.Err() == nil {
				if err := cg.Consume(runCtx, []string{d.o.Topic}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
					select { // back off a little before joining again
					case <-runCtx.Done():
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
		})
		// As kafkabus.Subscribe: return once this member has its first
		// assignment, before the next member joins.
		select {
		case <-h.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// rawGroupHandler is the plainest sarama consumer: one goroutine per
// claimed partition, two headers read, each message marked.
type rawGroupHandler struct {
	c     *Collector
	raw   *peerCodec
	ready chan struct{}
	once  sync.Once
}

func (h *rawGroupHandler) Setup(sarama.ConsumerGroupSession) error {
	h.once.Do(func() { close(h.ready) })
	return nil
}

func (h *rawGroupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *rawGroupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, cl sarama.ConsumerGroupClaim) error {
	for m := range cl.Messages() {
		var typ, ds, sent string
		for _, rh := range m.Headers {
			switch string(rh.Key) {
			case broker.HeaderType:
				typ = string(rh.Value)
			case broker.HeaderDataSchema:
				ds = string(rh.Value)
			case HeaderSent:
				sent = string(rh.Value)
			}
		}
		h.raw.consumeRaw(h.c, m.Value, typ, ds, sent)
		s.MarkMessage(m, "")
	}
	return nil
}

func (d *kafkaDriver) Publish(ctx context.Context, first uint64, n int, sent string) error {
	if d.o.Mode == ModeSDK {
		return d.sdk.publish(ctx, first, n, sent)
	}
	msgs, err := d.sdk.rawMessages(first, n, sent)
	if err != nil {
		return err
	}
	pms := make([]*sarama.ProducerMessage, n)
	for i, m := range msgs {
		hs := make([]sarama.RecordHeader, 0, len(m.Headers))
		for _, hdr := range m.Headers {
			k, v := hdr.Key, hdr.Value
			hs = append(hs, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
		}
		pms[i] = &sarama.ProducerMessage{Topic: m.Topic, Key: sarama.StringEncoder(m.Key), Value: sarama.ByteEncoder(m.Body), Headers: hs}
	}
	if n == 1 {
		_, _, err := d.prod.SendMessage(pms[0])
		return err
	}
	err = d.prod.SendMessages(pms)
	var perrs sarama.ProducerErrors
	if errors.As(err, &perrs) {
		idx := make(map[*sarama.ProducerMessage]int, n)
		for i, pm := range pms {
			idx[pm] = i
		}
		pe := &broker.PublishError{}
		for _, e := range perrs {
			pe.Failed = append(pe.Failed, broker.FailedMessage{Index: idx[e.Msg], Err: e.Err})
		}
		return pe
	}
	return err
}

func (d *kafkaDriver) Close() error {
	var errs []error
	for _, c := range d.cons {
		errs = append(errs, c.Close())
	}
	if d.kb != nil {
		errs = append(errs, d.kb.Close())
	}
	if d.stop != nil {
		d.stop()
	}
	for _, g := range d.groups {
		errs = append(errs, g.Close())
	}
	d.running.Wait()
	if d.prod != nil {
		errs = append(errs, d.prod.Close())
	}
	d.sdk.close()
	errs = append(errs, d.deleteTopics())
	return errors.Join(errs...)
}

// deleteTopics removes the run's topics, which a shared cluster would
// otherwise keep.
func (d *kafkaDriver) deleteTopics() error {
	ca, err := sarama.NewClusterAdmin(d.o.Brokers, d.rawConfig())
	if err != nil {
		return err
	}
	defer ca.Close()
	var errs []error
	for _, t := range []string{d.o.Topic, broker.DeadLetterTopic(d.o.Topic)} {
		if err := ca.DeleteTopic(t); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("delete topic %s: %w", t, err))
		}
	}
	return errors.Join(errs...)
}

func (d *kafkaDriver) Workload() *Workload { return d.sdk.workload }
