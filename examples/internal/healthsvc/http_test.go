package healthsvc_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// TestHTTPHealthAndReadiness: /healthz is always 200; /readyz is 503
// before the first round, 200 while the backends answer, 503 naming the
// backend and why while one is unreachable, and 503 when the last round
// is stale; /report returns the last report.
func TestHTTPHealthAndReadiness(t *testing.T) {
	c := newClock()
	fc := &checker{}
	fc.set(healthyReport(3, "g", "t", 0), nil)
	s, _ := newService(t, healthsvc.Config{Checkers: map[string]broker.HealthChecker{"rabbitmq": fc}, Interval: time.Second}, c)
	h := s.HTTPHandler()

	if code, body := get(t, h, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no health check has completed") {
		t.Fatalf("/readyz before any round = %d %s", code, body)
	}
	check(t, s)
	if code, body := get(t, h, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz when healthy = %d %s", code, body)
	}

	fc.set(nil, errors.New("connection reset by peer"))
	check(t, s)
	code, body := get(t, h, "/readyz")
	var r healthsvc.Readiness
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	if code != http.StatusServiceUnavailable || r.Ready || len(r.Reasons) != 1 ||
		!strings.HasPrefix(r.Reasons[0], "rabbitmq: ") || !strings.Contains(r.Reasons[0], "connection reset by peer") || r.Active != 1 {
		t.Fatalf("/readyz while down = %d %+v; want 503 naming rabbitmq and the error, one alert", code, r)
	}

	fc.set(healthyReport(3, "g", "t", 0), nil)
	check(t, s)
	if code, body := get(t, h, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after recovery = %d %s", code, body)
	}
	c.Advance(4*time.Second + time.Millisecond)
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "stale after 4s") {
		t.Fatalf("/readyz with a stale round = %d %s", code, body)
	}

	code, body = get(t, h, "/report")
	var rep struct {
		Report healthsvc.Report
		Stats  healthsvc.Stats
	}
	if err := json.Unmarshal([]byte(body), &rep); err != nil || code != http.StatusOK {
		t.Fatalf("/report = %d %q: %v", code, body, err)
	}
	if rep.Stats.Rounds != 3 || len(rep.Report.Backends) != 1 || rep.Report.Backends[0].Name != "rabbitmq" || len(rep.Report.Active) != 1 {
		t.Fatalf("/report = %+v, want 3 rounds, the rabbitmq backend and the still active alert", rep)
	}
	if code, _ := get(t, h, "/nothing"); code != http.StatusNotFound {
		t.Errorf("/nothing = %d, want 404", code)
	}
}

// TestHealthEvents: every round publishes valid system.health events, one
// per backend, one per service and one for the system, with at most 64
// checks each even when a backend reports more.
func TestHealthEvents(t *testing.T) {
	fc := &checker{}
	rep := healthyReport(3, "g", "t", 5000)
	for i := range 100 {
		rep.Checks = append(rep.Checks, broker.HealthCheck{Name: fmt.Sprintf("topic:t%03d", i), Status: broker.HealthHealthy, Value: 1})
	}
	rep.Checks = append(rep.Checks, broker.HealthCheck{Name: "topic:gone", Status: broker.HealthUnhealthy, Message: "missing"})
	fc.set(rep, nil)
	src := &signals{}
	src.set(healthsvc.ServiceSignals{Service: "billing", Handled: 950, Failed: 50, DeadLettered: 5, DeadLetteredTotal: 9, P50: time.Millisecond, P99: 3 * time.Millisecond})
	s, pub := newService(t, healthsvc.Config{Checkers: map[string]broker.HealthChecker{"kafka": fc}, Signals: src}, nil)
	check(t, s)

	events := pub.EventsOfType(eventmodels.TypeSystemHealth)
	if errs := pub.DecodeErrors(); len(errs) != 0 {
		t.Fatalf("published messages do not decode: %v", errs)
	}
	byComponent := map[string]*eventmodels.SystemHealth{}
	for _, e := range events {
		h := e.(*eventmodels.SystemHealth)
		if err := h.Validate(); err != nil {
			t.Errorf("%s invalid: %v", h.Component, err)
		}
		byComponent[h.Component] = h
	}
	if len(events) != 3 || len(byComponent) != 3 {
		t.Fatalf("components %v, want backend:kafka, service:billing and system", keys(byComponent))
	}
	k := byComponent["backend:kafka"]
	if k == nil || len(k.Checks) != 64 || k.Checks[0].Status == eventmodels.HealthHealthy || k.Checks[63].Name != "more" || k.Status != eventmodels.HealthUnhealthy {
		t.Fatalf("backend:kafka = %+v; want 64 checks, problems first, a 'more' check, unhealthy", k)
	}
	var lagCheck bool
	for _, c := range k.Checks {
		lagCheck = lagCheck || (c.Name == "lag:g/t" && c.Value == 5000 && c.Status == eventmodels.HealthDegraded)
	}
	if !lagCheck {
		t.Errorf("backend:kafka has no degraded lag:g/t check of 5000")
	}
	b := byComponent["service:billing"]
	if b == nil || b.Status != eventmodels.HealthDegraded || len(b.Checks) != 4 || b.Checks[1].Name != "error_rate" || b.Checks[1].Value != 0.05 {
		t.Fatalf("service:billing = %+v, want degraded with an error_rate of 0.05", b)
	}
	sys := byComponent["system"]
	if sys == nil || sys.Status != eventmodels.HealthUnhealthy {
		t.Fatalf("system = %+v, want unhealthy", sys)
	}
	var alerts int
	for _, c := range sys.Checks {
		if strings.HasPrefix(c.Name, "alert ") {
			alerts++
		}
	}
	if alerts != len(s.Alerts()) || alerts != 3 {
		t.Errorf("system lists %d alerts, want the 3 active (lag, missing topic, error rate): %+v", alerts, s.Alerts())
	}
	if m := pub.ByTopic(eventmodels.TopicSystemHealth); len(m) != 3 {
		t.Fatalf("%d messages on %s, want 3", len(m), eventmodels.TopicSystemHealth)
	}
	if n := len(pub.ByTopic(eventmodels.TopicNotifications)); n != 3 {
		t.Errorf("%d messages on %s, want 3 alert notifications", n, eventmodels.TopicNotifications)
	}
	if st := s.Stats(); st.HealthEventsPublished != 3 || st.NotificationsPublished != 3 {
		t.Errorf("stats %+v", st)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestNotificationRetry: notifications that fail to publish are kept and
// published, in order, at the next round; a start and its clear never
// swap.
func TestNotificationRetry(t *testing.T) {
	fc := &checker{}
	fc.set(healthyReport(3, "g", "t", 5000), nil)
	s, pub := newService(t, healthsvc.Config{Checkers: map[string]broker.HealthChecker{"kafka": fc},
		Hysteresis: healthsvc.Hysteresis{ClearAfter: 1}}, nil)
	pub.FailNext(2, errors.New("notifications broker down")) // the notification and the health events
	check(t, s)
	if st := s.Stats(); st.NotificationsPending != 1 || st.PublishErrors != 2 || st.NotificationsPublished != 0 || st.HealthEventsPublished != 0 {
		t.Fatalf("stats after a failed publish %+v, want 1 pending, 2 errors", st)
	}
	fc.set(healthyReport(3, "g", "t", 0), nil)
	pub.FailNext(1, errors.New("still down")) // the start again
	rep := check(t, s)
	if len(rep.Cleared) != 1 {
		t.Fatalf("cleared %+v", rep.Cleared)
	}
	if st := s.Stats(); st.NotificationsPending != 2 {
		t.Fatalf("stats %+v, want the start and the clear pending", st)
	}
	check(t, s)
	if st := s.Stats(); st.NotificationsPending != 0 || st.NotificationsPublished != 2 {
		t.Fatalf("stats %+v, want both published", st)
	}
	wantFiringThenResolved(t, notifications(pub), healthsvc.AlertConsumerLag, eventmodels.SeverityWarning)
}

// TestNotificationsDroppedBeyondMaxPending: the retry queue is bounded.
func TestNotificationsDroppedBeyondMaxPending(t *testing.T) {
	src := &signals{}
	s, pub := newService(t, healthsvc.Config{Signals: src, MaxPending: 1, Hysteresis: healthsvc.Hysteresis{ClearAfter: 1}}, nil)
	pub.FailNext(100, errors.New("down"))
	src.set(healthsvc.ServiceSignals{Service: "a", Failed: 200})
	check(t, s)
	src.set(healthsvc.ServiceSignals{Service: "a", Handled: 200})
	check(t, s)
	if st := s.Stats(); st.NotificationsPending != 1 || st.NotificationsDropped != 1 {
		t.Fatalf("stats %+v, want 1 pending and 1 dropped", st)
	}
}

// TestLongNamesStayValid: names longer than eventmodels allows (a 300-byte
// group, multi-byte characters) are cut, on a character boundary, so the
// events stay valid and are published.
func TestLongNamesStayValid(t *testing.T) {
	fc := &checker{}
	fc.set(healthyReport(3, strings.Repeat("é", 150), "t", 5000), nil)
	s, pub := newService(t, healthsvc.Config{Checkers: map[string]broker.HealthChecker{"kafka": fc}}, nil)
	check(t, s)
	if st := s.Stats(); st.PublishErrors != 0 || st.NotificationsPublished != 1 || st.HealthEventsPublished != 2 {
		t.Fatalf("stats %+v, want everything published", st)
	}
	for _, e := range pub.Events() {
		if err := e.Validate(); err != nil {
			t.Errorf("%T invalid: %v", e, err)
		}
	}
	n := notifications(pub)[0]
	if len(n.Title) > 256 || !utf8.ValidString(n.Title) {
		t.Errorf("title of %d bytes, valid UTF-8 %v", len(n.Title), utf8.ValidString(n.Title))
	}
}
