package broker_test

import (
	"testing"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
)

func TestWorst(t *testing.T) {
	const (
		ok   = eventmodels.HealthHealthy
		unk  = eventmodels.HealthUnknown
		deg  = eventmodels.HealthDegraded
		down = eventmodels.HealthUnhealthy
	)
	tests := []struct {
		in   []eventmodels.HealthStatus
		want eventmodels.HealthStatus
	}{
		{nil, ok},
		{[]eventmodels.HealthStatus{ok}, ok},
		{[]eventmodels.HealthStatus{ok, unk}, unk},
		{[]eventmodels.HealthStatus{deg, unk, ok}, deg},
		{[]eventmodels.HealthStatus{ok, down, deg}, down},
		{[]eventmodels.HealthStatus{down, ok}, down},
		// A status the function does not know is no reason to report
		// healthy: it counts as unknown.
		{[]eventmodels.HealthStatus{ok, ""}, unk},
		{[]eventmodels.HealthStatus{"on fire", ok}, unk},
		{[]eventmodels.HealthStatus{"on fire", deg}, deg},
	}
	for _, tt := range tests {
		if got := broker.Worst(tt.in...); got != tt.want {
			t.Errorf("Worst(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTotalLag(t *testing.T) {
	r := &broker.HealthReport{Lag: []broker.GroupLag{
		{Group: "g", Topic: "t", Partition: 0, Lag: 5},
		{Group: "g", Topic: "t", Partition: 1, Lag: 7},
		{Group: "g", Topic: "other", Partition: 0, Lag: 100},
		{Group: "h", Topic: "t", Partition: 0, Lag: 1000},
	}}
	tests := []struct {
		group, topic string
		want         int64
	}{
		{"g", "t", 12},
		{"g", "other", 100},
		{"h", "t", 1000},
		{"x", "t", 0},
	}
	for _, tt := range tests {
		if got := r.TotalLag(tt.group, tt.topic); got != tt.want {
			t.Errorf("TotalLag(%s, %s) = %d, want %d", tt.group, tt.topic, got, tt.want)
		}
	}
}
