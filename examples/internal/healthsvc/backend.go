package healthsvc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
)

// BackendReport is one checker's state in a round.
type BackendReport struct {
	// Name is the checker's name in Config.Checkers.
	Name string `json:"name"`
	// Status is the worst of the backend's own status and what the service
	// concluded (unreachable, fewer brokers than expected).
	Status broker.HealthStatus `json:"status"`
	// Down is true when the backend is unreachable: Health failed or timed
	// out, or a broker or connection check is unhealthy. Degraded is true
	// when it answers with part of its brokers missing. Problems say why,
	// in words.
	Down     bool     `json:"down"`
	Degraded bool     `json:"degraded"`
	Problems []string `json:"problems,omitempty"`
	// Err is Health's error, if any.
	Err string `json:"error,omitempty"`
	// Latency is how long Health took (wall time, whatever Config.Clock).
	Latency time.Duration `json:"latency"`
	// Checks are the backend's checks, its lag checks replaced by one per
	// group and topic (same shape for every backend).
	Checks []broker.HealthCheck `json:"checks"`
	// Lag is the backlog per group and topic.
	Lag []LagSummary `json:"lag,omitempty"`
	// DeadLetters sums the dead-letter queue depths the backend reports
	// (RabbitMQ); -1 when it reports none.
	DeadLetters int64 `json:"dead_letters"`
	// InFlight is what each subscription on the backend holds: messages
	// handed out and not acknowledged, and the age of the oldest.
	InFlight []broker.InFlight `json:"in_flight,omitempty"`
}

// LagSummary is a consumer group's backlog on one topic.
type LagSummary struct {
	Group string `json:"group"`
	Topic string `json:"topic"`
	// Total is the lag summed over the partitions (or the queue's ready
	// messages).
	Total int64 `json:"total"`
	// Partitions is how many partitions were reported (1 for a queue);
	// WorstPartition and WorstLag name the one furthest behind (-1 for a
	// queue).
	Partitions     int   `json:"partitions"`
	WorstPartition int32 `json:"worst_partition"`
	WorstLag       int64 `json:"worst_lag"`
}

// Names of backend checks the service interprets; see DESIGN of the
// backends' Health methods (kafkabus, rabbitbus, broker/memory).
const (
	checkKafkaBrokers    = "brokers"    // kafkabus: Value = brokers answering
	checkKafkaController = "controller" // kafkabus
	checkMemoryBroker    = "broker"     // broker/memory
	suffixConnection     = " connection"
	prefixLag            = "lag:"                  // kafkabus per-group lag checks
	prefixRabbitDLQ      = "rabbitmq dead letters" // rabbitbus: Value = dead letters
	checkRabbitNodes     = "rabbitmq nodes"        // rabbitbus: Value = configured nodes answering
	checkKafkaLeaders    = "leaders"               // kafkabus: Value = busiest broker's leaders / fair share
	checkKafkaLogDirs    = "log dirs"              // kafkabus: Value = fullest log volume, percent
)

// counting reports whether a check's Value counts the brokers or nodes
// answering (the broker_down alert's value).
func counting(name string) bool { return name == checkKafkaBrokers || name == checkRabbitNodes }

// availability reports whether a check says whether the backend can be
// reached at all: Kafka's brokers and controller, the memory broker, a
// RabbitMQ connection.
func availability(name string) bool {
	return name == checkKafkaBrokers || name == checkKafkaController || name == checkMemoryBroker ||
		name == checkRabbitNodes || strings.HasSuffix(name, suffixConnection)
}

// probe calls every checker at once, each bounded by timeout, and returns
// the reports by name. It waits for every call to answer or time out; a
// checker that ignores its ctx is left running and its late answer dropped.
func probe(ctx context.Context, checkers map[string]broker.HealthChecker, timeout time.Duration) map[string]probeResult {
	type answer struct {
		name string
		res  probeResult
	}
	answers := make(chan answer, len(checkers))
	for name, hc := range checkers {
		go func() {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			start := time.Now()
			done := make(chan probeResult, 1)
			go func() {
				rep, err := hc.Health(cctx)
				done <- probeResult{rep: rep, err: err}
			}()
			var res probeResult
			select {
			case res = <-done:
			case <-cctx.Done():
				res.err = fmt.Errorf("no answer within %v: %w", timeout, cctx.Err())
			}
			res.latency = time.Since(start)
			if res.err == nil && res.rep == nil {
				res.err = errors.New("Health returned no report")
			}
			answers <- answer{name, res}
		}()
	}
	out := make(map[string]probeResult, len(checkers))
	for range checkers {
		a := <-answers
		out[a.name] = a.res
	}
	return out
}

type probeResult struct {
	rep     *broker.HealthReport
	err     error
	latency time.Duration
}

// backendObservations interprets one probe: the backend's report for the
// round and its alert observations. expected is the broker count to
// compare Kafka's "brokers" check with (0: none).
func (s *Service) backendObservations(name string, pr probeResult, expected int) (BackendReport, []observation) {
	br := BackendReport{Name: name, Latency: pr.latency, DeadLetters: -1}
	var obs []observation
	th, ratio := s.cfg.Thresholds, s.cfg.Hysteresis.ClearRatio
	down := Alert{Kind: AlertBrokerDown, Backend: name, Subject: name, Severity: eventmodels.SeverityCritical}
	if pr.err != nil {
		br.Err = pr.err.Error()
		br.Down, br.Status = true, broker.HealthUnhealthy
		br.Problems = []string{"health check failed: " + pr.err.Error()}
		br.Checks = []broker.HealthCheck{{Name: "health", Status: broker.HealthUnhealthy, Message: pr.err.Error()}}
		down.Message = name + " unreachable: " + pr.err.Error()
		return br, []observation{{alert: down, level: levelFire}}
	}
	rep := pr.rep
	statuses := []broker.HealthStatus{rep.Status}
	for _, c := range rep.Checks {
		if counting(c.Name) {
			down.Value = c.Value
			if c.Name == checkKafkaBrokers && expected > 0 {
				down.Threshold = float64(expected)
			}
		}
		if strings.HasPrefix(c.Name, prefixLag) && c.Status != broker.HealthUnknown {
			continue // replaced by the lag summaries below; unknown ones say why lag is missing
		}
		br.Checks = append(br.Checks, c)
		statuses = append(statuses, c.Status)
		if strings.HasPrefix(c.Name, prefixRabbitDLQ) {
			br.DeadLetters = max(br.DeadLetters, 0) + int64(c.Value)
		}
		switch {
		case availability(c.Name) && c.Status == broker.HealthUnhealthy:
			br.Down = true
			br.Problems = append(br.Problems, c.Name+": "+c.Message)
		case c.Name == checkKafkaLeaders:
			a := Alert{Kind: AlertPartitionImbalance, Backend: name, Subject: c.Name, Severity: eventmodels.SeverityWarning,
				Value: c.Value, Threshold: th.Imbalance,
				Message: fmt.Sprintf("%s: a broker leads %.2f× its fair share of partitions (threshold %.2f×): %s", name, c.Value, th.Imbalance, c.Message)}
			obs = append(obs, observation{alert: a, level: measured(c.Value, th.Imbalance, ratio)})
		case c.Name == checkKafkaLogDirs:
			a := Alert{Kind: AlertDiskUsage, Backend: name, Subject: c.Name, Severity: eventmodels.SeverityError,
				Value: c.Value, Threshold: th.DiskUsage,
				Message: fmt.Sprintf("%s: %s (threshold %.0f %%)", name, c.Message, th.DiskUsage)}
			lv := levelHold // value -1: the brokers do not report their volumes
			if c.Status != broker.HealthUnknown && c.Value >= 0 {
				lv = measured(c.Value, th.DiskUsage, ratio)
			}
			obs = append(obs, observation{alert: a, level: lv})
		case strings.HasSuffix(c.Name, suffixConnection) && c.Status == broker.HealthDegraded && strings.Contains(c.Message, "blocked"):
			// A RabbitMQ resource alarm blocks publishers (connection.blocked):
			// a disk alarm is the disk_usage alert, a memory alarm a failed check.
			if strings.Contains(strings.ToLower(c.Message), "disk") {
				obs = append(obs, diskAlarm(name, c, levelFire))
			} else {
				obs = append(obs, checkObservation(name, c))
			}
		case c.Name == checkRabbitNodes && c.Status == broker.HealthDegraded:
			br.Degraded = true
			br.Problems = append(br.Problems, c.Name+": "+c.Message)
		case c.Name == checkKafkaBrokers && c.Status == broker.HealthDegraded:
			br.Degraded = true
			br.Problems = append(br.Problems, c.Name+": "+c.Message)
		default:
			if strings.HasSuffix(c.Name, suffixConnection) {
				obs = append(obs, diskAlarm(name, c, levelClear))
			}
			obs = append(obs, checkObservation(name, c))
		}
		if c.Name == checkKafkaBrokers && expected > 0 && c.Status != broker.HealthUnhealthy && int(c.Value) < expected {
			br.Degraded = true
			br.Problems = append(br.Problems, fmt.Sprintf("%s: %d of %d expected brokers answer (%s)", c.Name, int(c.Value), expected, c.Message))
			statuses = append(statuses, broker.HealthDegraded)
		}
	}
	switch {
	case br.Down:
		down.Message = name + " unreachable: " + strings.Join(br.Problems, "; ")
		obs = append(obs, observation{alert: down, level: levelFire})
		statuses = append(statuses, broker.HealthUnhealthy)
	case br.Degraded:
		down.Severity = eventmodels.SeverityError
		down.Message = name + " degraded: " + strings.Join(br.Problems, "; ")
		obs = append(obs, observation{alert: down, level: levelFire})
	default:
		down.Message = name + " reachable"
		obs = append(obs, observation{alert: down, level: levelClear})
	}
	br.Lag = summariseLag(rep.Lag)
	for _, l := range br.Lag {
		st := broker.HealthHealthy
		if l.Total > th.Lag {
			st = broker.HealthDegraded
		}
		msg := fmt.Sprintf("total lag %d", l.Total)
		if l.Partitions > 1 {
			msg += fmt.Sprintf(" over %d partitions; worst partition %d lags %d", l.Partitions, l.WorstPartition, l.WorstLag)
		}
		br.Checks = append(br.Checks, broker.HealthCheck{Name: "lag:" + l.Group + "/" + l.Topic, Status: st, Message: msg, Value: float64(l.Total)})
		statuses = append(statuses, st)
		a := Alert{Kind: AlertConsumerLag, Backend: name, Subject: l.Group + "/" + l.Topic, Severity: eventmodels.SeverityWarning,
			Value: float64(l.Total), Threshold: float64(th.Lag),
			Message: fmt.Sprintf("consumer group %s is %d messages behind on %s (threshold %d); %s", l.Group, l.Total, l.Topic, th.Lag, msg)}
		obs = append(obs, observation{alert: a, level: measured(a.Value, a.Threshold, ratio)})
	}
	br.InFlight = rep.InFlight
	for _, f := range rep.InFlight {
		a, lv := stuckObservation(f.Group+"/"+f.Topic, f.Messages, f.OldestAge, th.Stuck, ratio)
		a.Backend = name
		obs = append(obs, observation{alert: a, level: lv})
		if lv == levelFire {
			statuses = append(statuses, broker.HealthDegraded)
		}
	}
	br.Status = broker.Worst(statuses...)
	return br, obs
}

// diskAlarm is the disk_usage observation of a RabbitMQ connection check.
func diskAlarm(backend string, c broker.HealthCheck, lv level) observation {
	a := Alert{Kind: AlertDiskUsage, Backend: backend, Subject: c.Name + " disk alarm", Severity: eventmodels.SeverityError,
		Message: fmt.Sprintf("%s %s: %s", backend, c.Name, c.Message)}
	if lv == levelFire {
		a.Value = 100
	}
	return observation{alert: a, level: lv}
}

// stuckObservation judges what a subscription (subject) holds against the
// Stuck threshold.
func stuckObservation(subject string, messages int, oldest, threshold time.Duration, clearRatio float64) (Alert, level) {
	a := Alert{Kind: AlertConsumerStuck, Subject: subject, Severity: eventmodels.SeverityError,
		Value: oldest.Seconds(), Threshold: threshold.Seconds(),
		Message: fmt.Sprintf("%s holds %d message(s) unacknowledged, the oldest for %v (threshold %v): a handler does not return",
			subject, messages, oldest.Round(time.Millisecond), threshold)}
	if messages == 0 {
		return a, levelClear
	}
	return a, measured(a.Value, a.Threshold, clearRatio)
}

// checkObservation judges a check that is neither about reachability nor
// lag: degraded or unhealthy fires, healthy clears, unknown holds.
func checkObservation(backend string, c broker.HealthCheck) observation {
	a := Alert{Kind: AlertCheckFailed, Backend: backend, Subject: c.Name, Severity: eventmodels.SeverityError, Value: c.Value,
		Message: fmt.Sprintf("%s %s: %s: %s", backend, c.Name, c.Status, c.Message)}
	switch c.Status {
	case broker.HealthHealthy:
		return observation{alert: a, level: levelClear}
	case broker.HealthDegraded, broker.HealthUnhealthy:
		return observation{alert: a, level: levelFire}
	}
	return observation{alert: a, level: levelHold}
}

// summariseLag groups per-partition lag by group and topic, sorted.
func summariseLag(lags []broker.GroupLag) []LagSummary {
	idx := map[[2]string]int{}
	var out []LagSummary
	for _, l := range lags {
		k := [2]string{l.Group, l.Topic}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, LagSummary{Group: l.Group, Topic: l.Topic, WorstPartition: l.Partition, WorstLag: -1})
		}
		s := &out[i]
		s.Total += max(l.Lag, 0)
		s.Partitions++
		if l.Lag > s.WorstLag {
			s.WorstPartition, s.WorstLag = l.Partition, l.Lag
		}
	}
	slices.SortFunc(out, func(a, b LagSummary) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Topic, b.Topic))
	})
	return out
}
