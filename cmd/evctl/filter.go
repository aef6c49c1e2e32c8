package main

import (
	"slices"
	"strings"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// filter selects dead letters; an empty field selects everything.
type filter struct {
	types, keys, ids []string
	errText          string
	since, until     time.Time
	groups           []string // Kafka: x-dlq-group (RabbitMQ groups pick queues)
}

func (f *filter) empty() bool {
	return len(f.types) == 0 && len(f.keys) == 0 && len(f.ids) == 0 && f.errText == "" &&
		f.since.IsZero() && f.until.IsZero()
}

// match reports whether m passes every filter. Times are those of
// x-dlq-time; a message without it (not a dead letter) fails a time filter.
func (f *filter) match(m *broker.Message) bool {
	if len(f.types) > 0 && !slices.Contains(f.types, m.Header(broker.HeaderType)) {
		return false
	}
	if len(f.keys) > 0 && !slices.Contains(f.keys, m.Key) {
		return false
	}
	if len(f.ids) > 0 && !slices.Contains(f.ids, m.Header(broker.HeaderID)) {
		return false
	}
	if len(f.groups) > 0 && !slices.Contains(f.groups, m.Header(broker.HeaderDLQGroup)) {
		return false
	}
	if f.errText != "" && !strings.Contains(strings.ToLower(m.Header(broker.HeaderDLQError)), strings.ToLower(f.errText)) {
		return false
	}
	if !f.since.IsZero() || !f.until.IsZero() {
		t, ok := deadLetteredAt(m)
		if !ok || (!f.since.IsZero() && t.Before(f.since)) || (!f.until.IsZero() && !t.Before(f.until)) {
			return false
		}
	}
	return true
}

// deadLetteredAt returns the x-dlq-time of m.
func deadLetteredAt(m *broker.Message) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, m.Header(broker.HeaderDLQTime))
	return t, err == nil
}
