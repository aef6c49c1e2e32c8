package healthsvc

import (
	"cmp"
	"slices"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
)

// AlertKind names what an alert is about.
type AlertKind string

// The alert kinds.
const (
	// AlertBrokerDown: a backend's Health failed or timed out, it reports a
	// broker or connection unhealthy, or a Kafka cluster answers with
	// fewer brokers than expected (see Config.ExpectedBrokers). Subject is
	// the checker's name. Critical when the backend is unreachable, error
	// when it is degraded.
	AlertBrokerDown AlertKind = "broker_down"
	// AlertCheckFailed: any other check of a backend is degraded or
	// unhealthy — a topic missing, a queue that cannot be read, a
	// RabbitMQ connection blocked by a disk or memory alarm. Subject is
	// the check's name. Severity error.
	AlertCheckFailed AlertKind = "check_failed"
	// AlertConsumerLag: a consumer group is more than Thresholds.Lag
	// messages behind on a topic. Subject is "group/topic". Severity
	// warning.
	AlertConsumerLag AlertKind = "consumer_lag"
	// AlertErrorRate: more than Thresholds.ErrorRate of a service's
	// handler attempts failed over the window. Subject is the service.
	// Severity error.
	AlertErrorRate AlertKind = "error_rate"
	// AlertLatency: a service's P99 handler time over the window is above
	// Thresholds.P99. Subject is the service. Severity warning.
	AlertLatency AlertKind = "p99_latency"
	// AlertConsumerStuck: a subscription has held a message (handed out,
	// not acknowledged) for longer than Thresholds.Stuck: a handler that
	// does not return, which lag alone does not show. Subject is
	// "group/topic" for a checker's subscriptions, the service for
	// signals from another process. Value and Threshold are seconds.
	// Severity error.
	AlertConsumerStuck AlertKind = "consumer_stuck"
	// AlertSourceUnreachable: a service's signals endpoint (a Remote
	// URL) stopped answering: the service hangs, died or is cut off.
	// Subject is the URL. While it lasts, the open alerts of the services
	// that endpoint reported stay open (they are neither judged nor
	// cleared: nothing is known of them). Value is the consecutive failed
	// fetches. Severity error.
	AlertSourceUnreachable AlertKind = "source_unreachable"
	// AlertPartitionImbalance: one Kafka broker leads more than
	// Thresholds.Imbalance times its fair share of partitions (value and
	// threshold are that ratio). Subject "leaders". Severity warning.
	AlertPartitionImbalance AlertKind = "partition_imbalance"
	// AlertDiskUsage: a Kafka log directory's volume is fuller than
	// Thresholds.DiskUsage percent (where the brokers report volume
	// sizes), or a RabbitMQ node raised its disk alarm and blocks
	// publishers (value 100, subject "<connection> disk alarm"). Severity
	// error.
	AlertDiskUsage AlertKind = "disk_usage"
	// AlertEventsDropped: a service dropped events on purpose over the
	// window (the orchestrator's real-time queue full or its publishes
	// failing): Value is the count, Threshold 0. Subject is the service.
	// Severity warning.
	AlertEventsDropped AlertKind = "events_dropped"
)

// Alert is one alert condition. Its identity is (Kind, Backend, Subject):
// an alert starts once, stays active while its condition lasts, and clears
// once.
type Alert struct {
	Kind AlertKind `json:"kind"`
	// Backend is the checker's name for backend alerts; empty for service
	// alerts.
	Backend string `json:"backend,omitempty"`
	// Subject is what the alert is about (see the kinds).
	Subject  string               `json:"subject"`
	Severity eventmodels.Severity `json:"severity"`
	// Value is the latest measured value (lag in messages, error rate as a
	// fraction, P99 in milliseconds, brokers answering); Threshold is the
	// line it crossed. Both are 0 for conditions that are not measured.
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// Message explains the latest observation in words.
	Message string `json:"message"`
	// Since is when the alert started; Cleared when it cleared (zero while
	// active).
	Since   time.Time `json:"since"`
	Cleared time.Time `json:"cleared,omitzero"`
}

// ID is the alert's identity as one string: "kind|backend|subject".
func (a Alert) ID() string { return string(a.Kind) + "|" + a.Backend + "|" + a.Subject }

// level is what one round says about an alert condition.
type level int

const (
	levelHold  level = iota // no verdict: inside the band, or not measured
	levelFire               // the condition holds
	levelClear              // the condition is clearly over
)

// observation is one round's verdict on one alert condition.
type observation struct {
	alert Alert // Since and Cleared unset
	level level
}

// measured returns the level of a measured value against a threshold with
// the band below it.
func measured(value, threshold, clearRatio float64) level {
	switch {
	case value > threshold:
		return levelFire
	case value < threshold*clearRatio:
		return levelClear
	}
	return levelHold
}

// alertState is the tracker's memory of one condition.
type alertState struct {
	alert     Alert
	active    bool
	bad, good int // consecutive fire / clear rounds
}

// tracker turns rounds of observations into alert starts and clears. Not
// safe for concurrent use: Service.Check serialises rounds.
type tracker struct {
	fireAfter, clearAfter int
	states                map[string]*alertState
}

func newTracker(h Hysteresis) *tracker {
	return &tracker{fireAfter: h.FireAfter, clearAfter: h.ClearAfter, states: map[string]*alertState{}}
}

// round applies one round. obs are the observations made; for conditions
// tracked but not observed, absent(alert) says whether to count the round
// as clear (true) or hold (false). It returns the alerts that started and
// that cleared in this round, sorted by ID.
func (t *tracker) round(now time.Time, obs []observation, absentClears func(Alert) bool) (raised, cleared []Alert) {
	seen := make(map[string]bool, len(obs))
	for _, o := range obs {
		id := o.alert.ID()
		if seen[id] {
			continue // one verdict per condition and round
		}
		seen[id] = true
		st := t.states[id]
		if st == nil {
			if o.level != levelFire {
				continue
			}
			st = &alertState{}
			t.states[id] = st
		}
		if r, c := t.step(st, o, now); r {
			raised = append(raised, st.alert)
		} else if c {
			cleared = append(cleared, st.alert)
		}
	}
	for id, st := range t.states {
		if seen[id] {
			continue
		}
		lv := levelHold
		if absentClears(st.alert) {
			lv = levelClear
		}
		o := observation{alert: st.alert, level: lv}
		if lv == levelClear && st.active {
			o.alert.Message = "no longer reported"
		}
		if _, c := t.step(st, o, now); c {
			cleared = append(cleared, st.alert)
		}
	}
	for id, st := range t.states {
		if !st.active && st.bad == 0 {
			delete(t.states, id)
		}
	}
	byID := func(a, b Alert) int { return cmp.Compare(a.ID(), b.ID()) }
	slices.SortFunc(raised, byID)
	slices.SortFunc(cleared, byID)
	return raised, cleared
}

// step moves one state by one observation and reports whether the alert
// started or cleared.
func (t *tracker) step(st *alertState, o observation, now time.Time) (started, ended bool) {
	switch o.level {
	case levelFire:
		st.bad++
		st.good = 0
	case levelClear:
		st.good++
		st.bad = 0
	default:
		st.bad, st.good = 0, 0
	}
	if !st.active {
		if o.level == levelFire {
			st.alert = o.alert
		}
		if st.bad >= t.fireAfter {
			st.active, st.good = true, 0
			st.alert.Since = now
			return true, false
		}
		return false, false
	}
	// Active: keep the first severity and start time, follow the figures.
	since, sev := st.alert.Since, st.alert.Severity
	st.alert = o.alert
	st.alert.Since, st.alert.Severity = since, sev
	if st.good >= t.clearAfter {
		st.active, st.good, st.bad = false, 0, 0
		st.alert.Cleared = now
		return false, true
	}
	return false, false
}

// active returns the active alerts sorted by ID.
func (t *tracker) active() []Alert {
	var out []Alert
	for _, st := range t.states {
		if st.active {
			out = append(out, st.alert)
		}
	}
	slices.SortFunc(out, func(a, b Alert) int { return cmp.Compare(a.ID(), b.ID()) })
	return out
}
