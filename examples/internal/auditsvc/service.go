package auditsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/audittrail"
)

// Errors of a Service. Match them with errors.Is.
var (
	// ErrClosed is returned by every method of a Service after Close.
	ErrClosed = errors.New("auditsvc: service closed")
	// ErrUnavailable is returned when the trail failed (a write or fsync
	// error) and could not be opened again yet; the cause is wrapped too.
	ErrUnavailable = errors.New("auditsvc: audit trail unavailable")
)

// Waits after a storage failure, before the trail is reopened and the
// append tried again.
const (
	// DefaultFailureBackoff is the first wait (Config.FailureBackoff).
	DefaultFailureBackoff = 100 * time.Millisecond
	// MaxFailureBackoff caps the wait, which doubles after each failure.
	MaxFailureBackoff = 10 * time.Second
)

// Config wires the service.
type Config struct {
	// Dir is the trail's directory, created if needed. Only one Service
	// (one audittrail.Trail) may have it open at a time. Required.
	Dir string
	// Bus decodes the consumed messages. Required. Events are stored in their JSON form, encoded over the
	// Bus's registry.
	Bus *events.Bus
	// Topics are the topics Subscribe consumes; default every platform
	// topic (events.PlatformTopics), without their dead-letter topics.
	Topics []string
	// Retention is how long segments are kept: Prune removes a segment once
	// its whole UTC day lies more than Retention in the past. Default 90
	// days (audittrail.DefaultRetention); must not be negative.
	Retention time.Duration
	// Clock decides the segment (UTC day) of each record, its recorded_at
	// time and what Prune removes; default time.Now. Must be safe for
	// concurrent use.
	Clock func() time.Time
	// Logger receives storage failures, reopens, rejected messages and
	// prunes; default: discard.
	Logger *slog.Logger
	// FailureBackoff is the first wait after a storage failure; default
	// DefaultFailureBackoff. Must not be negative.
	FailureBackoff time.Duration
}

// Validate reports every problem of c in one error.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Dir) == "" {
		errs = append(errs, errors.New("Dir is required"))
	}
	if c.Bus == nil {
		errs = append(errs, errors.New("Bus is required"))
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("Retention %v must not be negative", c.Retention))
	}
	if c.FailureBackoff < 0 {
		errs = append(errs, fmt.Errorf("FailureBackoff %v must not be negative", c.FailureBackoff))
	}
	seen := map[string]bool{}
	for _, t := range c.Topics {
		switch {
		case strings.TrimSpace(t) == "":
			errs = append(errs, errors.New("Topics: empty topic name"))
		case seen[t]:
			errs = append(errs, fmt.Errorf("Topics: %q listed twice", t))
		}
		seen[t] = true
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("auditsvc: config: %w", errors.Join(errs...))
}

func (c *Config) setDefaults() {
	if len(c.Topics) == 0 {
		for _, t := range events.PlatformTopics() {
			c.Topics = append(c.Topics, t.Name)
		}
	} else {
		c.Topics = slices.Clone(c.Topics)
	}
	if c.Retention == 0 {
		c.Retention = audittrail.DefaultRetention
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.FailureBackoff == 0 {
		c.FailureBackoff = DefaultFailureBackoff
	}
}

// Service records every consumed event in the audit trail. Its methods are
// safe for concurrent use.
type Service struct {
	cfg     Config
	codec   *eventmodels.JSONCodec
	handler broker.Handler
	opts    []audittrail.Option
	log     *slog.Logger
	verify  chan struct{} // one verification at a time

	mu      sync.Mutex
	trail   *audittrail.Trail // nil after a failure until reopened
	closed  bool
	lastErr error // last storage failure

	recorded, duplicates, rejected atomic.Int64
	storageErrors, reopens, pruned atomic.Int64
}

// New validates cfg and opens the trail in cfg.Dir, which rebuilds the
// index of recorded event IDs from disk (so redeliveries after a restart
// are recognised) and cuts off a torn tail left by a crash.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	s := &Service{
		cfg:    cfg,
		codec:  eventmodels.NewJSONCodec(cfg.Bus.Registry(), 0),
		log:    cfg.Logger.With("service", "audit"),
		verify: make(chan struct{}, 1),
		opts: []audittrail.Option{
			audittrail.Clock(cfg.Clock),
			audittrail.Retention(cfg.Retention),
			audittrail.Logger(cfg.Logger),
		},
	}
	r := events.NewRouter()
	events.OnEvent(r, s.handle)
	h, err := cfg.Bus.Handler(r)
	if err != nil {
		return nil, fmt.Errorf("auditsvc: %w", err)
	}
	s.handler = h
	tr, err := audittrail.Open(cfg.Dir, s.opts...)
	if err != nil {
		return nil, fmt.Errorf("auditsvc: %w", err)
	}
	s.trail = tr
	return s, nil
}

// Close closes the trail after every record written is fsynced. Stop the
// consumers first (see the package documentation). Close returns the
// trail's error, if it had failed; calling it again returns nil.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	tr := s.trail
	s.trail = nil
	if tr == nil {
		return nil
	}
	if err := tr.Close(); err != nil {
		return fmt.Errorf("auditsvc: close: %w", err)
	}
	return nil
}

// Topics returns the topics Subscribe consumes.
func (s *Service) Topics() []string { return slices.Clone(s.cfg.Topics) }

// Handler returns the handler that records each message's event. It
// returns nil once the record is fsynced, or at once for an event already
// recorded (a redelivery, counted as a duplicate). A message that does not
// decode, or whose event cannot be recorded, fails with an error marked
// broker.Permanent (it is dead-lettered, nothing is appended). A storage
// failure is retried inside the handler until the event is recorded or ctx
// ends; the handler then returns ctx's error and the message stays
// unacknowledged. Do not run it under a Subscription.HandlerTimeout.
func (s *Service) Handler() broker.Handler {
	return func(ctx context.Context, m *broker.Message) error {
		err := s.handler(ctx, m)
		if err != nil && broker.IsPermanent(err) {
			s.rejected.Add(1)
			s.log.WarnContext(ctx, "audit: message cannot be recorded; it goes to the dead letter",
				"topic", m.Topic, "partition", m.Delivery.Partition, "offset", m.Delivery.Offset,
				"id", m.Header(broker.HeaderID), "type", m.Header(broker.HeaderType), "error", err)
		}
		return err
	}
}

// handle records one decoded event, every type alike (the Router's
// OnEvent handler).
func (s *Service) handle(ctx context.Context, e eventmodels.Event) error {
	m, _ := events.MessageFromContext(ctx)
	entry, err := audittrail.NewEntry(m.Topic, e, s.codec)
	if err != nil {
		return reject(err)
	}
	return s.record(ctx, m, entry)
}

// reject marks the error of an event that cannot be recorded permanent.
func reject(err error) error {
	if broker.IsPermanent(err) {
		return err
	}
	return broker.Permanent(fmt.Errorf("auditsvc: %w", err))
}

// record appends entry, reopening the trail and retrying after a storage
// failure, until it is durable or ctx ends.
func (s *Service) record(ctx context.Context, m *broker.Message, entry audittrail.Entry) error {
	wait := s.cfg.FailureBackoff
	for {
		tr, err := s.acquire()
		if err == nil {
			var appended bool
			appended, err = tr.Append(ctx, entry)
			switch {
			case err == nil:
				if appended {
					s.recorded.Add(1)
				} else {
					s.duplicates.Add(1)
				}
				return nil
			case errors.Is(err, audittrail.ErrInvalidEntry):
				return reject(err)
			case ctx.Err() != nil:
				// Stopping: leave the message unacknowledged. The record
				// may still become durable; its redelivery is then a
				// duplicate.
				return err
			case errors.Is(err, audittrail.ErrClosed) && !s.isCurrent(tr):
				continue // replaced by a reopen, or the service closed
			}
			err = s.failed(tr, err)
		}
		if errors.Is(err, ErrClosed) {
			// Neither acknowledge nor dead-letter: wait for the
			// subscription to stop, so the message is delivered again.
			<-ctx.Done()
			return fmt.Errorf("%w before event %s was recorded: %w", ErrClosed, entry.EventID, ctx.Err())
		}
		s.log.ErrorContext(ctx, "audit: cannot record event; retrying", "event_id", entry.EventID,
			"topic", m.Topic, "retry_in", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("auditsvc: event %s not recorded: %w (gave up: %w)", entry.EventID, err, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, MaxFailureBackoff)
	}
}

// acquire returns the open trail, opening it again after a failure.
func (s *Service) acquire() (*audittrail.Trail, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.trail != nil {
		return s.trail, nil
	}
	tr, err := audittrail.Open(s.cfg.Dir, s.opts...)
	if err != nil {
		s.lastErr = err
		return nil, fmt.Errorf("%w: reopen: %w", ErrUnavailable, err)
	}
	s.trail = tr
	s.reopens.Add(1)
	s.log.Warn("audit: trail reopened after a storage failure", "dir", s.cfg.Dir)
	return tr, nil
}

func (s *Service) isCurrent(tr *audittrail.Trail) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.trail == tr
}

// failed takes tr, which returned err, out of service (the next acquire
// reopens the directory) and returns the error to report.
func (s *Service) failed(tr *audittrail.Trail, err error) error {
	s.storageErrors.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr = err
	if s.trail == tr {
		s.trail = nil
		if cerr := tr.Close(); cerr != nil {
			s.log.Debug("audit: closing the failed trail", "error", cerr)
		}
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// withTrail runs fn on the open trail; if the trail was replaced while fn
// ran (a reopen after a failure), it runs fn once more on the new one.
func (s *Service) withTrail(fn func(tr *audittrail.Trail) error) error {
	for attempt := 0; ; attempt++ {
		tr, err := s.acquire()
		if err != nil {
			return err
		}
		err = fn(tr)
		if attempt == 0 && errors.Is(err, audittrail.ErrClosed) && !s.isCurrent(tr) {
			continue
		}
		return err
	}
}

// Subscribe subscribes Handler to every topic of Topics() as group, with
// concurrency handler goroutines per topic (per-key order is kept) and
// failed messages dead-lettered. On error it closes the consumers it made.
func (s *Service) Subscribe(ctx context.Context, sub broker.Subscriber, group string, concurrency int) ([]broker.Consumer, error) {
	cs, err := broker.SubscribeTopics(ctx, sub, s.cfg.Topics,
		broker.Subscription{Group: group, Concurrency: concurrency, OnFailure: broker.OnFailureDeadLetter}, s.Handler())
	if err != nil {
		return nil, fmt.Errorf("auditsvc: %w", err)
	}
	return cs, nil
}

// Stats are the service's counters and the state of its trail.
type Stats struct {
	// Recorded counts the distinct events this Service appended since New.
	Recorded int64 `json:"recorded"`
	// Duplicates counts deliveries of events already in the trail
	// (redeliveries), acknowledged without appending.
	Duplicates int64 `json:"duplicates"`
	// Rejected counts messages failed permanently (dead-lettered): they do
	// not decode, or their event cannot be recorded.
	Rejected int64 `json:"rejected"`
	// StorageErrors counts failed appends (write or fsync errors) that were
	// retried; Reopens the times the trail was opened again after one.
	StorageErrors int64 `json:"storage_errors"`
	Reopens       int64 `json:"reopens"`
	// PrunedSegments counts segments removed by retention.
	PrunedSegments int64 `json:"pruned_segments"`
	// Available is false while the trail is failed and not reopened yet;
	// LastError is the last storage failure, if any.
	Available bool   `json:"available"`
	LastError string `json:"last_error,omitempty"`
	// Records is the number of records in the retained trail, from every
	// run; LastSeq and LastHash are the chain head (publish them outside
	// the trail to detect truncation later); DurableSeq is the highest seq
	// covered by an fsync.
	Records    int    `json:"records"`
	LastSeq    uint64 `json:"last_seq"`
	LastHash   string `json:"last_hash"`
	DurableSeq uint64 `json:"durable_seq"`
}

// Stats returns the counters and the trail's state. It does not reopen a
// failed trail.
func (s *Service) Stats() Stats {
	st := Stats{
		Recorded: s.recorded.Load(), Duplicates: s.duplicates.Load(), Rejected: s.rejected.Load(),
		StorageErrors: s.storageErrors.Load(), Reopens: s.reopens.Load(), PrunedSegments: s.pruned.Load(),
	}
	s.mu.Lock()
	tr := s.trail
	if s.lastErr != nil {
		st.LastError = s.lastErr.Error()
	}
	s.mu.Unlock()
	if tr != nil {
		ts := tr.Stats()
		st.Available = true
		st.Records, st.DurableSeq = ts.Records, ts.DurableSeq
		st.LastSeq, st.LastHash = tr.Last()
	}
	return st
}

// Consumed returns the number of distinct events this Service recorded
// since New; redeliveries of recorded events are not counted.
func (s *Service) Consumed() int64 { return s.recorded.Load() }
