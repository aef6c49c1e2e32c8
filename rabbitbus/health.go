package rabbitbus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/cosmic-horizons/events/broker"
)

// Health reports the publisher's connection: the node it is connected to,
// how often it reconnected, and whether the broker blocks it.
func (p *Publisher) Health(ctx context.Context) (*broker.HealthReport, error) {
	checks := []broker.HealthCheck{connCheck(p.mgr)}
	return report(checks, nil), nil
}

// Health reports the subscriber's connection (node, reconnects) and, for
// every subscription running, its queue's depth (messages ready) and
// consumer count, read with a passive queue declare (exact, unlike the
// management statistics), plus the depth of the group's dead-letter queue.
// A queue that cannot be read makes its check unhealthy; ctx bounds the
// whole report. InFlight lists what each running subscription holds:
// messages delivered and not yet acknowledged, which the queue depth does
// not count, and the age of the oldest (a stuck handler shows here).
func (s *Subscriber) Health(ctx context.Context) (*broker.HealthReport, error) {
	checks := []broker.HealthCheck{connCheck(s.mgr)}
	var lag []broker.GroupLag
	if st := s.mgr.status(); st.connected {
		qc, ql := s.queueHealth(ctx)
		checks, lag = append(checks, qc...), ql
	}
	r := report(checks, lag)
	r.InFlight = s.inFlight()
	return r, nil
}

// inFlight reports what every running subscription holds, sorted by topic
// and group.
func (s *Subscriber) inFlight() []broker.InFlight {
	now := time.Now()
	s.mu.Lock()
	out := make([]broker.InFlight, 0, len(s.consumers))
	for c := range s.consumers {
		out = append(out, c.Report(now))
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(x, y broker.InFlight) int {
		return cmp.Or(cmp.Compare(x.Topic, y.Topic), cmp.Compare(x.Group, y.Group))
	})
	return out
}

func report(checks []broker.HealthCheck, lag []broker.GroupLag) *broker.HealthReport {
	statuses := make([]broker.HealthStatus, len(checks))
	for i, c := range checks {
		statuses[i] = c.Status
	}
	return &broker.HealthReport{Backend: "rabbitmq", Status: broker.Worst(statuses...), Checks: checks, Lag: lag}
}

// nodesCheck dials every node of urls (TCP only, concurrently, each
// bounded by timeout and ctx) and reports how many accept.
func nodesCheck(ctx context.Context, urls []string, timeout time.Duration) broker.HealthCheck {
	addrs := make([]string, 0, len(urls))
	for _, u := range urls {
		uri, err := amqp.ParseURI(u)
		if err != nil {
			continue // Validate refused such URLs already
		}
		addrs = append(addrs, net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port)))
	}
	addrs = slices.Compact(slices.Sorted(slices.Values(addrs)))
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() {
			dctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			var d net.Dialer
			c, err := d.DialContext(dctx, "tcp", a)
			if err == nil {
				_ = c.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	var down []string
	for i, err := range errs {
		if err != nil {
			down = append(down, fmt.Sprintf("%s: %v", addrs[i], err))
		}
	}
	up := len(addrs) - len(down)
	c := broker.HealthCheck{Name: CheckNodes, Value: float64(up)}
	switch {
	case up == 0:
		c.Status = broker.HealthUnhealthy
		c.Message = fmt.Sprintf("none of %d configured nodes reachable: %s", len(addrs), strings.Join(down, "; "))
	case len(down) > 0:
		c.Status = broker.HealthDegraded
		c.Message = fmt.Sprintf("%d of %d configured nodes reachable; down: %s", up, len(addrs), strings.Join(down, "; "))
	default:
		c.Status = broker.HealthHealthy
		c.Message = fmt.Sprintf("%d of %d configured nodes reachable", up, len(addrs))
	}
	return c
}

// CheckNodes is the name of Backend.Health's check of the configured
// nodes' reachability; its Value is the nodes that accept a connection.
const CheckNodes = "rabbitmq nodes"

func connCheck(m *connManager) broker.HealthCheck {
	st := m.status()
	c := broker.HealthCheck{Name: "rabbitmq " + m.role + " connection", Value: float64(st.reconnects)}
	switch {
	case !st.connected:
		c.Status = broker.HealthUnhealthy
		c.Message = fmt.Sprintf("disconnected since %s, reconnecting (%d reconnects so far); last error: %v",
			st.lostAt.UTC().Format("15:04:05"), st.reconnects, st.lastErr)
	case st.blocked != "":
		c.Status = broker.HealthDegraded
		c.Message = fmt.Sprintf("connected to %s; publishing blocked by the broker: %s; %d reconnects", st.node, st.blocked, st.reconnects)
	default:
		c.Status = broker.HealthHealthy
		c.Message = fmt.Sprintf("connected to %s; %d reconnects", st.node, st.reconnects)
	}
	return c
}

// queueProbe is one queue Health reads.
type queueProbe struct {
	group, topic, queue string
	dlq                 bool
	other               bool // Config.LagGroups: a missing queue is not a failure
}

func (s *Subscriber) queueHealth(ctx context.Context) ([]broker.HealthCheck, []broker.GroupLag) {
	s.mu.Lock()
	var probes []queueProbe
	for c := range s.consumers {
		q := c.Queue()
		probes = append(probes, queueProbe{group: c.sub.Group, topic: c.sub.Topic, queue: q})
		if !c.sub.Ephemeral {
			probes = append(probes, queueProbe{group: c.sub.Group, topic: c.sub.Topic, queue: q + suffixDLQ, dlq: true})
		}
	}
	s.mu.Unlock()
	for _, g := range s.cfg.LagGroups {
		probes = append(probes, queueProbe{group: g.Group, topic: g.Topic, queue: s.cfg.QueueName(g.Topic, g.Group), other: true})
	}
	slices.SortFunc(probes, func(a, b queueProbe) int {
		if a.queue < b.queue {
			return -1
		}
		if a.queue > b.queue {
			return 1
		}
		return 0
	})
	probes = slices.CompactFunc(probes, func(a, b queueProbe) bool { return a.queue == b.queue })

	type answer struct {
		q   amqp.Queue
		err error
	}
	answers := make([]answer, len(probes))
	done := make(chan struct{})
	sess, err := s.mgr.current(ctx)
	if err != nil {
		return []broker.HealthCheck{{Name: "rabbitmq queues", Status: broker.HealthUnknown, Message: err.Error()}}, nil
	}
	go func() {
		defer close(done)
		var ch *amqp.Channel
		for i, p := range probes {
			if ch == nil || ch.IsClosed() {
				var cerr error
				if ch, cerr = sess.channel(); cerr != nil {
					for j := i; j < len(probes); j++ {
						answers[j].err = cerr
					}
					return
				}
			}
			answers[i].q, answers[i].err = ch.QueueDeclarePassive(p.queue, false, false, false, false, nil)
		}
		if ch != nil {
			_ = ch.Close()
		}
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return []broker.HealthCheck{{Name: "rabbitmq queues", Status: broker.HealthUnknown, Message: "queue depths not read: " + ctx.Err().Error()}}, nil
	}
	var checks []broker.HealthCheck
	var lag []broker.GroupLag
	for i, p := range probes {
		a := answers[i]
		name := "rabbitmq queue " + p.queue
		if p.dlq {
			name = "rabbitmq dead letters " + p.queue
		}
		if a.err != nil {
			st := broker.HealthUnhealthy
			if p.other && isNotFound(a.err) {
				st = broker.HealthUnknown // another process's group that has not declared its queue (yet)
			}
			checks = append(checks, broker.HealthCheck{Name: name, Status: st, Message: a.err.Error()})
			continue
		}
		if p.dlq {
			checks = append(checks, broker.HealthCheck{Name: name, Status: broker.HealthHealthy,
				Message: fmt.Sprintf("%d dead letters", a.q.Messages), Value: float64(a.q.Messages)})
			continue
		}
		checks = append(checks, broker.HealthCheck{Name: name, Status: broker.HealthHealthy,
			Message: fmt.Sprintf("%d ready, %d consumers", a.q.Messages, a.q.Consumers), Value: float64(a.q.Messages)})
		lag = append(lag, broker.GroupLag{Group: p.group, Topic: p.topic, Partition: -1, Committed: -1, End: -1,
			Lag: int64(a.q.Messages), Consumers: a.q.Consumers})
	}
	return checks, lag
}

// isNotFound reports whether err is the broker's 404 NOT_FOUND channel
// exception (a passive declare of a queue that does not exist).
func isNotFound(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == amqp.NotFound
}
