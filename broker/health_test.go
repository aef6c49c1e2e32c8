package broker_test

import (
	"testing"

	"github.com/cosmic-horizons/events/broker"
)

func TestWorst(t *testing.T) {
	const (
		ok   = broker.HealthHealthy
		unk  = broker.HealthUnknown
		deg  = broker.HealthDegraded
		down = broker.HealthUnhealthy
	)
	tests := []struct {
		in   []broker.HealthStatus
		want broker.HealthStatus
	}{
		{nil, ok},
		{[]broker.HealthStatus{ok}, ok},
		{[]broker.HealthStatus{ok, unk}, unk},
		{[]broker.HealthStatus{deg, unk, ok}, deg},
		{[]broker.HealthStatus{ok, down, deg}, down},
		{[]broker.HealthStatus{down, ok}, down},
		// A status the function does not know is no reason to report
		// healthy: it counts as unknown.
		{[]broker.HealthStatus{ok, ""}, unk},
		{[]broker.HealthStatus{"on fire", ok}, unk},
		{[]broker.HealthStatus{"on fire", deg}, deg},
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
