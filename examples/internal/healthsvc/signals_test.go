package healthsvc_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
)

// TestErrorRateAndLatencyAlerts feeds a service's signals from a fake
// source: 2 % failures raise error_rate, a P99 of 800ms raises p99_latency;
// figures inside the band hold; too few samples cannot start an alert;
// two good rounds clear both, once each.
func TestErrorRateAndLatencyAlerts(t *testing.T) {
	src := &signals{}
	s, pub := newService(t, healthsvc.Config{Signals: src}, nil)

	src.set(healthsvc.ServiceSignals{Service: "billing", Handled: 40, Failed: 40, P99: 2 * time.Second})
	if rep := check(t, s); len(rep.Raised) != 0 {
		t.Fatalf("80 attempts (under MinSamples 100) raised %+v", rep.Raised)
	}

	src.set(healthsvc.ServiceSignals{Service: "billing", Handled: 980, Failed: 20, P99: 800 * time.Millisecond})
	rep := check(t, s)
	rate, lat := ofKind(rep.Raised, healthsvc.AlertErrorRate), ofKind(rep.Raised, healthsvc.AlertLatency)
	if len(rate) != 1 || rate[0].Subject != "billing" || rate[0].Value != 0.02 || rate[0].Severity != eventmodels.SeverityError {
		t.Fatalf("error_rate raised %+v, want one for billing at 0.02, severity error", rate)
	}
	if len(lat) != 1 || lat[0].Subject != "billing" || lat[0].Value != 800 || lat[0].Threshold != 500 {
		t.Fatalf("p99_latency raised %+v, want one for billing at 800ms over 500ms", lat)
	}
	if rep.Status != broker.HealthDegraded {
		t.Errorf("status %s, want degraded", rep.Status)
	}

	// Inside the bands (0.8 %–1 %, 400–500ms): nothing changes.
	src.set(healthsvc.ServiceSignals{Service: "billing", Handled: 991, Failed: 9, P99: 450 * time.Millisecond})
	for range 3 {
		if rep := check(t, s); len(rep.Raised)+len(rep.Cleared) != 0 || len(rep.Active) != 2 {
			t.Fatalf("inside the band: raised %+v, cleared %+v, active %d", rep.Raised, rep.Cleared, len(rep.Active))
		}
	}
	src.set(healthsvc.ServiceSignals{Service: "billing", Handled: 1000, Failed: 1, P99: 20 * time.Millisecond})
	var cleared []healthsvc.Alert
	for range 3 {
		cleared = append(cleared, check(t, s).Cleared...)
	}
	if len(ofKind(cleared, healthsvc.AlertErrorRate)) != 1 || len(ofKind(cleared, healthsvc.AlertLatency)) != 1 || len(cleared) != 2 {
		t.Fatalf("cleared %+v, want error_rate and p99_latency once each", cleared)
	}
	ns := notifications(pub)
	wantFiringThenResolved(t, ns, healthsvc.AlertErrorRate, eventmodels.SeverityError)
	wantFiringThenResolved(t, ns, healthsvc.AlertLatency, eventmodels.SeverityWarning)
}

// TestQuietServiceClears: a service whose traffic stops (fewer attempts
// than MinSamples) counts as quiet and its alert clears.
func TestQuietServiceClears(t *testing.T) {
	src := &signals{}
	s, _ := newService(t, healthsvc.Config{Signals: src}, nil)
	src.set(healthsvc.ServiceSignals{Service: "audit", Handled: 100, Failed: 100})
	if rep := check(t, s); len(rep.Raised) != 1 {
		t.Fatalf("raised %+v, want error_rate", rep.Raised)
	}
	src.set(healthsvc.ServiceSignals{Service: "audit"})
	check(t, s)
	if rep := check(t, s); len(ofKind(rep.Cleared, healthsvc.AlertErrorRate)) != 1 {
		t.Fatalf("cleared %+v, want error_rate", rep.Cleared)
	}
}

// TestRecorderWindow records attempts in time slots and reads them back
// over windows: counts, error rate and percentiles cover the window's
// slots only, and old slots are reused.
func TestRecorderWindow(t *testing.T) {
	c := newClock()
	r := healthsvc.NewRecorder(healthsvc.RecorderConfig{Slot: time.Second, Span: 10 * time.Second, Clock: c.Now})
	fail := errors.New("boom")
	for i := range 100 {
		var err error
		if i%10 == 0 {
			err = fail
		}
		r.Record("orders", time.Duration(i+1)*time.Millisecond, err)
	}
	c.Advance(5 * time.Second)
	for range 50 {
		r.Record("orders", 2*time.Second, nil)
	}
	r.Record("billing", time.Millisecond, nil)

	got := r.Signals(10 * time.Second)
	if len(got) != 2 || got[0].Service != "billing" || got[1].Service != "orders" {
		t.Fatalf("services %+v, want billing and orders", got)
	}
	o := got[1]
	if o.Handled != 140 || o.Failed != 10 || o.Attempts() != 150 {
		t.Fatalf("orders over 10s: %+v, want 140 handled, 10 failed", o)
	}
	if o.P99 < 2*time.Second || o.P99 > 2030*time.Millisecond {
		t.Errorf("P99 over 10s = %v, want about 2s (a third of the attempts took 2s)", o.P99)
	}
	// The last 5 s hold only the slow attempts.
	if o := r.Signals(5 * time.Second)[1]; o.Handled != 50 || o.Failed != 0 {
		t.Errorf("orders over 5s: %+v, want the 50 slow attempts", o)
	}
	// 1 s window at 5 s: only the current slot.
	if o := r.Signals(time.Second)[1]; o.Attempts() != 50 {
		t.Errorf("orders over 1s: %d attempts, want 50", o.Attempts())
	}
	// The first slot falls out of a 10 s window after 10 s; its ring
	// position is reused.
	c.Advance(5 * time.Second)
	r.Record("orders", 3*time.Millisecond, nil)
	o = r.Signals(10 * time.Second)[1]
	if o.Handled != 51 || o.Failed != 0 {
		t.Errorf("orders after the first slot expired: %+v, want 51 handled, 0 failed", o)
	}
	if o.P50 < 2*time.Second {
		t.Errorf("P50 = %v, want 2s", o.P50)
	}
	// Windows longer than the span are cut to it.
	if o := r.Signals(time.Hour)[1]; o.Attempts() != 51 {
		t.Errorf("orders over an hour: %d attempts, want the span's 51", o.Attempts())
	}
	c.Advance(time.Minute)
	if o := r.Signals(10 * time.Second)[1]; o.Attempts() != 0 || o.P99 != 0 {
		t.Errorf("orders a minute later: %+v, want nothing", o)
	}
}

// TestRecorderHooks runs a memory subscription with the Recorder as a hook:
// a handler that fails every tenth message permanently produces the
// attempts, failures and dead letters the service then judges (10 % of
// attempts failed: an error_rate alert for the group).
func TestRecorderHooks(t *testing.T) {
	const total = 200
	rec := healthsvc.NewRecorder(healthsvc.RecorderConfig{})
	// Hooks run in order: when the counter has seen everything, so has
	// the Recorder.
	counter := &hookCounter{wantHandled: total, wantDead: total / 10, done: make(chan struct{})}
	b := newMemory(t, memory.Config{Hooks: []broker.Hook{rec, counter}})
	var seen atomic.Int64
	c, err := b.Subscribe(context.Background(), broker.Subscription{Topic: "rec", Group: "workers"},
		func(ctx context.Context, m *broker.Message) error {
			if n := seen.Add(1); n%10 == 0 {
				return broker.Permanent(fmt.Errorf("message %d is bad", n))
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	msgs := make([]*broker.Message, total)
	for i := range msgs {
		msgs[i] = &broker.Message{Topic: "rec", Key: "k", Body: []byte{byte(i)}}
	}
	if err := b.Publish(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	select {
	case <-counter.done:
	case <-time.After(waitTimeout):
		t.Fatalf("hooks saw %d attempts of %d", seen.Load(), total)
	}
	got := rec.Signals(time.Minute)
	if len(got) != 1 {
		t.Fatalf("signals %+v, want one service", got)
	}
	sig := got[0]
	if sig.Service != "workers" || sig.Attempts() != total || sig.Failed != total/10 ||
		sig.DeadLettered != total/10 || sig.DeadLetteredTotal != total/10 || sig.P99 <= 0 {
		t.Fatalf("signals %+v, want group workers: %d attempts, %d failed and dead-lettered, a P99", sig, total, total/10)
	}
	s, _ := newService(t, healthsvc.Config{Signals: rec}, nil)
	rep := check(t, s)
	if a := ofKind(rep.Raised, healthsvc.AlertErrorRate); len(a) != 1 || a[0].Subject != "workers" || a[0].Value != 0.1 {
		t.Fatalf("raised %+v, want error_rate 0.1 for workers", rep.Raised)
	}
}

// hookCounter closes done once it has seen wantHandled attempts and
// wantDead dead letters.
type hookCounter struct {
	mu                    sync.Mutex
	handled, dead         int
	wantHandled, wantDead int
	done                  chan struct{}
	closed                bool
}

func (h *hookCounter) OnHandled(context.Context, *broker.Message, time.Duration, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.handled++
	h.check()
}

func (h *hookCounter) OnDeadLetter(context.Context, *broker.Message, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dead++
	h.check()
}

func (h *hookCounter) check() {
	if !h.closed && h.handled >= h.wantHandled && h.dead >= h.wantDead {
		h.closed = true
		close(h.done)
	}
}

// TestRecorderMiddlewareAndDiscards: the middleware records attempts of
// handlers run outside a pipeline under the given service; discards are
// counted per message's group.
func TestRecorderMiddlewareAndDiscards(t *testing.T) {
	rec := healthsvc.NewRecorder(healthsvc.RecorderConfig{})
	h := rec.Middleware("replayer")(func(ctx context.Context, m *broker.Message) error {
		if m.Key == "bad" {
			return errors.New("bad")
		}
		return nil
	})
	ctx := context.Background()
	for _, k := range []string{"a", "bad", "b"} {
		_ = h(ctx, &broker.Message{Topic: "t", Key: k})
	}
	rec.OnDiscard(ctx, &broker.Message{Topic: "live", Delivery: broker.Delivery{Group: "dash"}}, errors.New("x"))
	rec.OnDiscard(ctx, &broker.Message{Topic: "live"}, errors.New("x"))
	got := rec.Signals(time.Minute)
	if len(got) != 3 || got[0].Service != "dash" || got[1].Service != "live" || got[2].Service != "replayer" {
		t.Fatalf("services %+v, want dash, live (topic: no group) and replayer", got)
	}
	if got[0].Discarded != 1 || got[1].Discarded != 1 || got[2].Handled != 2 || got[2].Failed != 1 {
		t.Fatalf("signals %+v", got)
	}
}
