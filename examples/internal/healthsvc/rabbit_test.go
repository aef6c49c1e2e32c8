package healthsvc_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
	"github.com/cosmic-horizons/events/rabbitbus"
	"github.com/cosmic-horizons/events/testkit/rabbittest"
)

// connEvents forwards rabbitbus connection state changes to a channel.
type connEvents chan rabbitbus.ConnectionEvent

func (c connEvents) OnConnection(ev rabbitbus.ConnectionEvent) {
	select {
	case c <- ev:
	default: // the test waits for specific states; never block the client
	}
}

// waitStates waits until both connections (publisher and subscriber) have
// reported state.
func (c connEvents) waitStates(t *testing.T, state rabbitbus.ConnState) {
	t.Helper()
	seen := map[string]bool{}
	timeout := time.After(waitTimeout)
	for len(seen) < 2 {
		select {
		case ev := <-c:
			if ev.State == state {
				seen[ev.Role] = true
			}
		case <-timeout:
			t.Fatalf("connections that reported %s: %v, want publisher and subscriber", state, seen)
		}
	}
}

// TestRabbitConnectionCut runs rabbitbus against the local RabbitMQ through
// a fault proxy. Cutting the connections (with new ones refused) raises one
// critical broker_down alert and makes /readyz 503 naming RabbitMQ; once
// the proxy lets the client reconnect, the alert clears once.
func TestRabbitConnectionCut(t *testing.T) {
	base := rabbittest.URL(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := rabbittest.NewProxy(t, u.Host)
	events := make(connEvents, 64)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	client, err := rabbitbus.New(ctx, rabbitbus.Config{
		URLs: []string{proxy.URL(base)}, QueueType: rabbitbus.QueueClassic,
		ReconnectBackoffMin: 20 * time.Millisecond, ReconnectBackoffMax: 200 * time.Millisecond,
		ConnectionName: "healthsvc-test", Hooks: []broker.Hook{events},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })

	s, pub := newService(t, healthsvc.Config{Checkers: map[string]broker.HealthChecker{"rabbitmq": client}, Clock: time.Now}, nil)
	h := s.HTTPHandler()
	if rep := check(t, s); len(rep.Raised) != 0 || !rep.Ready {
		t.Fatalf("connected: raised %+v, ready %v, backends %+v", rep.Raised, rep.Ready, rep.Backends)
	}

	proxy.Block() // reconnects fail until Unblock
	if n := proxy.Cut(); n < 2 {
		t.Fatalf("proxy cut %d connections, want publisher and subscriber", n)
	}
	events.waitStates(t, rabbitbus.StateLost)
	rep := check(t, s)
	down := ofKind(rep.Raised, healthsvc.AlertBrokerDown)
	if len(down) != 1 || down[0].Backend != "rabbitmq" || down[0].Severity != eventmodels.SeverityCritical ||
		!strings.Contains(down[0].Message, "disconnected") {
		t.Fatalf("raised %+v, want one critical broker_down for rabbitmq (disconnected)", rep.Raised)
	}
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "rabbitmq: rabbitmq publisher connection: disconnected") {
		t.Fatalf("/readyz while cut = %d %s", code, body)
	}
	if rep := check(t, s); len(rep.Raised)+len(rep.Cleared) != 0 {
		t.Fatalf("second round while cut: raised %+v, cleared %+v", rep.Raised, rep.Cleared)
	}

	proxy.Unblock()
	events.waitStates(t, rabbitbus.StateConnected)
	var cleared []healthsvc.Alert
	for range 3 {
		rep := check(t, s)
		if len(rep.Raised) != 0 || !rep.Ready {
			t.Fatalf("after reconnecting: raised %+v, ready %v (%q)", rep.Raised, rep.Ready, rep.NotReady)
		}
		cleared = append(cleared, rep.Cleared...)
	}
	if len(cleared) != 1 || cleared[0].Kind != healthsvc.AlertBrokerDown {
		t.Fatalf("cleared %+v, want broker_down once", cleared)
	}
	if code, body := get(t, h, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after reconnecting = %d %s", code, body)
	}
	wantFiringThenResolved(t, notifications(pub), healthsvc.AlertBrokerDown, eventmodels.SeverityCritical)
}
