package notifysvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/google/uuid"
)

// Config wires the service.
type Config struct {
	// Publisher emits the notification events to the notifications topic
	// (the durable bus). Nil: nothing is emitted, notifications are only
	// delivered.
	Publisher *events.Bus
	// Channels deliver notifications, at most one per Name. Required.
	Channels []Channel
	// Preferences choose the events and channels of each user; every
	// channel they name must be in Channels. Nil: DefaultPreferences over
	// every channel.
	Preferences *Preferences
	// Dedupe remembers which (channel, job event) pairs were handled;
	// default broker.NewMemoryDedupeStore(DefaultDedupeWindow). A store
	// shared between replicas (Redis, SQL) makes the guarantee hold across
	// them and across restarts.
	Dedupe broker.DedupeStore
	// Logger; default discard.
	Logger *slog.Logger
	// Clock stamps notification events; default time.Now.
	Clock func() time.Time
	// OnDelivery, if set, is told of every channel delivery's outcome:
	// err nil when delivered, else the channel's error, with deadLettered
	// true when the channel gave up and parked the notification (the
	// handler then succeeds: the job event is not retried). A program
	// counts them in its signals (healthsvc.Recorder.RecordOutcome), so
	// that failing deliveries raise the error-rate alert. It must not
	// block.
	OnDelivery func(channel eventmodels.Channel, err error, deadLettered bool)
}

// DefaultDedupeWindow is how many (channel, event) pairs the default
// de-duplication store remembers.
const DefaultDedupeWindow = 100_000

// bookkeeping bounds the dedupe Commit/Release calls made after delivery,
// which run even when the handler's ctx has ended.
const bookkeeping = 10 * time.Second

// namespace makes the name-based UUIDs of notification events.
var namespace = uuid.MustParse("146efe48-a730-4e3e-b04b-6d7a338737b0")

// NotificationID is the event_id of the notification a channel gets for a
// job event: a name-based (version 5) UUID of both, the same every time the
// job event is handled.
func NotificationID(channel eventmodels.Channel, trigger uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(namespace, []byte(string(channel)+"|"+trigger.String()))
}

// Service turns terminal job events into notifications. Safe for
// concurrent use.
type Service struct {
	cfg    Config
	log    *slog.Logger
	chans  map[eventmodels.Channel]Channel
	router *events.Router

	mu        sync.Mutex
	stats     Stats
	consumers []broker.Consumer
	closed    bool
}

// Stats counts what the service did. Per-channel maps are keyed by channel
// name.
type Stats struct {
	// Handled counts terminal job events handled, redeliveries included.
	Handled int64 `json:"terminal_events_handled"`
	// Filtered counts terminal job events whose user wants no
	// notification of them.
	Filtered int64 `json:"filtered_by_preferences"`
	// Emitted counts notification events published to the notifications
	// topic.
	Emitted int64 `json:"emitted"`
	// EmitFailures counts failed publishes (the job event is retried).
	EmitFailures int64 `json:"emit_failures"`
	// Delivered counts notifications a channel delivered.
	Delivered map[eventmodels.Channel]int64 `json:"delivered"`
	// DeadLettered counts notifications a channel gave up on and parked.
	DeadLettered map[eventmodels.Channel]int64 `json:"dead_lettered"`
	// Failed counts deliveries that failed without a dead letter (the job
	// event is retried).
	Failed map[eventmodels.Channel]int64 `json:"failed"`
	// Duplicates counts deliveries skipped because the channel had already
	// handled that job event (a redelivery).
	Duplicates map[eventmodels.Channel]int64 `json:"duplicates_ignored"`
}

func (s Stats) clone() Stats {
	cp := func(m map[eventmodels.Channel]int64) map[eventmodels.Channel]int64 {
		out := make(map[eventmodels.Channel]int64, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	s.Delivered, s.DeadLettered, s.Failed, s.Duplicates = cp(s.Delivered), cp(s.DeadLettered), cp(s.Failed), cp(s.Duplicates)
	return s
}

// New returns a service, or an error naming each problem of cfg.
func New(cfg Config) (*Service, error) {
	var errs []error
	if len(cfg.Channels) == 0 {
		errs = append(errs, errors.New("Config.Channels needs at least one channel"))
	}
	chans := map[eventmodels.Channel]Channel{}
	names := make([]eventmodels.Channel, 0, len(cfg.Channels))
	for i, c := range cfg.Channels {
		switch {
		case c == nil:
			errs = append(errs, fmt.Errorf("Config.Channels[%d] is nil", i))
		case !c.Name().Valid():
			errs = append(errs, fmt.Errorf("Config.Channels[%d]: %q is not a notification channel", i, c.Name()))
		case chans[c.Name()] != nil:
			errs = append(errs, fmt.Errorf("Config.Channels: two channels named %q", c.Name()))
		default:
			chans[c.Name()] = c
			names = append(names, c.Name())
		}
	}
	if cfg.Preferences == nil {
		cfg.Preferences = DefaultPreferences(names...)
	} else {
		if err := cfg.Preferences.Validate(); err != nil {
			errs = append(errs, err)
		}
		for _, c := range cfg.Preferences.Channels() {
			if c.Valid() && chans[c] == nil && len(cfg.Channels) > 0 {
				errs = append(errs, fmt.Errorf("preferences name channel %q, which is not configured (configured: %v)", c, names))
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("notifysvc: %w", errors.Join(errs...))
	}
	if cfg.Dedupe == nil {
		cfg.Dedupe = broker.NewMemoryDedupeStore(DefaultDedupeWindow)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	s := &Service{cfg: cfg, log: cfg.Logger, chans: chans, stats: Stats{
		Delivered: map[eventmodels.Channel]int64{}, DeadLettered: map[eventmodels.Channel]int64{},
		Failed: map[eventmodels.Channel]int64{}, Duplicates: map[eventmodels.Channel]int64{},
	}}
	s.router = s.newRouter()
	return s, nil
}

// Router returns the service's handlers: job.completed, job.failed and
// job.cancelled, each notifying (see Notify).
func (s *Service) Router() *events.Router { return s.router }

func (s *Service) newRouter() *events.Router {
	r := events.NewRouter()
	events.On(r, func(ctx context.Context, e *eventmodels.JobCompleted) error {
		u := e.Usage
		return s.notify(ctx, e, trigger{severity: eventmodels.SeverityInfo, title: "Job " + e.JobID + " completed",
			message: fmt.Sprintf("Finished in %s after %s in the queue; %.2f CPU hours, %.2f GPU hours, peak memory %d MB.",
				ms(u.RuntimeMS), ms(u.QueueWaitMS), u.CPUHours, u.GPUHours, u.MemoryPeakMB)})
	})
	events.On(r, func(ctx context.Context, e *eventmodels.JobFailed) error {
		msg := fmt.Sprintf("Failed while %s after %s: %s (%s, exit code %d).", e.FromStatus, ms(e.RuntimeMS), e.ErrorMessage, e.ErrorClass, e.ExitCode)
		if e.Retryable {
			msg += " It can be resubmitted."
		}
		return s.notify(ctx, e, trigger{severity: eventmodels.SeverityError, title: "Job " + e.JobID + " failed", message: msg})
	})
	events.On(r, func(ctx context.Context, e *eventmodels.JobCancelled) error {
		msg := fmt.Sprintf("Cancelled by %s while %s.", e.CancelledBy, e.FromStatus)
		if e.Reason != "" {
			msg += " Reason: " + e.Reason
		}
		return s.notify(ctx, e, trigger{severity: eventmodels.SeverityWarning, title: "Job " + e.JobID + " cancelled", message: msg})
	})
	return r
}

// Subscribe runs the Router for group on job-lifecycle (filtered to the
// terminal event types at the broker) with concurrency handler goroutines.
// The consumer is returned and also closed by Close.
func (s *Service) Subscribe(ctx context.Context, bus *events.Bus, group string, concurrency int) (broker.Consumer, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, errors.New("notifysvc: service is closed")
	}
	c, err := bus.Subscribe(ctx, broker.Subscription{
		Group: group, Concurrency: concurrency, EventTypes: NotifiableEvents(),
	}, s.router)
	if err != nil {
		return nil, fmt.Errorf("notifysvc: %w", err)
	}
	s.mu.Lock()
	s.consumers = append(s.consumers, c)
	s.mu.Unlock()
	return c, nil
}

// Stats returns a copy of the counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.clone()
}

// HTTPHandler serves GET /stats: Stats as JSON.
func (s *Service) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.Stats())
	})
	return mux
}

// Close stops the consumers started by Subscribe (in-flight deliveries
// finish, bounded by their DrainTimeout) and closes the channels that are
// io.Closers. It is idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	cs := s.consumers
	s.consumers = nil
	s.mu.Unlock()
	errs := []error{broker.CloseAll(cs...)}
	for _, c := range s.cfg.Channels {
		if cl, ok := c.(io.Closer); ok {
			if err := cl.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Notify handles one job event as the Router does: for a terminal one, it
// notifies the job's user through every channel their preference names
// (concurrently), once per channel. It returns nil when every channel
// delivered or dead-lettered (or had done so before), else the failures
// joined; call it again with the same event to retry the channels that
// failed. Other events return nil.
func (s *Service) Notify(ctx context.Context, e eventmodels.Event) error {
	if err := s.router.Dispatch(ctx, e); !errors.Is(err, broker.ErrSkipped) {
		return err
	}
	return nil
}

// notify notifies the user of the job event e, described by t.
func (s *Service) notify(ctx context.Context, e eventmodels.Event, t trigger) error {
	env := e.Envelope()
	pref := s.cfg.Preferences.For(env.UserID)
	s.mu.Lock()
	s.stats.Handled++
	if !pref.Wants(env.EventType) || len(pref.Channels) == 0 {
		s.stats.Filtered++
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	errs := make([]error, len(pref.Channels))
	var wg sync.WaitGroup
	for i, name := range pref.Channels {
		wg.Go(func() { errs[i] = s.deliver(ctx, name, e, t) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// deliver emits and delivers the notification of e on ch, once.
func (s *Service) deliver(ctx context.Context, name eventmodels.Channel, e eventmodels.Event, t trigger) (err error) {
	ch := s.chans[name]
	if ch == nil {
		return fmt.Errorf("notifysvc: channel %q is not configured", name)
	}
	env := e.Envelope()
	key := string(name) + "|" + env.EventID.String()
	mine, err := s.cfg.Dedupe.Claim(ctx, key)
	if err != nil {
		return fmt.Errorf("notifysvc: %s: dedupe claim: %w", name, err)
	}
	if !mine {
		s.count(func(st *Stats) { st.Duplicates[name]++ })
		return nil
	}
	done := false
	defer func() {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeeping)
		defer cancel()
		if done {
			if cerr := s.cfg.Dedupe.Commit(bctx, key); cerr != nil {
				_ = s.cfg.Dedupe.Release(bctx, key)
				err = fmt.Errorf("notifysvc: %s: dedupe commit (it will be delivered again): %w", name, cerr)
			}
			return
		}
		_ = s.cfg.Dedupe.Release(bctx, key) // failed, or panicked: the next delivery retries
	}()

	n := eventmodels.NewNotification(env.UserID, env.UserID, name, t.severity, t.title, truncate(t.message, eventmodels.MaxTextLength),
		eventmodels.WithEventID(NotificationID(name, env.EventID)),
		eventmodels.WithCorrelationID(env.CorrelationID), eventmodels.WithClock(s.cfg.Clock))
	n.Category, n.JobID = env.EventType, e.Key()
	if err := s.emit(ctx, key, n); err != nil {
		return err
	}
	derr := ch.Deliver(ctx, n)
	if s.cfg.OnDelivery != nil {
		s.cfg.OnDelivery(name, derr, errors.Is(derr, ErrDeadLettered))
	}
	switch {
	case derr == nil:
		s.count(func(st *Stats) { st.Delivered[name]++ })
	case errors.Is(derr, ErrDeadLettered):
		s.count(func(st *Stats) { st.DeadLettered[name]++ })
		s.log.WarnContext(ctx, "notification dead-lettered", "channel", name, "job_id", n.JobID, "error", derr)
	default:
		s.count(func(st *Stats) { st.Failed[name]++ })
		return fmt.Errorf("notifysvc: %s: deliver %s: %w", name, n.EventID, derr)
	}
	done = true
	return nil
}

// emit publishes n once per delivery key: a job event redelivered after a
// channel failed is not emitted again.
func (s *Service) emit(ctx context.Context, key string, n *eventmodels.Notification) error {
	if s.cfg.Publisher == nil {
		return nil
	}
	ekey := "emitted|" + key
	mine, err := s.cfg.Dedupe.Claim(ctx, ekey)
	if err != nil {
		return fmt.Errorf("notifysvc: %s: dedupe claim: %w", n.Channel, err)
	}
	if !mine {
		return nil
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeeping)
	defer cancel()
	if err := s.cfg.Publisher.Publish(ctx, n); err != nil {
		_ = s.cfg.Dedupe.Release(bctx, ekey)
		s.count(func(st *Stats) { st.EmitFailures++ })
		return fmt.Errorf("notifysvc: %s: emit %s: %w", n.Channel, n.EventID, err)
	}
	s.count(func(st *Stats) { st.Emitted++ })
	if err := s.cfg.Dedupe.Commit(bctx, ekey); err != nil {
		_ = s.cfg.Dedupe.Release(bctx, ekey) // emitted again next time, under the same event_id
	}
	return nil
}

func (s *Service) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// trigger is what a notification says about a terminal job event.
type trigger struct {
	severity       eventmodels.Severity
	title, message string
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func ms(n int64) string { return (time.Duration(n) * time.Millisecond).String() }
