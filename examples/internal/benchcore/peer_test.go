package benchcore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
	"github.com/cosmic-horizons/events/testkit/rabbittest"
)

// runDrains runs publish-then-drain in every mode and checks that each
// accounted for every event.
func runDrains(t *testing.T, s *Session, count int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, mode := range Modes {
		out, err := s.RunDrainOnce(ctx, mode, 0)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if out.PublishErr != nil {
			t.Errorf("%s: publish error %v", mode, out.PublishErr)
		}
		r := out.Result
		if r.Mode != mode || r.Scenario != ScenarioDrain {
			t.Errorf("result labelled %s", r.Label())
		}
		checkClean(t, r, count)
		if r.DrainRate <= 0 || r.DrainSeconds < r.FirstEventSeconds || r.FirstEventSeconds <= 0 ||
			r.PublishCPUSeconds <= 0 || r.DrainCPUSeconds <= 0 || r.Throughput != r.DrainRate {
			t.Errorf("%s: drain figures: rate %v drain %vs first %vs cpu %v+%v", r.Label(), r.DrainRate, r.DrainSeconds,
				r.FirstEventSeconds, r.PublishCPUSeconds, r.DrainCPUSeconds)
		}
	}
}

func TestPeerMemoryRuns(t *testing.T) {
	s := &Session{Options: Options{Backend: BackendMemory}, Run: RunConfig{Count: 3000, Publishers: 8}}
	ctx := context.Background()
	out, err := s.RunOnce(ctx, ModeWatermill, 0)
	if err != nil || out.PublishErr != nil {
		t.Fatalf("RunOnce: %v, %v", err, out.PublishErr)
	}
	if out.Result.Label() != "memory/watermill" || out.Result.Concurrency != 0 {
		t.Errorf("result %s, concurrency %d", out.Result.Label(), out.Result.Concurrency)
	}
	checkClean(t, out.Result, 3000)
	runDrains(t, s, 3000)
}

func TestPeerKafkaRuns(t *testing.T) {
	c := kafkatest.NewCluster(t)
	s := &Session{Options: Options{Backend: BackendKafka, Brokers: c.Addrs(), Partitions: 4}, Run: RunConfig{Count: 2000, Publishers: 8}}
	out, err := s.RunOnce(context.Background(), ModeWatermill, 0)
	if err != nil || out.PublishErr != nil {
		t.Fatalf("RunOnce: %v, %v", err, out.PublishErr)
	}
	checkClean(t, out.Result, 2000)
	s.Options.Subscribers = 1
	runDrains(t, s, 2000)
}

func TestPeerRabbitRuns(t *testing.T) {
	url := rabbittest.URL(t)
	s := &Session{Options: Options{Backend: BackendRabbitMQ, URLs: []string{url}, QueueType: "classic"}, Run: RunConfig{Count: 2000, Publishers: 8}}
	out, err := s.RunOnce(context.Background(), ModeWatermill, 0)
	if err != nil || out.PublishErr != nil {
		t.Fatalf("RunOnce: %v, %v", err, out.PublishErr)
	}
	checkClean(t, out.Result, 2000)
	runDrains(t, s, 2000)
}

// faulty wraps a peer driver: it sends nothing for events whose number
// is a multiple of drop but reports them confirmed (a lost event), and
// sends those whose number is a multiple of dup twice.
type faulty struct {
	*peerMemoryDriver
	drop, dup uint64
}

func (f faulty) Publish(ctx context.Context, first uint64, n int, sent string) error {
	if n != 1 {
		return errors.New("faulty: batches of 1 only")
	}
	if first%f.drop == 0 {
		return nil
	}
	if first%f.dup == 0 {
		if err := f.peerMemoryDriver.Publish(ctx, first, n, sent); err != nil {
			return err
		}
	}
	return f.peerMemoryDriver.Publish(ctx, first, n, sent)
}

func newPeerMemory(t *testing.T, run RunID, backlog bool) *peerMemoryDriver {
	t.Helper()
	drv, err := NewDriver(Options{Backend: BackendMemory, Mode: ModeWatermill, Topic: "faulty", Backlog: backlog}, run)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = drv.Close() })
	return drv.(*peerMemoryDriver)
}

// TestPeerAccountingCatchesLossAndDuplicates: the peer arm's consumer
// feeds the same ledger as the others, so an event confirmed but never
// delivered is lost and one delivered twice is a duplicate, in both
// scenarios.
func TestPeerAccountingCatchesLossAndDuplicates(t *testing.T) {
	cfg := RunConfig{Count: 1000, Publishers: 4, Drain: 2 * time.Second}
	for _, drain := range []bool{false, true} {
		run := NewRunID()
		drv := faulty{peerMemoryDriver: newPeerMemory(t, run, drain), drop: 10, dup: 7}
		runner := Run
		if drain {
			runner = RunDrain
		}
		res, perr, err := runner(context.Background(), cfg, drv, run, Result{Backend: BackendMemory, Mode: ModeWatermill})
		if err != nil || perr != nil {
			t.Fatalf("drain %v: %v, %v", drain, err, perr)
		}
		// 100 multiples of 10 dropped; of the 143 multiples of 7 (0 … 994),
		// the 128 that are not multiples of 70 are sent twice.
		if res.Acked != 1000 || res.Consumed != 900 || res.Lost != 100 || res.Duplicates != 128 || res.OK() {
			t.Errorf("drain %v: acked %d consumed %d lost %d dup %d; want 1000, 900, 100, 128",
				drain, res.Acked, res.Consumed, res.Lost, res.Duplicates)
		}
	}
}

// TestPeerMessageCarriesTheBusHeaders: the peer's message has the body
// and the CloudEvents headers the Bus writes for the same event, and
// decodes back to it.
func TestPeerMessageCarriesTheBusHeaders(t *testing.T) {
	run := NewRunID()
	drv := newPeerMemory(t, run, false)
	w := drv.Workload()
	for n := range uint64(mixPeriod) {
		m, key, err := drv.p.message(w, n, "42")
		if err != nil {
			t.Fatal(err)
		}
		want, err := drv.sdk.bus.Message(w.Event(n))
		if err != nil {
			t.Fatal(err)
		}
		if key != want.Key || m.UUID != run.EventID(n).String() || len(m.Payload) != len(want.Body) {
			t.Fatalf("event %d: key %q uuid %s body %d bytes; bus: key %q body %d bytes", n, key, m.UUID, len(m.Payload), want.Key, len(want.Body))
		}
		for _, h := range want.Headers {
			if h.Key == broker.HeaderTime {
				continue // the two events were built at different instants
			}
			if got := m.Metadata.Get(h.Key); got != h.Value {
				t.Errorf("event %d: %s = %q, bus writes %q", n, h.Key, got, h.Value)
			}
		}
		if len(m.Metadata) != len(want.Headers)+1 || m.Metadata.Get(HeaderSent) != "42" {
			t.Errorf("event %d: metadata %v, want the bus's %d headers and %s", n, m.Metadata, len(want.Headers), HeaderSent)
		}
		e, err := drv.p.decode(m)
		if err != nil || e.Envelope().EventID != run.EventID(n) {
			t.Fatalf("event %d: decode = %v, %v", n, e, err)
		}
	}
	bad := message.NewMessage("x", []byte("not avro"))
	if _, err := drv.p.decode(bad); !errors.Is(err, errNotAnEvent) {
		t.Errorf("decode without ce_type = %v, want errNotAnEvent", err)
	}
	bad.Metadata.Set(broker.HeaderType, "job.submitted")
	if _, err := drv.p.decode(bad); err == nil {
		t.Error("decode of a body that is not Avro succeeded")
	}
}
