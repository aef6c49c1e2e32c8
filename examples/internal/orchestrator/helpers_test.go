package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/orchestrator"
	"github.com/cosmic-horizons/events/testkit"
)

// deadline bounds every wait of these tests; generous, because the machine
// is shared.
const deadline = 30 * time.Second

// errBusDown is the failure the tests inject into the durable publisher.
var errBusDown = errors.New("bus down")

// recPublisher is the durable publisher of the tests: it passes messages to
// a memory broker, records every confirmed one in order, and lets a test
// fail or hold publishes (hook) to simulate an outage.
type recPublisher struct {
	inner broker.Publisher

	mu   sync.Mutex
	hook func(ctx context.Context, m *broker.Message) error
	msgs []*broker.Message
}

var _ broker.Publisher = (*recPublisher)(nil)

func newRecPublisher(inner broker.Publisher) *recPublisher { return &recPublisher{inner: inner} }

// setHook makes every later Publish call hook for each message first; a
// non-nil error fails the call with it and nothing is published. nil
// removes the hook.
func (p *recPublisher) setHook(h func(ctx context.Context, m *broker.Message) error) {
	p.mu.Lock()
	p.hook = h
	p.mu.Unlock()
}

func (p *recPublisher) Publish(ctx context.Context, msgs ...*broker.Message) error {
	p.mu.Lock()
	hook := p.hook
	p.mu.Unlock()
	if hook != nil {
		for _, m := range msgs {
			if err := hook(ctx, m); err != nil {
				return err
			}
		}
	}
	if err := p.inner.Publish(ctx, msgs...); err != nil {
		return err
	}
	p.mu.Lock()
	for _, m := range msgs {
		p.msgs = append(p.msgs, m.Clone())
	}
	p.mu.Unlock()
	return nil
}

func (p *recPublisher) Close() error { return p.inner.Close() }

// messages returns the confirmed messages of topic ("" every topic), in
// confirmation order.
func (p *recPublisher) messages(topic string) []*broker.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*broker.Message
	for _, m := range p.msgs {
		if topic == "" || m.Topic == topic {
			out = append(out, m.Clone())
		}
	}
	return out
}

// decodeAll decodes msgs, failing the test on any error.
func decodeAll(t *testing.T, dec *events.Bus, msgs []*broker.Message) []eventmodels.Event {
	t.Helper()
	out := make([]eventmodels.Event, 0, len(msgs))
	for _, m := range msgs {
		e, err := dec.Decode(m)
		if err != nil {
			t.Fatalf("decode %s/%s: %v", m.Topic, m.Key, err)
		}
		out = append(out, e)
	}
	return out
}

// rig is one orchestrator wired to a durable memory broker (through a
// recPublisher) and a real-time memory broker whose job-lifecycle is
// captured.
type rig struct {
	durableBroker *memory.Backend
	durable       *recPublisher
	realtime      *testkit.MessageCapture
	rtPub         *testkit.MockPublisher // nil unless the rig was built with one
	svc           *orchestrator.Service
	dec           *events.Bus // decodes only
}

type rigOption func(*rigConfig)

type rigConfig struct {
	cfg           orchestrator.Config
	durableBroker *memory.Backend
	durable       *recPublisher
	rtPub         *testkit.MockPublisher
	noRealtime    bool
}

// withDurable reuses a durable broker and recorder (a restarted instance).
func withDurable(b *memory.Backend, p *recPublisher) rigOption {
	return func(c *rigConfig) { c.durableBroker, c.durable = b, p }
}

// withRealtimePublisher publishes the real-time path through p.
func withRealtimePublisher(p *testkit.MockPublisher) rigOption {
	return func(c *rigConfig) { c.rtPub = p }
}

func withConfig(f func(*orchestrator.Config)) rigOption {
	return func(c *rigConfig) { f(&c.cfg) }
}

func newRig(t *testing.T, sim orchestrator.SimConfig, opts ...rigOption) *rig {
	t.Helper()
	rc := rigConfig{cfg: orchestrator.Config{Sim: sim, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond}}
	for _, o := range opts {
		o(&rc)
	}
	r := &rig{durableBroker: rc.durableBroker, durable: rc.durable, rtPub: rc.rtPub}
	if r.durableBroker == nil {
		// The platform's partition counts, as the durable Kafka log has them.
		r.durableBroker = newMemory(t, memory.Config{Topics: events.PlatformTopics()})
		r.durable = newRecPublisher(r.durableBroker)
	}
	var err error
	if r.dec, err = events.NewBus(nil); err != nil {
		t.Fatal(err)
	}
	durable, err := events.NewBus(r.durable)
	if err != nil {
		t.Fatal(err)
	}
	rc.cfg.Durable = durable
	if rc.cfg.Replayer == nil {
		rc.cfg.Replayer = r.durableBroker // the durable log, as Kafka would replay it
	}
	if !rc.noRealtime {
		var pub broker.Publisher = r.rtPub
		if r.rtPub == nil {
			rtBroker := newMemory(t, memory.Config{})
			r.realtime = testkit.NewMessageCapture()
			c, err := rtBroker.Subscribe(context.Background(), broker.Subscription{Topic: eventmodels.TopicJobLifecycle, Ephemeral: true}, r.realtime.Handle)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			pub = rtBroker
		}
		if rc.cfg.Realtime, err = events.NewBus(pub); err != nil {
			t.Fatal(err)
		}
	}
	if r.svc, err = orchestrator.New(rc.cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		if err := r.svc.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return r
}

// newMemory returns an in-memory backend closed when the test ends.
func newMemory(t *testing.T, cfg memory.Config) *memory.Backend {
	t.Helper()
	b, err := memory.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// lifecycle returns the confirmed job-lifecycle events of every job, in
// publish order.
func (r *rig) lifecycle(t *testing.T) map[string][]eventmodels.Event {
	t.Helper()
	return byJob(decodeAll(t, r.dec, r.durable.messages(eventmodels.TopicJobLifecycle)))
}

func byJob(evs []eventmodels.Event) map[string][]eventmodels.Event {
	out := map[string][]eventmodels.Event{}
	for _, e := range evs {
		out[e.Key()] = append(out[e.Key()], e)
	}
	return out
}

// spec is a valid job spec; i varies the project and resources.
func spec(i int) eventmodels.JobSpec {
	return eventmodels.JobSpec{
		ProjectID: fmt.Sprintf("proj-%d", i%3), Telescope: "ALMA", Instrument: "band-6",
		JobName: fmt.Sprintf("imaging-%d", i), Queue: "batch", Priority: i % 10,
		Resources: eventmodels.Resources{CPUCores: 1 + i%8, GPUs: i % 3, MemoryMB: 1024 * int64(1+i%4), WalltimeSeconds: 3600},
	}
}

func user(i int) string { return fmt.Sprintf("user-%d", i%4) }

// submitN submits n jobs in order and returns their IDs.
func submitN(t *testing.T, svc *orchestrator.Service, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		v, err := svc.Submit(context.Background(), user(i), spec(i))
		if err != nil {
			t.Fatalf("Submit %d: %v", i, err)
		}
		ids[i] = v.JobID
	}
	return ids
}

// transition is a lifecycle event as a status move.
type transition struct {
	from, to eventmodels.JobStatus
	progress float64
}

// transitionOf returns the move e makes from status cur.
func transitionOf(t *testing.T, cur eventmodels.JobStatus, e eventmodels.Event) transition {
	t.Helper()
	switch v := e.(type) {
	case *eventmodels.JobSubmitted:
		return transition{from: "", to: eventmodels.StatusSubmitted}
	case *eventmodels.JobQueued:
		return transition{from: cur, to: eventmodels.StatusQueued}
	case *eventmodels.JobStatusChanged:
		if v.FromStatus != cur {
			t.Errorf("%s %s: from_status %s, but the job was %s", v.JobID, v.EventType, v.FromStatus, cur)
		}
		return transition{from: v.FromStatus, to: v.ToStatus, progress: v.Progress}
	case *eventmodels.JobCompleted:
		return transition{from: cur, to: eventmodels.StatusCompleted, progress: 100}
	case *eventmodels.JobFailed:
		if v.FromStatus != cur {
			t.Errorf("%s %s: from_status %s, but the job was %s", v.JobID, v.EventType, v.FromStatus, cur)
		}
		return transition{from: v.FromStatus, to: eventmodels.StatusFailed}
	case *eventmodels.JobCancelled:
		if v.FromStatus != cur {
			t.Errorf("%s %s: from_status %s, but the job was %s", v.JobID, v.EventType, v.FromStatus, cur)
		}
		return transition{from: v.FromStatus, to: eventmodels.StatusCancelled}
	}
	t.Fatalf("not a lifecycle event: %T", e)
	return transition{}
}

// checkLifecycle checks that evs (one job's lifecycle events in order)
// start with job.submitted, make only legal moves, end terminal, share one
// correlation ID and key, and publish each move once. It returns the final
// status.
func checkLifecycle(t *testing.T, jobID string, evs []eventmodels.Event) eventmodels.JobStatus {
	t.Helper()
	if len(evs) == 0 {
		t.Errorf("%s: no lifecycle events", jobID)
		return ""
	}
	if _, ok := evs[0].(*eventmodels.JobSubmitted); !ok {
		t.Errorf("%s: first event is %s, want job.submitted", jobID, evs[0].Envelope().EventType)
	}
	corr := evs[0].Envelope().CorrelationID
	seen := map[transition]int{}
	var cur eventmodels.JobStatus
	for i, e := range evs {
		if e.Key() != jobID {
			t.Errorf("%s: event %d has key %q", jobID, i, e.Key())
		}
		if e.Envelope().CorrelationID != corr {
			t.Errorf("%s: event %d (%s) has correlation ID %s, want %s", jobID, i, e.Envelope().EventType, e.Envelope().CorrelationID, corr)
		}
		if i > 0 && cur.Terminal() {
			t.Errorf("%s: %s after terminal status %s", jobID, e.Envelope().EventType, cur)
		}
		tr := transitionOf(t, cur, e)
		if i > 0 && !eventmodels.CanTransition(cur, tr.to) {
			t.Errorf("%s: illegal transition %s → %s (event %d, %s)", jobID, cur, tr.to, i, e.Envelope().EventType)
		}
		if seen[tr]++; seen[tr] > 1 {
			t.Errorf("%s: transition %s → %s (progress %v) published %d times", jobID, tr.from, tr.to, tr.progress, seen[tr])
		}
		cur = tr.to
	}
	if !cur.Terminal() {
		t.Errorf("%s: ends in %s, not terminal", jobID, cur)
	}
	return cur
}

// eventIDs returns the event IDs of evs as strings, in order.
func eventIDs(evs []eventmodels.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Envelope().EventID.String()
	}
	return out
}
