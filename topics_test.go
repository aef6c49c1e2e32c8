package events_test

import (
	"slices"
	"testing"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/eventmodels"
)

// TestPlatformTopics checks the catalogue: partitions and retention per
// topic.
func TestPlatformTopics(t *testing.T) {
	const day = 24 * time.Hour
	want := []struct {
		name       string
		partitions int32
		retention  time.Duration
	}{
		{"job-lifecycle", 10, 30 * day},
		{"job-metrics", 10, 30 * day},
		{"notifications", 5, 7 * day},
		{"audit-trail", 5, 90 * day},
		{"system-health", 3, 7 * day},
	}
	got := events.PlatformTopics()
	if len(got) != len(want) {
		t.Fatalf("%d topics, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || g.Partitions != w.partitions || g.Retention != w.retention || g.ReplicationFactor != 3 {
			t.Errorf("topic %d = %s/%d partitions/%v/RF %d, want %s/%d/%v/RF 3",
				i, g.Name, g.Partitions, g.Retention, g.ReplicationFactor, w.name, w.partitions, w.retention)
		}
	}
}

// TestPlatformTopicsCarryEveryType: each built-in event type is carried by
// exactly one topic, the one the registry routes it to.
func TestPlatformTopicsCarryEveryType(t *testing.T) {
	reg := eventmodels.NewRegistry()
	carriedBy := map[string]string{}
	for _, spec := range events.PlatformTopics() {
		for _, typ := range spec.Carries {
			if prev, dup := carriedBy[typ]; dup {
				t.Errorf("%s carried by %s and %s", typ, prev, spec.Name)
			}
			carriedBy[typ] = spec.Name
		}
	}
	for _, info := range reg.Types() {
		if carriedBy[info.EventType] != info.Topic {
			t.Errorf("%s: registry topic %q, catalogue topic %q", info.EventType, info.Topic, carriedBy[info.EventType])
		}
	}
	if len(carriedBy) != len(reg.Types()) {
		t.Errorf("catalogue carries %d types, registry has %d", len(carriedBy), len(reg.Types()))
	}
}

func TestPlatformTopicsIsACopy(t *testing.T) {
	a := events.PlatformTopics()
	a[0].Name, a[0].Partitions = "changed", 1
	a[0].Carries[0] = "changed"
	b := events.PlatformTopics()
	if b[0].Name != "job-lifecycle" || b[0].Partitions != 10 || slices.Contains(b[0].Carries, "changed") {
		t.Fatal("changing one result changed the next")
	}
}
