package benchcore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// Session runs configurations one after the other with what each run
// needs around it: a fresh topic per run, and for Kafka without brokers a
// fresh embedded cluster per run (kfake keeps every message in memory, so
// a long-lived cluster slows down).
type Session struct {
	// Options of every run; Mode and Topic are set per run.
	Options Options
	// Run is the load of every run; Rate is set per sweep step.
	Run RunConfig
	// KafkaExe, when not empty, runs each embedded Kafka cluster in a child
	// process of that executable (see StartKafka); empty runs it in
	// this process.
	KafkaExe string
	// Log receives one line per run (nil: none).
	Log io.Writer
}

// Outcome is one run of a Session.
type Outcome struct {
	Result Result
	// PublishErr is the first error a Publish call returned, if any.
	PublishErr error
}

// RunOnce runs one configuration in mode at rate (0: as fast as possible).
func (s *Session) RunOnce(ctx context.Context, mode string, rate float64) (Outcome, error) {
	return s.runOnce(ctx, mode, rate, false)
}

// RunDrainOnce runs one publish-then-drain (RunDrain) in mode, publishing
// at rate (0: as fast as possible).
func (s *Session) RunDrainOnce(ctx context.Context, mode string, rate float64) (Outcome, error) {
	return s.runOnce(ctx, mode, rate, true)
}

func (s *Session) runOnce(ctx context.Context, mode string, rate float64, drain bool) (Outcome, error) {
	run := NewRunID()
	o := s.Options
	o.Mode = mode
	o.Backlog = drain
	o.Topic = "eventbench-" + hex.EncodeToString(run[:])
	var k *Kafka
	if o.Backend == BackendKafka && len(o.Brokers) == 0 {
		var err error
		if k, err = StartKafka(ctx, s.KafkaExe); err != nil {
			return Outcome{}, err
		}
		o.Brokers = k.Brokers
	}
	closeKafka := func() (Usage, error) {
		if k == nil {
			return Usage{}, nil
		}
		return k.Close()
	}
	drv, err := NewDriver(o, run)
	if err != nil {
		_, _ = closeKafka()
		return Outcome{}, err
	}
	o = o.withDefaults()
	base := Result{
		Backend: o.Backend, Mode: mode, Subscribers: o.Subscribers, Concurrency: o.Concurrency,
		Partitions: o.Partitions, BodyBytes: drv.Workload().MeanBodySize(),
	}
	if o.Mode != ModeSDK {
		base.Concurrency = 0 // the client's own unit, not a setting
	}
	rc := s.Run
	rc.Rate = rate
	runner := Run
	if drain {
		runner = RunDrain
	}
	res, perr, err := runner(ctx, rc, drv, run, base)
	cerr := drv.Close()
	u, kerr := closeKafka()
	if k != nil && k.proc != nil {
		res.BrokerCPUSeconds = u.CPU.Seconds()
		res.BrokerPeakRSSMiB = float64(u.PeakRSS) / (1 << 20)
	}
	if err != nil {
		return Outcome{Result: res, PublishErr: perr}, err
	}
	if cerr != nil || kerr != nil {
		// The figures stand; a failing shutdown is worth knowing.
		err = fmt.Errorf("benchcore: closing %s: %w", res.Label(), errors.Join(cerr, kerr))
	}
	if s.Log != nil {
		fmt.Fprintf(s.Log, "%s: publish %s events/s, consume %s events/s, lost %d, dup %d, p50/p99 publish→consume %.2f/%.2f ms\n",
			res.Label(), num(res.PublishRate), num(res.Throughput), res.Lost, res.Duplicates, res.EndToEnd.P50, res.EndToEnd.P99)
	}
	return Outcome{Result: res, PublishErr: perr}, err
}
