// Package platform wires the reference services to their two event paths:
// the durable path (Kafka: job lifecycle, metrics, notifications, audit and
// health topics) and the real-time path (RabbitMQ, for live views).
//
// With no addresses configured it runs on an embedded default that needs no
// server: an in-process Kafka cluster speaking the real wire protocol
// (devkafka, on kfake) for the durable path and the in-memory bus
// (broker/memory) for the real-time path. --kafka-brokers and --amqp-urls
// (or KAFKA_BROKERS and AMQP_URLS) switch each path to real servers.
package platform

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/devkafka"
	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
	"github.com/cosmic-horizons/events/examples/internal/opsview"
	"github.com/cosmic-horizons/events/internal/envconf"
	"github.com/cosmic-horizons/events/kafkabus"
	"github.com/cosmic-horizons/events/rabbitbus"
)

// Options select the brokers of both paths.
type Options struct {
	// KafkaBrokers are the durable path's bootstrap addresses; empty runs
	// an embedded in-process Kafka cluster.
	KafkaBrokers []string
	// AMQPURLs are the real-time path's RabbitMQ node URLs; empty runs the
	// in-memory bus (which only this process can reach).
	AMQPURLs []string
	// MemoryOnly runs the durable path on the in-memory backend as well
	// (no Kafka at all): the fastest setup, for tests. KafkaBrokers is
	// then ignored.
	MemoryOnly bool
	// Hooks observe every backend's pipelines (e.g. the health service's
	// signal recorder, OpenTelemetry metrics).
	Hooks []broker.Hook
	// BusHooks are given to both Buses (events.WithHooks), e.g.
	// otelevents' tracing, which needs to see publishing as a Bus does.
	BusHooks []any
	// Source is the ce_source of the events this process publishes.
	Source string
	// Logger; default discard.
	Logger *slog.Logger
	// LagGroups are consumer groups of other processes whose lag the
	// durable path's health reports (kafkabus.Config.LagGroups); with
	// LagDiscover it reports every group the Kafka cluster lists
	// (kafkabus.Config.LagDiscover). RabbitLagGroups are durable RabbitMQ
	// groups whose queue depth the real-time path's health reports
	// (rabbitbus.Config.LagGroups). For a health service.
	LagGroups       []string
	LagDiscover     bool
	RabbitLagGroups []rabbitbus.LagGroup
	// Step, if set, is told what Open is starting as it starts it (e.g.
	// "starting the embedded Kafka cluster (3 brokers)"), so that a program
	// can say why it is not ready yet.
	Step func(what string)
}

func (o Options) step(what string) {
	if o.Step != nil {
		o.Step(what)
	}
}

// RegisterFlags adds --kafka-brokers and --amqp-urls to fs, defaulting to
// the KAFKA_BROKERS and AMQP_URLS environment variables.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.Func("kafka-brokers", "comma-separated Kafka bootstrap addresses (env KAFKA_BROKERS); empty: an embedded in-process Kafka cluster", func(s string) error {
		o.KafkaBrokers = envconf.Split(s)
		return nil
	})
	fs.Func("amqp-urls", "comma-separated RabbitMQ node URLs (env AMQP_URLS); empty: the in-memory bus", func(s string) error {
		o.AMQPURLs = envconf.Split(s)
		return nil
	})
	if o.KafkaBrokers == nil {
		o.KafkaBrokers = envconf.Split(os.Getenv("KAFKA_BROKERS"))
	}
	if o.AMQPURLs == nil {
		o.AMQPURLs = envconf.Split(os.Getenv("AMQP_URLS"))
	}
}

// Platform holds both paths, ready for services.
type Platform struct {
	// Registry of the event types both Buses know.
	Registry *eventmodels.Registry

	// Durable publishes to and subscribes on the durable path; Replayer
	// reads its log back.
	Durable        *events.Bus
	DurableBackend broker.Backend
	Replayer       broker.Replayer

	// Realtime publishes to and subscribes on the real-time path.
	Realtime        *events.Bus
	RealtimeBackend broker.Backend

	// Signals records every consumer's handler outcomes and latency (it is
	// a hook of every backend), for the health service's alerts.
	Signals *healthsvc.Recorder

	// Ops counts what this process publishes and consumes per topic (it
	// is a hook of every backend), for the operator view (package
	// opsview).
	Ops *opsview.Collector

	// Health lists the health checkers of both paths by name ("kafka",
	// "rabbitmq" or "memory").
	Health map[string]broker.HealthChecker

	// Embedded is the in-process Kafka cluster when no brokers were given,
	// else nil. Its Addrs let other processes join it.
	Embedded *devkafka.Cluster
	// KafkaAddrs are the durable path's bootstrap addresses (embedded or
	// given); RealtimeDesc says what the real-time path is.
	KafkaAddrs   []string
	RealtimeDesc string

	closers []func() error
}

// Open connects both paths (starting the embedded ones) and makes sure the
// platform's Kafka topics and their dead-letter topics exist.
func Open(ctx context.Context, o Options) (_ *Platform, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Source == "" {
		o.Source = "cosmic-horizons"
	}
	p := &Platform{Registry: eventmodels.NewRegistry(), Health: map[string]broker.HealthChecker{}, Signals: healthsvc.NewRecorder(healthsvc.RecorderConfig{}), Ops: opsview.NewCollector()}
	o.Hooks = append(o.Hooks[:len(o.Hooks):len(o.Hooks)], p.Signals, p.Ops)
	defer func() {
		if err != nil {
			_ = p.Close()
		}
	}()
	if o.MemoryOnly {
		o.step("starting the in-memory durable path")
		mb, err := memory.New(ctx, memory.Config{Topics: events.PlatformTopics(), Hooks: o.Hooks})
		if err != nil {
			return nil, err
		}
		p.closers = append(p.closers, mb.Close)
		p.DurableBackend, p.Health["memory-durable"] = mb, mb
		if r, ok := any(mb).(broker.Replayer); ok {
			p.Replayer = r
		}
	} else if err := p.openKafka(ctx, o); err != nil {
		return nil, err
	}

	if len(o.AMQPURLs) == 0 {
		o.step("starting the in-memory real-time bus")
		mb, err := memory.New(ctx, memory.Config{Topics: events.PlatformTopics(), Hooks: o.Hooks})
		if err != nil {
			return nil, err
		}
		p.closers = append(p.closers, mb.Close)
		p.RealtimeBackend, p.Health["memory"] = mb, mb
		p.RealtimeDesc = "in-memory bus"
	} else {
		o.step("connecting to RabbitMQ at " + strings.Join(redact(o.AMQPURLs), ","))
		cfg := rabbitbus.Config{URLs: o.AMQPURLs, Logger: o.Logger.With("path", "rabbitmq"), Hooks: o.Hooks, LagGroups: o.RabbitLagGroups}
		rc, err := rabbitbus.New(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("platform: RabbitMQ: %w", err)
		}
		p.closers = append(p.closers, rc.Close)
		p.RealtimeBackend, p.Health["rabbitmq"] = rc, rc
		p.RealtimeDesc = "RabbitMQ " + strings.Join(redact(o.AMQPURLs), ",")
	}

	busOpts := []events.Option{events.WithRegistry(p.Registry), events.WithSource(o.Source), events.WithHooks(o.BusHooks...)}
	if p.Durable, err = events.NewBus(p.DurableBackend, busOpts...); err != nil {
		return nil, err
	}
	if p.Realtime, err = events.NewBus(p.RealtimeBackend, busOpts...); err != nil {
		return nil, err
	}
	return p, nil
}

// openKafka starts or connects the durable path on Kafka.
func (p *Platform) openKafka(ctx context.Context, o Options) error {
	p.KafkaAddrs = o.KafkaBrokers
	if len(p.KafkaAddrs) == 0 {
		o.step("starting the embedded Kafka cluster (3 brokers, in this process)")
		c, err := devkafka.Start(3)
		if err != nil {
			return fmt.Errorf("platform: embedded Kafka: %w", err)
		}
		p.Embedded = c
		p.closers = append(p.closers, func() error { c.Close(); return nil })
		p.KafkaAddrs = c.Addrs()
	}
	cfg := kafkabus.Config{Brokers: p.KafkaAddrs, Logger: o.Logger.With("path", "kafka"), Hooks: o.Hooks,
		LagGroups: o.LagGroups, LagDiscover: o.LagDiscover}
	o.step(fmt.Sprintf("creating the %d platform topics and their dead-letter topics on Kafka at %s", len(events.PlatformTopics()), strings.Join(p.KafkaAddrs, ",")))
	admin, err := kafkabus.NewAdmin(ctx, cfg)
	if err != nil {
		return fmt.Errorf("platform: Kafka admin: %w", err)
	}
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = admin.EnsureTopics(ectx, events.PlatformTopics(), kafkabus.WithDeadLetterTopics())
	cancel()
	_ = admin.Close()
	if err != nil && !errors.Is(err, kafkabus.ErrTopicDrift) {
		return fmt.Errorf("platform: Kafka topics: %w", err)
	}
	if err != nil {
		o.Logger.Warn("Kafka topics differ from the platform's specification", "error", err)
	}
	o.step("connecting the Kafka producer and consumers")
	kb, err := kafkabus.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("platform: Kafka: %w", err)
	}
	p.closers = append(p.closers, kb.Close)
	p.DurableBackend, p.Health["kafka"] = kb, kb
	if r, ok := any(kb).(broker.Replayer); ok {
		p.Replayer = r
	}

	return nil
}

// redact hides the password of each URL.
func redact(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		if at := strings.LastIndex(u, "@"); at > 0 {
			if scheme := strings.Index(u, "://"); scheme > 0 && scheme < at {
				if colon := strings.Index(u[scheme+3:at], ":"); colon >= 0 {
					u = u[:scheme+3+colon+1] + "***" + u[at:]
				}
			}
		}
		out[i] = u
	}
	return out
}

// Close closes both paths in reverse order of opening (backends drain their
// consumers first), then stops the embedded cluster.
func (p *Platform) Close() error {
	var errs []error
	for i := len(p.closers) - 1; i >= 0; i-- {
		if err := p.closers[i](); err != nil && !errors.Is(err, broker.ErrClosed) {
			errs = append(errs, err)
		}
	}
	p.closers = nil
	return errors.Join(errs...)
}
