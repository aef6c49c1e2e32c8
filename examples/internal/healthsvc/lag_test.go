package healthsvc_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
)

// TestLagAlertPausedConsumer pauses a memory consumer (its handler waits
// on a gate) while 1,500 messages arrive: a round raises exactly one
// consumer_lag alert, and further rounds do not repeat it. Once the gate
// opens and the backlog is handled, the alert clears exactly once (after
// the two good rounds of the default hysteresis).
func TestLagAlertPausedConsumer(t *testing.T) {
	b := newMemory(t, memory.Config{})
	const topic, group, total = "health-lag", "paused", 1500

	gate := make(chan struct{})
	allHandled := make(chan struct{})
	var handled atomic.Int64
	c, err := b.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: group, Concurrency: 4},
		func(ctx context.Context, m *broker.Message) error {
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
			if handled.Add(1) == total {
				close(allHandled)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	opened := false
	t.Cleanup(func() {
		if !opened {
			close(gate)
		}
		_ = c.Close()
	})
	msgs := make([]*broker.Message, total)
	for i := range msgs {
		msgs[i] = &broker.Message{Topic: topic, Key: fmt.Sprintf("k-%d", i%50), Body: []byte("x")}
	}
	if err := b.Publish(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}

	s, pub := newService(t, healthsvc.Config{Checkers: map[string]broker.HealthChecker{"memory": b}}, nil)
	rep := check(t, s)
	lag := ofKind(rep.Raised, healthsvc.AlertConsumerLag)
	if len(lag) != 1 || lag[0].Subject != group+"/"+topic || lag[0].Backend != "memory" {
		t.Fatalf("raised %+v, want one consumer_lag alert on %s/%s", rep.Raised, group, topic)
	}
	if lag[0].Value <= 1000 || lag[0].Value > total || lag[0].Severity != eventmodels.SeverityWarning {
		t.Errorf("lag alert %+v: want a value above 1000, at most %d, severity warning", lag[0], total)
	}
	if len(rep.Raised) != 1 {
		t.Errorf("raised %+v, want only the lag alert", rep.Raised)
	}
	for range 3 {
		if rep := check(t, s); len(rep.Raised)+len(rep.Cleared) != 0 || len(rep.Active) != 1 {
			t.Fatalf("a repeated round raised %+v, cleared %+v, active %+v; want no change and one active", rep.Raised, rep.Cleared, rep.Active)
		}
	}
	if n := len(notifications(pub)); n != 1 {
		t.Fatalf("%d notifications after 4 rounds of lag, want 1", n)
	}

	close(gate)
	opened = true
	select {
	case <-allHandled:
	case <-time.After(waitTimeout):
		t.Fatalf("only %d of %d messages handled", handled.Load(), total)
	}
	// A handler's return is acknowledged (and the group's position moves)
	// just after: wait for the backend to report the backlog gone.
	deadline := time.Now().Add(waitTimeout)
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	for {
		hr, err := b.Health(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if hr.TotalLag(group, topic) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag still %d after every message was handled", hr.TotalLag(group, topic))
		}
		<-poll.C
	}
	var cleared []healthsvc.Alert
	for i := range 3 {
		rep := check(t, s)
		if len(rep.Raised) != 0 {
			t.Fatalf("round %d after the backlog raised %+v", i, rep.Raised)
		}
		if i == 0 && len(rep.Cleared) != 0 {
			t.Fatalf("cleared after one good round, want two (hysteresis)")
		}
		cleared = append(cleared, rep.Cleared...)
	}
	if len(cleared) != 1 || cleared[0].Kind != healthsvc.AlertConsumerLag || cleared[0].Value >= 800 {
		t.Fatalf("cleared %+v, want the lag alert once with a lag below 800", cleared)
	}
	if got := s.Alerts(); len(got) != 0 {
		t.Errorf("active alerts after the clear: %+v", got)
	}
	wantFiringThenResolved(t, notifications(pub), healthsvc.AlertConsumerLag, eventmodels.SeverityWarning)
	if st := s.Stats(); st.AlertsRaised != 1 || st.AlertsCleared != 1 || st.NotificationsPublished != 2 {
		t.Errorf("stats %+v, want 1 raised, 1 cleared, 2 notifications", st)
	}
}

// TestLagHysteresis drives a group's lag around the threshold and checks
// the band and the count: one start, no flapping inside the band, one
// clear after two rounds below 800, and a fresh start only above 1000.
func TestLagHysteresis(t *testing.T) {
	steps := []struct {
		lag             int64
		raised, cleared int
		active          bool
		comment         string
	}{
		{1500, 1, 0, true, "above the threshold: start"},
		{950, 0, 0, true, "inside the band: hold"},
		{1100, 0, 0, true, "above again: still the same alert"},
		{999, 0, 0, true, "band"},
		{790, 0, 0, true, "below the clear line once"},
		{1001, 0, 0, true, "above: the good count restarts"},
		{790, 0, 0, true, "below once"},
		{700, 0, 1, false, "below twice: clear"},
		{950, 0, 0, false, "band while clear: nothing"},
		{1000, 0, 0, false, "at the threshold is not above it"},
		{1001, 1, 0, true, "above: a new start"},
	}
	fc := &checker{}
	s, pub := newService(t, healthsvc.Config{Checkers: map[string]broker.HealthChecker{"kafka": fc}}, nil)
	for i, st := range steps {
		fc.set(healthyReport(3, "g", "t", st.lag), nil)
		rep := check(t, s)
		if len(rep.Raised) != st.raised || len(rep.Cleared) != st.cleared || (len(rep.Active) == 1) != st.active {
			t.Fatalf("step %d (lag %d, %s): raised %d, cleared %d, active %d; want %d, %d, active %v",
				i, st.lag, st.comment, len(rep.Raised), len(rep.Cleared), len(rep.Active), st.raised, st.cleared, st.active)
		}
		if st.active && rep.Active[0].Value != float64(st.lag) {
			t.Errorf("step %d: active alert value %v, want the latest lag %d", i, rep.Active[0].Value, st.lag)
		}
	}
	if n := len(notesOf(notifications(pub), healthsvc.AlertConsumerLag)); n != 3 {
		t.Errorf("%d lag notifications, want 3 (start, clear, start)", n)
	}
}

// TestFireAfter needs two bad rounds in a row before an alert starts: a
// one-round spike raises nothing.
func TestFireAfter(t *testing.T) {
	fc := &checker{}
	s, _ := newService(t, healthsvc.Config{
		Checkers:   map[string]broker.HealthChecker{"kafka": fc},
		Hysteresis: healthsvc.Hysteresis{FireAfter: 2, ClearAfter: 1},
	}, nil)
	for i, lag := range []int64{5000, 10, 5000, 5000, 10} {
		fc.set(healthyReport(3, "g", "t", lag), nil)
		rep := check(t, s)
		wantRaised, wantCleared := 0, 0
		switch i {
		case 3:
			wantRaised = 1
		case 4:
			wantCleared = 1
		}
		if len(rep.Raised) != wantRaised || len(rep.Cleared) != wantCleared {
			t.Fatalf("round %d (lag %d): raised %d, cleared %d; want %d, %d", i, lag, len(rep.Raised), len(rep.Cleared), wantRaised, wantCleared)
		}
	}
}

// TestLagGroupGone: a group that stops being reported clears its alert,
// but not while its backend is unreachable (an unreachable backend says
// nothing about its groups).
func TestLagGroupGone(t *testing.T) {
	fc := &checker{}
	s, _ := newService(t, healthsvc.Config{Checkers: map[string]broker.HealthChecker{"kafka": fc}}, nil)
	fc.set(healthyReport(3, "g", "t", 5000), nil)
	if rep := check(t, s); len(ofKind(rep.Raised, healthsvc.AlertConsumerLag)) != 1 {
		t.Fatalf("raised %+v, want a lag alert", rep.Raised)
	}
	fc.set(nil, fmt.Errorf("connection refused"))
	for range 3 {
		if rep := check(t, s); len(ofKind(rep.Cleared, healthsvc.AlertConsumerLag)) != 0 {
			t.Fatalf("lag alert cleared while the backend was unreachable")
		}
	}
	noLag := healthyReport(3, "g", "t", 0)
	noLag.Lag = nil
	fc.set(noLag, nil)
	var cleared []healthsvc.Alert
	for range 2 {
		rep := check(t, s)
		cleared = append(cleared, rep.Cleared...)
	}
	if lag := ofKind(cleared, healthsvc.AlertConsumerLag); len(lag) != 1 || lag[0].Message != "no longer reported" {
		t.Fatalf("cleared %+v, want the lag alert, no longer reported", cleared)
	}
	if br := ofKind(cleared, healthsvc.AlertBrokerDown); len(br) != 1 {
		t.Fatalf("cleared %+v, want the broker_down alert too", cleared)
	}
}
