package benchcore

import (
	"context"
	"errors"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// peerMemoryDriver runs watermill's GoChannel, the in-process Pub/Sub.
// GoChannel has no consumer groups (every subscriber receives every
// message), so one Router handler consumes: the Router runs each message in
// a goroutine of its own. Its output channel buffers MaxInFlight messages.
// With Options.Backlog it is persistent (it keeps every message, and a
// subscriber replays them all), which is the only way it holds events
// published before anyone subscribes.
type peerMemoryDriver struct {
	o   Options
	sdk *sdkParts
	p   *peerCodec

	gc     *gochannel.GoChannel
	router *peerRouter
}

// Prepare creates the GoChannel.
func (d *peerMemoryDriver) Prepare(context.Context) error {
	d.gc = gochannel.NewGoChannel(gochannel.Config{
		OutputChannelBuffer: int64(d.o.MaxInFlight),
		Persistent:          d.o.Backlog,
	}, watermill.NopLogger{})
	return nil
}

// Subscribe starts the Router's one handler.
func (d *peerMemoryDriver) Subscribe(ctx context.Context, c *Collector) error {
	r, err := startRouter(ctx, d.p, c, d.gc, d.o.Topic, 1)
	if err != nil {
		return err
	}
	d.router = r
	return nil
}

func (d *peerMemoryDriver) Start(ctx context.Context, c *Collector) error {
	if err := d.Prepare(ctx); err != nil {
		return err
	}
	return d.Subscribe(ctx, c)
}

func (d *peerMemoryDriver) Publish(_ context.Context, first uint64, n int, sent string) error {
	return peerPublish(d.p, d.sdk.workload, first, n, sent, func(m *message.Message, _ string) error {
		return d.gc.Publish(d.o.Topic, m)
	})
}

func (d *peerMemoryDriver) Close() error {
	errs := []error{d.router.close()}
	if d.gc != nil {
		errs = append(errs, d.gc.Close())
	}
	d.sdk.close()
	return errors.Join(errs...)
}

func (d *peerMemoryDriver) Workload() *Workload { return d.sdk.workload }
