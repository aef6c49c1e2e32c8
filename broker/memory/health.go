package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// Health reports the broker's state: Backend "memory"; Status healthy while
// it runs, unhealthy after Close; one check per topic ("topic <name>",
// Value = messages retained); and the lag of every durable group on every
// partition (End − Committed, Consumers = the group's live members); and
// what each running subscription holds in flight (InFlight).
// Topics and groups are sorted by name. It is safe for concurrent use and
// never blocks on consumers; it returns ctx's error if ctx has ended.
func (b *Backend) Health(ctx context.Context) (*broker.HealthReport, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &broker.HealthReport{Backend: "memory", Status: broker.HealthHealthy}
	if b.closed.Load() {
		r.Status = broker.HealthUnhealthy
		r.Checks = []broker.HealthCheck{{Name: "broker", Status: broker.HealthUnhealthy, Message: "closed"}}
		return r, nil
	}
	topics := make([]*topic, 0, len(*b.topics.Load()))
	for _, t := range *b.topics.Load() {
		topics = append(topics, t)
	}
	slices.SortFunc(topics, func(x, y *topic) int { return cmp.Compare(x.name, y.name) })
	r.Checks = make([]broker.HealthCheck, 0, len(topics)+1)
	r.Checks = append(r.Checks, broker.HealthCheck{Name: "broker", Status: broker.HealthHealthy, Message: "running"})
	for _, t := range topics {
		retained := 0
		for _, p := range t.parts {
			p.mu.Lock()
			retained += p.n
			p.mu.Unlock()
		}
		r.Checks = append(r.Checks, broker.HealthCheck{
			Name: "topic " + t.name, Status: broker.HealthHealthy, Value: float64(retained),
			Message: fmt.Sprintf("%d partitions, %d messages retained", len(t.parts), retained),
		})
		r.Lag = append(r.Lag, t.lag()...)
	}
	r.InFlight = b.inFlight()
	return r, nil
}

// inFlight reports what every running subscription holds, sorted by topic
// and group.
func (b *Backend) inFlight() []broker.InFlight {
	now := time.Now()
	b.mu.Lock()
	out := make([]broker.InFlight, 0, len(b.consumers))
	for c := range b.consumers {
		out = append(out, c.rt.Report(now))
	}
	b.mu.Unlock()
	slices.SortFunc(out, func(x, y broker.InFlight) int {
		return cmp.Or(cmp.Compare(x.Topic, y.Topic), cmp.Compare(x.Group, y.Group))
	})
	return out
}

// lag reports every durable group's lag on every partition of t.
func (t *topic) lag() []broker.GroupLag {
	t.mu.Lock()
	groups := make([]*group, 0, len(t.groups))
	for _, g := range t.groups {
		groups = append(groups, g)
	}
	t.mu.Unlock()
	slices.SortFunc(groups, func(x, y *group) int { return cmp.Compare(x.name, y.name) })
	var out []broker.GroupLag
	for _, g := range groups {
		members := g.size()
		for _, cur := range g.cursors {
			p := cur.part
			p.mu.Lock()
			committed, end := cur.committed, p.end()
			p.mu.Unlock()
			out = append(out, broker.GroupLag{
				Group: g.name, Topic: t.name, Partition: p.id,
				Committed: committed, End: end, Lag: end - committed, Consumers: members,
			})
		}
	}
	return out
}
