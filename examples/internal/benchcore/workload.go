package benchcore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
)

// Kind is one shape of event in the workload.
type Kind int

// The kinds of event a workload mixes: a job's lifecycle (submitted,
// queued, started, progress reports, completed) and its metrics.
const (
	KindSubmitted Kind = iota
	KindQueued
	KindStarted
	KindProgress
	KindCompleted
	KindMetrics
	numKinds
)

// String returns the event type the kind produces, with the transition for
// status changes.
func (k Kind) String() string {
	switch k {
	case KindSubmitted:
		return eventmodels.TypeJobSubmitted
	case KindQueued:
		return eventmodels.TypeJobQueued
	case KindStarted:
		return eventmodels.TypeJobStatusChanged + " queued→running"
	case KindProgress:
		return eventmodels.TypeJobStatusChanged + " running→running"
	case KindCompleted:
		return eventmodels.TypeJobCompleted
	case KindMetrics:
		return eventmodels.TypeJobMetrics
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// lifecycle is the order in which a job's lifecycle events come.
var lifecycle = [...]Kind{KindSubmitted, KindQueued, KindStarted, KindProgress, KindProgress, KindProgress, KindCompleted}

// mixPeriod is the period of the kind sequence: lcm(100, len(lifecycle)).
const mixPeriod = 700

// WorkloadConfig shapes the events.
type WorkloadConfig struct {
	// BodySize is the encoded body size to aim at, in bytes; each kind
	// pads a text field up to it (default 300). Kinds whose smallest
	// body is larger stay larger; kinds whose text field would exceed its
	// validation limit stop at the limit. Result.BodyBytes reports the
	// mean actually sent.
	BodySize int
	// Keys is the number of distinct jobs (partition keys); default 1000.
	Keys int
	// MetricsShare is the fraction of job.metrics events, the rest being
	// lifecycle events; default 0.3.
	MetricsShare float64
}

// ErrWorkload is matched by the errors of NewWorkload for a configuration
// it cannot honour.
var ErrWorkload = errors.New("benchcore: invalid workload")

func (c WorkloadConfig) withDefaults() WorkloadConfig {
	if c.BodySize == 0 {
		c.BodySize = 300
	}
	if c.Keys == 0 {
		c.Keys = 1000
	}
	if c.MetricsShare == 0 {
		c.MetricsShare = 0.3
	}
	return c
}

// Validate reports what is wrong with c (after defaults).
func (c WorkloadConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.BodySize < 0 || c.BodySize > eventmodels.MaxTextLength {
		errs = append(errs, fmt.Errorf("body size %d: want 0 to %d bytes", c.BodySize, eventmodels.MaxTextLength))
	}
	if c.Keys < 1 || c.Keys > 1_000_000 {
		errs = append(errs, fmt.Errorf("keys %d: want 1 to 1,000,000", c.Keys))
	}
	if !(c.MetricsShare >= 0 && c.MetricsShare <= 1) {
		errs = append(errs, fmt.Errorf("metrics share %v: want 0 to 1", c.MetricsShare))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrWorkload, errors.Join(errs...))
	}
	return nil
}

// Workload makes the events of a run: event n has ID run.EventID(n), a kind
// from a fixed mix and a key from a fixed set of jobs, so that every run of
// a configuration sends the same sequence of shapes and sizes.
type Workload struct {
	cfg     WorkloadConfig
	run     RunID
	jobs    []string
	users   []string
	corr    []uuid.UUID
	pad     [numKinds]string
	size    [numKinds]int
	tmpl    [numKinds]*broker.Message
	metrics uint64 // events per 100 that are metrics
}

// NewWorkload sizes the bodies of each kind's events as bus encodes them and keeps, for
// raw publishers, the message bus would send for each kind (Template).
func NewWorkload(run RunID, cfg WorkloadConfig, bus *events.Bus) (*Workload, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	w := &Workload{cfg: cfg, run: run, metrics: uint64(cfg.MetricsShare*100 + 0.5)}
	for j := range cfg.Keys {
		w.jobs = append(w.jobs, fmt.Sprintf("job-%07d", j))
		w.users = append(w.users, fmt.Sprintf("astro-user-%03d", j%1000))
		w.corr = append(w.corr, run.EventID(uint64(MaxSeq-j))) // any fixed non-nil IDs
	}
	for k := range numKinds {
		limit := padLimit(k)
		size := func(n int) (int, error) {
			w.pad[k] = strings.Repeat("x", n)
			m, err := bus.Message(w.event(k, 0))
			if err != nil {
				return 0, err
			}
			return len(m.Body), nil
		}
		// The smallest pad whose body reaches BodySize (sizes grow with
		// the pad), or the limit.
		lo, hi := 0, limit
		if n, err := size(hi); err != nil {
			return nil, fmt.Errorf("benchcore: encode %s: %w", k, err)
		} else if n >= cfg.BodySize {
			for lo < hi {
				mid := (lo + hi) / 2
				n, err := size(mid)
				if err != nil {
					return nil, fmt.Errorf("benchcore: encode %s: %w", k, err)
				}
				if n >= cfg.BodySize {
					hi = mid
				} else {
					lo = mid + 1
				}
			}
		}
		n, err := size(hi)
		if err != nil {
			return nil, fmt.Errorf("benchcore: encode %s: %w", k, err)
		}
		w.size[k] = n
		m, err := bus.Message(w.event(k, 0))
		if err != nil {
			return nil, fmt.Errorf("benchcore: %s: %w", k, err)
		}
		w.tmpl[k] = m
	}
	return w, nil
}

// Fixed beginnings of padded fields.
const (
	queuePrefix  = "gpu-large"
	nodePrefix   = "hpc-node-17"
	outputPrefix = "s3://cosmic/results/"
	nameLimit    = 256 // eventmodels' limit on names (job, queue, node)
)

// padLimit is the longest pad the kind's padded field may take.
func padLimit(k Kind) int {
	switch k {
	case KindSubmitted:
		return nameLimit
	case KindQueued:
		return nameLimit - len(queuePrefix)
	case KindMetrics:
		return nameLimit - len(nodePrefix)
	case KindCompleted:
		return eventmodels.MaxTextLength - len(outputPrefix)
	}
	return eventmodels.MaxTextLength // status message
}

// Kind returns the kind of event n.
func (w *Workload) Kind(n uint64) Kind {
	if (n*37)%100 < w.metrics { // 37 is prime to 100: spread evenly
		return KindMetrics
	}
	return lifecycle[n%uint64(len(lifecycle))]
}

// Key returns the key (job ID) of event n.
func (w *Workload) Key(n uint64) string { return w.jobs[n%uint64(len(w.jobs))] }

// Event returns a new event n, built with the eventmodels constructors as a
// service would build it (timestamp now).
func (w *Workload) Event(n uint64) eventmodels.Event { return w.event(w.Kind(n), n) }

func (w *Workload) event(k Kind, n uint64) eventmodels.Event {
	j := n % uint64(len(w.jobs))
	job, user := w.jobs[j], w.users[j]
	opts := []eventmodels.Option{eventmodels.WithEventID(w.run.EventID(n)), eventmodels.WithCorrelationID(w.corr[j])}
	pad := w.pad[k]
	switch k {
	case KindSubmitted:
		return eventmodels.NewJobSubmitted(user, job, eventmodels.JobSpec{
			ProjectID: "proj-vlass", Telescope: "VLA", Instrument: "WIDAR", JobName: pad, Queue: "gpu-large", Priority: 5,
			Resources: eventmodels.Resources{CPUCores: 32, GPUs: 2, MemoryMB: 65_536, WalltimeSeconds: 14_400},
		}, opts...)
	case KindQueued:
		e := eventmodels.NewJobQueued(user, job, "gpu-large", 3, opts...)
		e.Queue, e.EstimatedWaitMS = queuePrefix+pad, 120_000
		return e
	case KindStarted:
		e := eventmodels.NewJobStatusChanged(user, job, eventmodels.StatusQueued, eventmodels.StatusRunning, 0, opts...)
		e.Message, e.Node = pad, "hpc-node-17"
		return e
	case KindProgress:
		e := eventmodels.NewJobStatusChanged(user, job, eventmodels.StatusRunning, eventmodels.StatusRunning, 42.5, opts...)
		e.Message, e.Node = pad, "hpc-node-17"
		return e
	case KindCompleted:
		e := eventmodels.NewJobCompleted(user, job, eventmodels.Usage{
			CPUHours: 16, GPUHours: 4, MemoryPeakMB: 51_200, RuntimeMS: 7_200_000, QueueWaitMS: 90_000, Progress: 100,
		}, opts...)
		e.OutputURI = outputPrefix + pad
		return e
	default:
		e := eventmodels.NewJobMetrics(user, job, "proj-vlass", eventmodels.Usage{
			CPUHours: 12.5, GPUHours: 3.25, MemoryPeakMB: 48_000, RuntimeMS: 5_400_000, QueueWaitMS: 90_000, Progress: 64.5,
		}, opts...)
		e.Node = nodePrefix + pad
		return e
	}
}

// BodySize returns the encoded body size of events of kind k.
func (w *Workload) BodySize(k Kind) int { return w.size[k] }

// MeanBodySize returns the mean encoded body size over the mix.
func (w *Workload) MeanBodySize() float64 {
	var sum int
	for n := range uint64(mixPeriod) {
		sum += w.size[w.Kind(n)]
	}
	return float64(sum) / mixPeriod
}

// Message returns the message the Bus would send for event n, without
// building or encoding an event: the template of n's kind (its body holds
// the template's event, not n's) with n's ID, key and send time. Raw
// publishers send it, so that raw and SDK runs put the same bytes on the
// wire.
func (w *Workload) Message(n uint64, sentUnixNano string) *broker.Message {
	t := w.tmpl[w.Kind(n)]
	h := t.Headers.Clone()
	key := w.Key(n)
	h.Set(broker.HeaderID, w.run.EventID(n).String())
	h.Set(broker.HeaderSubject, key)
	h.Set(HeaderSent, sentUnixNano)
	return &broker.Message{Topic: t.Topic, Key: key, Headers: h, Body: t.Body}
}
