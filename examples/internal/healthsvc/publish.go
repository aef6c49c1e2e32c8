package healthsvc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
)

// Notification categories: "alert.<kind>" when an alert starts,
// "alert.<kind>.resolved" when it clears.
const (
	CategoryPrefix   = "alert."
	CategoryResolved = ".resolved"
)

// maxTitle is the longest notification title and check name eventmodels
// accepts.
const maxTitle = 256

// Notification returns the notification event announcing that a started
// (resolved false) or cleared (resolved true): category "alert.<kind>" or
// "alert.<kind>.resolved"; the alert's severity when it starts, info when
// it clears; a title naming the alert and a message with its figures.
func (s *Service) Notification(a Alert, resolved bool) *eventmodels.Notification {
	sev, category, state := a.Severity, CategoryPrefix+string(a.Kind), "FIRING"
	if resolved {
		sev, category, state = eventmodels.SeverityInfo, category+CategoryResolved, "RESOLVED"
	}
	where := a.Subject
	if a.Backend != "" && a.Backend != a.Subject {
		where = a.Backend + " " + a.Subject
	}
	title := fmt.Sprintf("[%s] %s: %s", state, a.Kind, where)
	msg := a.Message
	if resolved {
		msg = fmt.Sprintf("resolved after %v: %s", a.Cleared.Sub(a.Since).Round(time.Millisecond), a.Message)
	}
	n := eventmodels.NewNotification(s.cfg.UserID, s.cfg.Recipient, s.cfg.Channel, sev, truncate(title, maxTitle),
		truncate(msg, eventmodels.MaxTextLength), eventmodels.WithClock(s.cfg.Clock))
	n.Category = truncate(category, maxTitle)
	return n
}

// HealthEvents returns the system.health events of a report: one per
// backend ("backend:<name>"), one per service ("service:<name>"), and one
// for the whole system ("system", one check per component and one per
// active alert). Each carries at most 64 checks, unhealthy ones first.
func (s *Service) HealthEvents(rep *Report) []*eventmodels.SystemHealth {
	opt := eventmodels.WithClock(s.cfg.Clock)
	var out []*eventmodels.SystemHealth
	var summary []broker.HealthCheck
	for _, b := range rep.Backends {
		comp := componentPrefixBack + b.Name
		ms := float64(b.Latency) / float64(time.Millisecond)
		out = append(out, eventmodels.NewSystemHealth(s.cfg.UserID, truncate(comp, maxTitle), eventmodels.HealthStatus(b.Status), max(ms, 0), capChecks(b.Checks), opt))
		msg := strings.Join(b.Problems, "; ")
		if msg == "" {
			msg = "ok"
		}
		summary = append(summary, broker.HealthCheck{Name: comp, Status: b.Status, Message: msg, Value: ms})
	}
	th := s.cfg.Thresholds
	for _, sig := range rep.Services {
		comp := componentPrefixSvc + sig.Service
		judged := sig.Attempts() >= th.MinSamples
		rateSt, p99St := broker.HealthHealthy, broker.HealthHealthy
		if judged && sig.ErrorRate() > th.ErrorRate {
			rateSt = broker.HealthDegraded
		}
		if judged && sig.P99 > th.P99 {
			p99St = broker.HealthDegraded
		}
		p99ms := float64(sig.P99) / float64(time.Millisecond)
		checks := []broker.HealthCheck{
			{Name: "attempts", Status: broker.HealthHealthy, Value: float64(sig.Attempts()),
				Message: fmt.Sprintf("%d handled, %d failed over %v", sig.Handled, sig.Failed, th.Window)},
			{Name: "error_rate", Status: rateSt, Value: sig.ErrorRate(), Message: fmt.Sprintf("threshold %v", th.ErrorRate)},
			{Name: "p99_ms", Status: p99St, Value: p99ms, Message: fmt.Sprintf("p50 %v, p99 %v; threshold %v", sig.P50, sig.P99, th.P99)},
			{Name: "dead_letters", Status: broker.HealthHealthy, Value: float64(sig.DeadLettered),
				Message: fmt.Sprintf("%d over %v, %d in total; %d discarded", sig.DeadLettered, th.Window, sig.DeadLetteredTotal, sig.Discarded)},
		}
		st := broker.Worst(rateSt, p99St)
		out = append(out, eventmodels.NewSystemHealth(s.cfg.UserID, truncate(comp, maxTitle), eventmodels.HealthStatus(st), max(p99ms, 0), capChecks(checks), opt))
		summary = append(summary, broker.HealthCheck{Name: comp, Status: st, Value: sig.ErrorRate(),
			Message: fmt.Sprintf("error rate %.4f, p99 %v", sig.ErrorRate(), sig.P99)})
	}
	for _, a := range rep.Active {
		summary = append(summary, broker.HealthCheck{Name: "alert " + a.ID(), Status: broker.HealthDegraded,
			Message: a.Message, Value: a.Value})
	}
	for i := range summary {
		summary[i].Name = truncate(summary[i].Name, maxTitle)
	}
	out = append(out, eventmodels.NewSystemHealth(s.cfg.UserID, componentSystem, eventmodels.HealthStatus(rep.Status), 0, capChecks(summary), opt))
	return out
}

// capChecks returns the checks of a system.health event: cs, converted,
// at most maxComponentChecks of them.
func capChecks(cs []broker.HealthCheck) []eventmodels.HealthCheck {
	if len(cs) > maxComponentChecks {
		cs = capped(cs)
	}
	out := make([]eventmodels.HealthCheck, len(cs))
	for i, c := range cs {
		out[i] = eventmodels.HealthCheck{Name: c.Name, Status: eventmodels.HealthStatus(c.Status), Message: c.Message, Value: c.Value}
	}
	return out
}

// capped keeps the unhealthy checks first and says how many were left out.
func capped(cs []broker.HealthCheck) []broker.HealthCheck {
	var bad, good []broker.HealthCheck
	for _, c := range cs {
		if c.Status == broker.HealthHealthy {
			good = append(good, c)
		} else {
			bad = append(bad, c)
		}
	}
	kept := append(bad, good...)[:maxComponentChecks-1]
	left := len(cs) - len(kept)
	return append(kept, broker.HealthCheck{Name: "more", Status: broker.HealthUnknown, Value: float64(left),
		Message: fmt.Sprintf("%d more checks not listed", left)})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// publish queues the round's notifications behind those left over, then
// publishes them in order (stopping at the first failure, to keep a clear
// behind its start; one the bus rejects as invalid is dropped) and the
// round's health events, all within CheckTimeout.
func (s *Service) publish(ctx context.Context, rep *Report) {
	if s.cfg.Publisher == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
	defer cancel()
	for _, a := range rep.Raised {
		s.outbox = append(s.outbox, s.Notification(a, false))
	}
	for _, a := range rep.Cleared {
		s.outbox = append(s.outbox, s.Notification(a, true))
	}
	var dropped int
	if over := len(s.outbox) - s.cfg.MaxPending; over > 0 {
		dropped = over
		s.log.Error("healthsvc: dropping alert notifications that could not be published", "count", over)
		s.outbox = s.outbox[over:]
	}
	var published, failures int64
	for len(s.outbox) > 0 {
		err := s.send(ctx, s.outbox[0])
		if errors.Is(err, broker.ErrInvalidMessage) {
			// Retrying cannot help, and it would hold up the others.
			failures++
			dropped++
			s.log.Error("healthsvc: dropping an alert notification the bus rejects", "error", err)
		} else if err != nil {
			failures++
			s.log.Warn("healthsvc: publishing an alert notification failed; will retry next round", "error", err, "pending", len(s.outbox))
			break
		} else {
			published++
		}
		s.outbox[0] = nil
		s.outbox = s.outbox[1:]
	}
	events := s.HealthEvents(rep)
	batch := make([]eventmodels.Event, len(events))
	for i, e := range events {
		batch[i] = e
	}
	var healthPublished, unconfirmed int64
	if err := s.send(ctx, batch...); err != nil {
		failures++
		if ctx.Err() != nil {
			unconfirmed = int64(len(events))
		}
		s.log.Warn("healthsvc: publishing health events failed", "error", err)
	} else {
		healthPublished = int64(len(events))
	}
	s.mu.Lock()
	s.stats.NotificationsPublished += published
	s.stats.NotificationsDropped += int64(dropped)
	s.stats.NotificationsPending = len(s.outbox)
	s.stats.HealthEventsPublished += healthPublished
	s.stats.HealthEventsUnconfirmed += unconfirmed
	s.stats.PublishErrors += failures
	s.mu.Unlock()
}

func (s *Service) send(ctx context.Context, events ...eventmodels.Event) error {
	return s.cfg.Publisher.Publish(ctx, events...)
}
