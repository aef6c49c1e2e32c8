package benchcore

import (
	"context"
	"errors"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
)

// memoryDriver runs the in-process backend. Raw mode sends broker.Message
// straight to it (no Bus, no codec, no middleware, no hooks) and reads two
// headers: what the SDK layers cost on top of the broker itself.
type memoryDriver struct {
	o    Options
	sdk  *sdkParts
	br   *memory.Backend
	cons []broker.Consumer
}

func newMemoryDriver(o Options, sdk *sdkParts) *memoryDriver { return &memoryDriver{o: o, sdk: sdk} }

func (d *memoryDriver) Start(ctx context.Context, c *Collector) error {
	if err := d.Prepare(ctx); err != nil {
		return err
	}
	return d.Subscribe(ctx, c)
}

// Prepare creates the backend and its topic: a partition no group reads
// yet keeps its newest messages (up to its buffer) for groups to come.
func (d *memoryDriver) Prepare(ctx context.Context) error {
	br, err := memory.New(ctx, memory.Config{Topics: []broker.TopicSpec{{Name: d.o.Topic, Partitions: int32(d.o.Partitions)}}})
	if err != nil {
		return err
	}
	d.br = br
	if d.o.Mode == ModeSDK {
		return d.sdk.attach(d.br, d.o.Topic)
	}
	return nil
}

// Subscribe subscribes the group's members.
func (d *memoryDriver) Subscribe(ctx context.Context, c *Collector) error {
	for range d.o.Subscribers {
		sub := broker.Subscription{Topic: d.o.Topic, Group: d.o.Group, Concurrency: d.o.Concurrency, MaxInFlight: d.o.MaxInFlight}
		var cons broker.Consumer
		var err error
		if d.o.Mode == ModeSDK {
			cons, err = d.sdk.subscribe(ctx, sub, c)
		} else {
			cons, err = d.br.Subscribe(ctx, sub, rawHandler(d.sdk.raw, c))
		}
		if err != nil {
			return err
		}
		d.cons = append(d.cons, cons)
	}
	return nil
}

func (d *memoryDriver) Publish(ctx context.Context, first uint64, n int, sent string) error {
	if d.o.Mode == ModeSDK {
		return d.sdk.publish(ctx, first, n, sent)
	}
	msgs, err := d.sdk.rawMessages(first, n, sent)
	if err != nil {
		return err
	}
	return d.br.Publish(ctx, msgs...)
}

func (d *memoryDriver) Close() error {
	var errs []error
	for _, c := range d.cons {
		errs = append(errs, c.Close())
	}
	if d.br != nil {
		errs = append(errs, d.br.Close())
	}
	d.sdk.close()
	return errors.Join(errs...)
}

func (d *memoryDriver) Workload() *Workload { return d.sdk.workload }
