package healthsvc_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
	"github.com/cosmic-horizons/events/kafkabus"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// TestKafkaBrokerRemoved runs kafkabus against an in-process 3-broker
// cluster. Removing a broker drops it from Kafka's metadata, so kafkabus
// reports the 2 that are left as all reachable; the service, having seen 3
// answer, raises one broker_down alert (the cluster is degraded, still
// ready). Adding a broker back clears it once.
func TestKafkaBrokerRemoved(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	b, err := kafkabus.New(ctx, kafkabus.Config{
		Brokers: cluster.Addrs(), ClientID: "healthsvc-test", RetryBackoff: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	s, pub := newService(t, healthsvc.Config{Checkers: map[string]broker.HealthChecker{"kafka": b}, Clock: time.Now}, nil)
	h := s.HTTPHandler()

	if rep := check(t, s); len(rep.Raised) != 0 || !rep.Ready {
		t.Fatalf("3 brokers: raised %+v, ready %v, backends %+v", rep.Raised, rep.Ready, rep.Backends)
	}
	// kfake's controller is its highest broker and is never re-elected:
	// removing it would leave the cluster without a controller for good
	// (unlike Kafka). Remove the lowest.
	if err := cluster.RemoveBroker(cluster.BrokerIDs()[0]); err != nil {
		t.Fatal(err)
	}

	// The client may first meet the closed connection (the backend
	// unreachable for a round) before it reads the new metadata: either
	// way one broker_down alert, and rounds go on until the metadata shows
	// the two brokers left.
	var raised []healthsvc.Alert
	var rep healthsvc.Report
	for i := 0; ; i++ {
		rep = check(t, s)
		raised = append(raised, rep.Raised...)
		if rep.Backends[0].Degraded && !rep.Backends[0].Down {
			break
		}
		if i == 20 {
			t.Fatalf("after 20 rounds the backend is %+v, want degraded", rep.Backends[0])
		}
	}
	if len(raised) != 1 || raised[0].Kind != healthsvc.AlertBrokerDown || raised[0].Backend != "kafka" {
		t.Fatalf("raised %+v, want one broker_down for kafka", raised)
	}
	if a := s.Alerts(); len(a) != 1 || !strings.Contains(a[0].Message, "2 of 3 expected brokers") {
		t.Fatalf("active %+v, want broker_down saying 2 of 3 expected brokers answer", a)
	}
	if code, body := get(t, h, "/readyz"); code != http.StatusOK || !strings.Contains(body, "2 of 3 expected brokers") {
		t.Fatalf("/readyz with a broker missing = %d %s; want 200 listing the degradation", code, body)
	}

	if _, err := cluster.AddBroker(); err != nil {
		t.Fatal(err)
	}
	var cleared []healthsvc.Alert
	for i := 0; len(cleared) == 0; i++ {
		rep := check(t, s)
		if len(rep.Raised) != 0 {
			t.Fatalf("raised %+v after the broker came back", rep.Raised)
		}
		cleared = append(cleared, rep.Cleared...)
		if i == 20 {
			t.Fatalf("after 20 rounds nothing cleared; backend %+v", rep.Backends[0])
		}
	}
	if len(cleared) != 1 || cleared[0].Kind != healthsvc.AlertBrokerDown {
		t.Fatalf("cleared %+v, want broker_down", cleared)
	}
	if rep := check(t, s); len(rep.Raised)+len(rep.Cleared)+len(rep.Active) != 0 {
		t.Fatalf("after the clear: %+v", rep)
	}
	ns := notesOf(notifications(pub), healthsvc.AlertBrokerDown)
	if len(ns) != 2 || !strings.HasPrefix(ns[0].Title, "[FIRING]") || !strings.HasPrefix(ns[1].Title, "[RESOLVED]") {
		t.Fatalf("%d broker_down notifications, want a start and a clear", len(ns))
	}
}
