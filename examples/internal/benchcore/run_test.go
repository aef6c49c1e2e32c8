package benchcore

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/testkit/kafkatest"
	"github.com/cosmic-horizons/events/testkit/rabbittest"
)

// checkClean asserts that a run of count events accounted for every one.
func checkClean(t *testing.T, r Result, count int64) {
	t.Helper()
	if r.Sent != count || r.Acked != count || r.Consumed != count || r.Lost != 0 || r.Duplicates != 0 || r.Foreign != 0 || r.Failed != 0 {
		t.Errorf("%s: sent %d acked %d consumed %d lost %d dup %d foreign %d failed %d; want %d, all accounted for",
			r.Label(), r.Sent, r.Acked, r.Consumed, r.Lost, r.Duplicates, r.Foreign, r.Failed, count)
	}
	if r.EndToEnd.Count != count || r.Publish.Count != count {
		t.Errorf("%s: %d publish and %d publish→consume samples, want %d", r.Label(), r.Publish.Count, r.EndToEnd.Count, count)
	}
	if r.Throughput <= 0 || r.PublishRate <= 0 || r.BodyBytes < 300 || r.CPUSeconds <= 0 || r.PeakRSSMiB <= 0 {
		t.Errorf("%s: figures missing: %+v", r.Label(), r)
	}
}

func runModes(t *testing.T, s *Session, count int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, mode := range []string{ModeRaw, ModeSDK} {
		out, err := s.RunOnce(ctx, mode, 0)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if out.PublishErr != nil {
			t.Errorf("%s: publish error %v", mode, out.PublishErr)
		}
		if out.Result.Mode != mode || out.Result.Backend != s.Options.Backend {
			t.Errorf("result labelled %s", out.Result.Label())
		}
		checkClean(t, out.Result, count)
	}
}

func TestMemoryRuns(t *testing.T) {
	var log, progress bytes.Buffer
	s := &Session{
		Options: Options{Backend: BackendMemory, Subscribers: 3},
		Run:     RunConfig{Count: 3000, Publishers: 4, Batch: 3, Progress: &progress, ProgressInterval: time.Hour},
		Log:     &log,
	}
	runModes(t, s, 3000)
	if !strings.Contains(log.String(), "memory/sdk") || !strings.Contains(progress.String(), "consumed 3,000") {
		t.Errorf("log %q, progress %q", log.String(), progress.String())
	}
}

func TestKafkaRuns(t *testing.T) {
	c := kafkatest.NewCluster(t)
	s := &Session{Options: Options{Backend: BackendKafka, Brokers: c.Addrs(), Partitions: 4}, Run: RunConfig{Count: 2000, Publishers: 8}}
	runModes(t, s, 2000)
}

func TestRabbitRuns(t *testing.T) {
	url := rabbittest.URL(t)
	s := &Session{Options: Options{Backend: BackendRabbitMQ, URLs: []string{url}, QueueType: "classic"}, Run: RunConfig{Count: 2000, Publishers: 8}}
	runModes(t, s, 2000)
}

// lossy publishes nothing for every tenth event but reports it confirmed:
// the loss a broken backend would cause.
type lossy struct{ Driver }

func (l lossy) Publish(ctx context.Context, first uint64, n int, sent string) error {
	if n != 1 {
		return errors.New("lossy: batches of 1 only")
	}
	if first%10 == 0 {
		return nil
	}
	return l.Driver.Publish(ctx, first, n, sent)
}

func TestRunReportsLoss(t *testing.T) {
	run := NewRunID()
	drv, err := NewDriver(Options{Backend: BackendMemory, Mode: ModeRaw, Topic: "lossy"}, run)
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	res, perr, err := Run(context.Background(), RunConfig{Count: 1000, Drain: 3 * time.Second}, lossy{drv}, run, Result{Backend: BackendMemory, Mode: ModeRaw})
	if err != nil || perr != nil {
		t.Fatalf("Run: %v, %v", err, perr)
	}
	if res.Lost != 100 || res.Acked != 1000 || res.Consumed != 900 || res.OK() {
		t.Fatalf("acked %d consumed %d lost %d OK %v; want 1000, 900, 100, false", res.Acked, res.Consumed, res.Lost, res.OK())
	}
}

func TestRunByDurationAtRate(t *testing.T) {
	run := NewRunID()
	drv, err := NewDriver(Options{Backend: BackendMemory, Mode: ModeSDK, Topic: "paced"}, run)
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	// 2,000 events/s for 500ms: the schedule admits events 0..1000 at
	// most, whatever the machine's speed (a slow one sends fewer).
	res, _, err := Run(context.Background(), RunConfig{Rate: 2000, Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond}, drv, run, Result{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent == 0 || res.Sent > 1001 || res.Lost != 0 || res.Consumed != res.Acked {
		t.Fatalf("sent %d acked %d consumed %d lost %d", res.Sent, res.Acked, res.Consumed, res.Lost)
	}
	if res.EndToEnd.Count >= res.Consumed || res.Warmup != 0.1 || res.OfferedRate != 2000 {
		t.Errorf("warm-up: %d latency samples of %d events, warmup %v, rate %v", res.EndToEnd.Count, res.Consumed, res.Warmup, res.OfferedRate)
	}
}

func TestRunAndOptionsValidate(t *testing.T) {
	for _, rc := range []RunConfig{{}, {Count: -1}, {Count: 10, Publishers: -1}, {Duration: time.Second, Warmup: 2 * time.Second}, {Count: 10, Rate: -5}} {
		if err := rc.Validate(); !errors.Is(err, ErrRunConfig) {
			t.Errorf("%+v: Validate = %v, want ErrRunConfig", rc, err)
		}
	}
	for _, o := range []Options{
		{Backend: "nats", Mode: ModeSDK, Topic: "t"},
		{Backend: BackendKafka, Mode: ModeSDK, Topic: "t"},
		{Backend: BackendRabbitMQ, Mode: ModeRaw, Topic: "t"},
		{Backend: BackendMemory, Mode: "fast", Topic: "t"},
		{Backend: BackendMemory, Mode: ModeSDK},
		{Backend: BackendMemory, Mode: ModeSDK, Topic: "t", Subscribers: -1},
		{Backend: BackendMemory, Mode: ModeSDK, Topic: "t", Workload: WorkloadConfig{Keys: -1}},
	} {
		if _, err := NewDriver(o, NewRunID()); !errors.Is(err, ErrOptions) {
			t.Errorf("%+v: NewDriver = %v, want ErrOptions", o, err)
		}
	}
}
