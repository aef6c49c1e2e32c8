package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	events "github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/internal/ctxcall"
	"github.com/cosmic-horizons/events/kafkabus"
)

// kafkaBackend reads with plain partition consumers (no consumer group:
// nothing it reads moves any group's offsets), publishes through a
// kafkabus.Backend (idempotent, acks=all) and records redrive progress as
// committed offsets of its own group.
type kafkaBackend struct {
	cfg    kafkabus.Config
	client sarama.Client
	admin  sarama.ClusterAdmin

	pub *kafkabus.Backend // opened on first use
}

func openKafka(ctx context.Context, o *options) (*kafkaBackend, error) {
	cfg, err := kafkabus.ConfigFromEnv()
	if err != nil {
		return nil, usagef("%v", err)
	}
	if len(o.brokers) > 0 {
		cfg.Brokers = o.brokers
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "evctl"
	}
	if err := cfg.Validate(); err != nil {
		return nil, usagef("Kafka configuration: %v", err)
	}
	client, err := ctxcall.Do(ctx, func() (sarama.Client, error) { return sarama.NewClient(cfg.Brokers, cfg.SaramaConfig()) })
	if err != nil {
		return nil, fmt.Errorf("connect to Kafka %v: %w", cfg.Brokers, err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("connect to Kafka: %w", err)
	}
	return &kafkaBackend{cfg: cfg, client: client, admin: admin}, nil
}

func (k *kafkaBackend) close() error {
	var errs []error
	if k.pub != nil {
		errs = append(errs, k.pub.Close())
	}
	errs = append(errs, k.admin.Close()) // closes the client too
	return errors.Join(errs...)
}

func (k *kafkaBackend) publisher(ctx context.Context) (*kafkabus.Backend, error) {
	if k.pub == nil {
		cfg := k.cfg
		// The largest dead letter must go back whole.
		cfg.MaxMessageBytes = kafkabus.DeadLetterMaxMessageBytes(max(cfg.MaxMessageBytes, kafkabus.DefaultMaxMessageBytes))
		p, err := kafkabus.New(ctx, cfg)
		if err != nil {
			return nil, err
		}
		k.pub = p
	}
	return k.pub, nil
}

func (k *kafkaBackend) deadLetterSources(ctx context.Context, o *options) ([]string, error) {
	if err := k.client.RefreshMetadata(); err != nil {
		return nil, fmt.Errorf("Kafka metadata: %w", err)
	}
	all, err := k.client.Topics()
	if err != nil {
		return nil, fmt.Errorf("Kafka topics: %w", err)
	}
	if len(o.dlqs) > 0 {
		for _, d := range o.dlqs {
			if !slices.Contains(all, d) {
				return nil, fmt.Errorf("no topic %q on the cluster", d)
			}
		}
		return o.dlqs, nil
	}
	var out []string
	for _, t := range all {
		if !broker.IsDeadLetterTopic(t) {
			continue
		}
		if len(o.topics) > 0 && !slices.Contains(o.topics, originalTopic(&broker.Message{}, t)) {
			continue
		}
		out = append(out, t)
	}
	slices.Sort(out)
	return out, nil
}

// offsets returns the log start and the high-water mark of a partition.
func (k *kafkaBackend) offsets(topic string, p int32) (oldest, newest int64, err error) {
	if oldest, err = k.client.GetOffset(topic, p, sarama.OffsetOldest); err != nil {
		return 0, 0, fmt.Errorf("log start of %s/%d: %w", topic, p, err)
	}
	if newest, err = k.client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
		return 0, 0, fmt.Errorf("high-water mark of %s/%d: %w", topic, p, err)
	}
	return oldest, newest, nil
}

func (k *kafkaBackend) scan(ctx context.Context, src string, limit int, fn func(*record) error) error {
	parts, err := k.client.Partitions(src)
	if err != nil {
		return fmt.Errorf("partitions of %q: %w", src, err)
	}
	consumer, err := sarama.NewConsumerFromClient(k.client)
	if err != nil {
		return err
	}
	defer consumer.Close()
	n := 0
	for _, p := range parts {
		oldest, newest, err := k.offsets(src, p)
		if err != nil {
			return err
		}
		err = k.readRange(ctx, consumer, src, p, oldest, newest, func(r *record) error {
			n++
			if err := fn(r); err != nil {
				return err
			}
			if limit > 0 && n >= limit {
				return errStop
			}
			return nil
		})
		if errors.Is(err, errStop) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readRange calls fn for the messages of topic/p in [from, to).
func (k *kafkaBackend) readRange(ctx context.Context, consumer sarama.Consumer, topic string, p int32, from, to int64, fn func(*record) error) error {
	if from >= to {
		return nil
	}
	pc, err := consumer.ConsumePartition(topic, p, from)
	if err != nil {
		return fmt.Errorf("consume %s/%d: %w", topic, p, err)
	}
	defer pc.Close()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-pc.Errors():
			return fmt.Errorf("consume %s/%d: %w", topic, p, err)
		case cm := <-pc.Messages():
			if err := fn(kafkaRecord(cm)); err != nil {
				return err
			}
			if cm.Offset >= to-1 {
				return nil
			}
		}
	}
}

func kafkaRecord(cm *sarama.ConsumerMessage) *record {
	m := &broker.Message{Topic: cm.Topic, Key: string(cm.Key), Body: cm.Value,
		Headers:  make(broker.Headers, 0, len(cm.Headers)),
		Delivery: broker.Delivery{Partition: cm.Partition, Offset: cm.Offset, ReceivedAt: time.Now()}}
	for _, h := range cm.Headers {
		if h != nil {
			m.Headers = append(m.Headers, broker.Header{Key: string(h.Key), Value: string(h.Value)})
		}
	}
	return &record{source: cm.Topic, partition: cm.Partition, offset: cm.Offset, msg: m}
}

// redrive reads src from the progress group's committed offsets to the
// high-water marks taken at the start, republishes each selected message
// to its original topic, waits for the acknowledgement (acks=all), and only
// then commits the offset after it. A crash between the acknowledgement
// and the commit republishes that one message again on the next run;
// nothing committed is read again.
func (k *kafkaBackend) redrive(ctx context.Context, src string, p *redrivePlan) (*redriveResult, error) {
	res := &redriveResult{Source: src, ProgressGroup: p.progressGroup, DryRun: p.dryRun}
	parts, err := k.client.Partitions(src)
	if err != nil {
		return res, fmt.Errorf("partitions of %q: %w", src, err)
	}
	committed, err := k.committed(p.progressGroup, src, parts)
	if err != nil {
		return res, err
	}
	var pub *kafkabus.Backend
	if !p.dryRun {
		if pub, err = k.publisher(ctx); err != nil {
			return res, err
		}
	}
	consumer, err := sarama.NewConsumerFromClient(k.client)
	if err != nil {
		return res, err
	}
	defer consumer.Close()
	for _, part := range parts {
		oldest, newest, err := k.offsets(src, part)
		if err != nil {
			return res, err
		}
		start := max(committed[part], oldest) // -1: nothing committed yet
		done := start                         // committed progress
		next := start                         // progress to commit
		err = k.readRange(ctx, consumer, src, part, start, newest, func(r *record) error {
			res.Read++
			next = r.offset + 1
			m := r.msg
			if !p.selected(m) {
				return nil
			}
			if bodyDropped(m) {
				res.Skipped++
				return nil
			}
			target := originalTopic(m, src)
			if p.dryRun {
				res.Redriven++
				p.moved(r, target)
				return nil
			}
			if err := pub.Publish(ctx, redriven(m, target, p.env.now())); err != nil {
				return fmt.Errorf("republish %s to %s: %w", r.position(), target, err)
			}
			res.Redriven++
			p.moved(r, target)
			if err := p.confirmed(); err != nil {
				return err
			}
			if err := k.commit(ctx, p.progressGroup, src, part, next); err != nil {
				return err
			}
			done = next
			return p.committed()
		})
		if err != nil {
			return res, err
		}
		if !p.dryRun && next > done {
			if err := k.commit(ctx, p.progressGroup, src, part, next); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// committed returns the offsets group committed on topic's partitions (-1
// where none).
func (k *kafkaBackend) committed(group, topic string, parts []int32) (map[int32]int64, error) {
	out := make(map[int32]int64, len(parts))
	for _, p := range parts {
		out[p] = -1
	}
	resp, err := k.admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if errors.Is(err, sarama.ErrGroupIDNotFound) {
		return out, nil // a group that never committed
	}
	if err != nil {
		return nil, fmt.Errorf("committed offsets of %q: %w", group, err)
	}
	for _, p := range parts {
		if b := resp.GetBlock(topic, p); b != nil && (b.Err == sarama.ErrNoError) {
			out[p] = b.Offset
		}
	}
	return out, nil
}

// commit commits offset for group on topic/partition as a simple consumer
// (no group membership), synchronously.
func (k *kafkaBackend) commit(ctx context.Context, group, topic string, partition int32, offset int64) error {
	req := &sarama.OffsetCommitRequest{Version: 2, ConsumerGroup: group,
		ConsumerGroupGeneration: sarama.GroupGenerationUndefined, RetentionTime: -1}
	req.AddBlock(topic, partition, offset, 0, "evctl dlq redrive")
	var last error
	for attempt := range 10 {
		if attempt > 0 {
			_ = k.client.RefreshCoordinator(group)
			t := time.NewTimer(time.Duration(attempt) * 100 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		coord, err := k.client.Coordinator(group)
		if err != nil {
			last = err
			continue
		}
		resp, err := coord.CommitOffset(req)
		if err != nil {
			last = err
			continue
		}
		kerr := resp.Errors[topic][partition]
		switch {
		case kerr == sarama.ErrNoError:
			return nil
		case errors.Is(kerr, sarama.ErrNotCoordinatorForConsumer), errors.Is(kerr, sarama.ErrConsumerCoordinatorNotAvailable),
			errors.Is(kerr, sarama.ErrOffsetsLoadInProgress), errors.Is(kerr, sarama.ErrRequestTimedOut):
			last = kerr
			continue
		default:
			return fmt.Errorf("commit %s/%d@%d for %q: %w", topic, partition, offset, group, kerr)
		}
	}
	return fmt.Errorf("commit %s/%d@%d for %q: %w", topic, partition, offset, group, last)
}

func (k *kafkaBackend) tail(ctx context.Context, topic string, fromBeginning bool, ready func(string), fn func(*record) error) error {
	parts, err := k.client.Partitions(topic)
	if err != nil {
		return fmt.Errorf("partitions of %q: %w", topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(k.client)
	if err != nil {
		return err
	}
	defer consumer.Close()
	start, from := sarama.OffsetNewest, "newest"
	if fromBeginning {
		start, from = sarama.OffsetOldest, "oldest"
	}
	ctx, cancel := context.WithCancel(ctx)
	msgs := make(chan *sarama.ConsumerMessage)
	errc := make(chan error, len(parts))
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(topic, p, start)
		if err != nil {
			return fmt.Errorf("consume %s/%d: %w", topic, p, err)
		}
		wg.Go(func() {
			defer pc.Close()
			for {
				select {
				case <-ctx.Done():
					return
				case err := <-pc.Errors():
					errc <- fmt.Errorf("consume %s/%d: %w", topic, p, err)
					return
				case cm := <-pc.Messages():
					select {
					case msgs <- cm:
					case <-ctx.Done():
						return
					}
				}
			}
		})
	}
	ready(fmt.Sprintf("Kafka topic %s (%d partitions) from the %s offsets, as no consumer group", topic, len(parts), from))
	for {
		select {
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), context.Canceled) {
				return nil // interrupted: the normal end of a tail
			}
			return ctx.Err()
		case err := <-errc:
			return err
		case cm := <-msgs:
			if err := fn(kafkaRecord(cm)); err != nil {
				if errors.Is(err, errStop) {
					return nil
				}
				return err
			}
		}
	}
}

func (k *kafkaBackend) topics(ctx context.Context, o *options) (*topicsReport, error) {
	rep := &topicsReport{Broker: brokerKafka, Ensured: o.ensure}
	if o.ensure {
		adm, err := kafkabus.NewAdmin(ctx, k.cfg)
		if err != nil {
			return nil, err
		}
		defer adm.Close()
		tr, err := adm.EnsureTopics(ctx, events.PlatformTopics(), kafkabus.WithDeadLetterTopics())
		var de *kafkabus.DriftError
		if err != nil && !errors.As(err, &de) {
			return nil, err
		}
		if tr != nil {
			rep.Created, rep.Unchanged = tr.Created, tr.Unchanged
			for _, d := range tr.Drift {
				rep.Drift = append(rep.Drift, driftView{Topic: d.Topic, Setting: d.Setting, Want: d.Want, Got: d.Got})
			}
		}
	}
	groups := []string(o.groups)
	if len(groups) == 0 {
		all, err := ctxcall.Do(ctx, k.admin.ListConsumerGroups)
		if err != nil {
			return nil, fmt.Errorf("list consumer groups: %w", err)
		}
		for g := range all {
			groups = append(groups, g)
		}
	}
	slices.Sort(groups)
	if len(groups) == 0 {
		return rep, nil
	}
	cfg := k.cfg
	cfg.LagGroups = groups
	b, err := kafkabus.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	h, err := b.Health(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range h.Lag {
		if len(o.topics) > 0 && !slices.Contains(o.topics, l.Topic) {
			continue
		}
		rep.addLag(l.Group, l.Topic, "", l.Partition, l.Lag, l.Committed, l.End, l.Consumers)
	}
	return rep, nil
}
