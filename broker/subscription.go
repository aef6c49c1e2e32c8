package broker

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Subscription says what to consume and how.
type Subscription struct {
	// Topic to consume. Required.
	Topic string
	// Group names the consumer group (Kafka group ID, RabbitMQ queue name,
	// memory group). Every group gets every message; the members of one
	// group share the work. Required unless Ephemeral.
	Group string
	// Ephemeral subscriptions keep no state on the broker: they see only
	// messages published after Subscribe returned, nothing is committed,
	// and nothing survives Close (RabbitMQ: exclusive auto-delete queue;
	// Kafka: partition consumers from the newest offset). For live views
	// such as dashboards. A Group, if given, is only a name prefix.
	Ephemeral bool
	// EventTypes filters by event type (the ce_type header) with AMQP topic
	// patterns: words separated by dots, "*" matches one word, "#" matches
	// zero or more ("job.*", "job.#", "system.health"). Empty means every
	// message. Messages that do not match are acknowledged without calling
	// the handler (RabbitMQ does not even deliver them).
	EventTypes []string
	// Concurrency is the number of handler goroutines; default 1. Order is
	// kept per key: messages with one key always go to the same goroutine.
	Concurrency int
	// MaxInFlight bounds the messages handed out and not yet acknowledged
	// (RabbitMQ prefetch, Kafka and memory fetch window); default 256.
	MaxInFlight int
	// Retry says how a failing handler is retried in place.
	Retry RetryPolicy
	// OnFailure says what happens to a message whose last attempt failed;
	// default OnFailureDeadLetter.
	OnFailure FailurePolicy
	// DeadLetterFallback says what happens, under OnFailureDeadLetter, to a
	// message whose dead letter is refused for good (unroutable, not
	// authorised, too large even without its body); default FallbackStop.
	// Transient dead-letter failures are retried with backoff instead.
	DeadLetterFallback DeadLetterFallback
	// HandlerTimeout bounds each handler call (its ctx is cancelled and the
	// attempt counts as failed); 0 means no bound.
	HandlerTimeout time.Duration
	// DrainTimeout bounds how long a stopping subscription waits for
	// in-flight handlers before cancelling their ctx; default 30s.
	DrainTimeout time.Duration
	// StartAt says where a group with no committed position starts;
	// default StartOldest. Ignored by ephemeral subscriptions (always the
	// newest).
	StartAt StartPosition
	// Hooks observe and wrap this subscription's handling (see Hook),
	// after the backend's own hooks.
	Hooks []Hook
}

// FailurePolicy is what a subscription does with a message whose handler
// failed on its last attempt (or with a permanent error).
type FailurePolicy int

const (
	// OnFailureDeadLetter publishes the message to "<topic>.dlq" with the original
	// headers plus the error, the attempt count and the time
	// (HeaderDLQError, HeaderDLQAttempts, HeaderDLQTime, …), then
	// acknowledges it and moves on. The message is not acknowledged before
	// it is dead-lettered. A dead letter too large for its destination
	// goes without its body (HeaderDLQBodySize, HeaderDLQBodySHA256). A
	// dead-letter publish that fails for a transient reason is retried
	// with backoff until the subscription stops; one refused for good
	// follows Subscription.DeadLetterFallback.
	OnFailureDeadLetter FailurePolicy = iota
	// OnFailureStop leaves the message unacknowledged and stops the subscription
	// with a *HandlerError (Consumer.Err). It is delivered again when the
	// group resumes. For consumers that must never skip a message.
	OnFailureStop
	// OnFailureDiscard logs the failure, counts it in metrics, and acknowledges the
	// message. Only for data whose loss is acceptable (live views).
	OnFailureDiscard
)

// String returns "dead-letter", "stop" or "discard".
func (p FailurePolicy) String() string {
	switch p {
	case OnFailureDeadLetter:
		return "dead-letter"
	case OnFailureStop:
		return "stop"
	case OnFailureDiscard:
		return "discard"
	}
	return fmt.Sprintf("FailurePolicy(%d)", int(p))
}

// StartPosition is where a new group starts reading.
type StartPosition int

const (
	// StartOldest reads everything the broker still holds.
	StartOldest StartPosition = iota
	// StartNewest reads only what is published after the group joined.
	StartNewest
)

// RetryPolicy is exponential backoff with jitter. The zero value means the
// defaults.
type RetryPolicy struct {
	// MaxAttempts counts every handler call, the first included: 1 means
	// no retry. Default 3.
	MaxAttempts int
	// InitialBackoff is the wait before the second attempt; default 100ms.
	InitialBackoff time.Duration
	// MaxBackoff caps the wait; default 10s.
	MaxBackoff time.Duration
	// Multiplier grows the wait after each attempt; default 2.
	Multiplier float64
	// Jitter spreads each wait uniformly by ± this fraction; default 0.2.
	// A negative value turns jitter off.
	Jitter float64
}

// Default values of a Subscription.
const (
	DefaultConcurrency    = 1
	DefaultMaxInFlight    = 256
	DefaultDrainTimeout   = 30 * time.Second
	DefaultMaxAttempts    = 3
	DefaultInitialBackoff = 100 * time.Millisecond
	DefaultMaxBackoff     = 10 * time.Second
	DefaultMultiplier     = 2.0
	DefaultJitter         = 0.2
)

// WithDefaults returns p with zero fields replaced by the defaults.
func (p RetryPolicy) WithDefaults() RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.InitialBackoff == 0 {
		p.InitialBackoff = DefaultInitialBackoff
	}
	if p.MaxBackoff == 0 {
		p.MaxBackoff = DefaultMaxBackoff
	}
	if p.Multiplier == 0 {
		p.Multiplier = DefaultMultiplier
	}
	if p.Jitter == 0 {
		p.Jitter = DefaultJitter
	} else if p.Jitter < 0 {
		p.Jitter = 0
	}
	return p
}

// Validate reports every problem of p (after defaults) in one error.
func (p RetryPolicy) Validate() error {
	p = p.WithDefaults()
	var errs []error
	if p.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("Retry.MaxAttempts must be at least 1, got %d", p.MaxAttempts))
	}
	if p.InitialBackoff < 0 || p.MaxBackoff < 0 {
		errs = append(errs, errors.New("Retry backoffs must not be negative"))
	}
	if p.MaxBackoff < p.InitialBackoff {
		errs = append(errs, fmt.Errorf("Retry.MaxBackoff %v is below InitialBackoff %v", p.MaxBackoff, p.InitialBackoff))
	}
	if p.Multiplier < 1 {
		errs = append(errs, fmt.Errorf("Retry.Multiplier must be at least 1, got %v", p.Multiplier))
	}
	if p.Jitter > 1 {
		errs = append(errs, fmt.Errorf("Retry.Jitter must be at most 1, got %v", p.Jitter))
	}
	return errors.Join(errs...)
}

// WithDefaults returns s with zero fields replaced by the defaults.
func (s Subscription) WithDefaults() Subscription {
	if s.Concurrency == 0 {
		s.Concurrency = DefaultConcurrency
	}
	if s.MaxInFlight == 0 {
		s.MaxInFlight = DefaultMaxInFlight
	}
	if s.DrainTimeout == 0 {
		s.DrainTimeout = DefaultDrainTimeout
	}
	s.Retry = s.Retry.WithDefaults()
	return s
}

// Validate reports every problem of s (after defaults) in one error that
// matches ErrInvalidSubscription.
func (s Subscription) Validate() error {
	s = s.WithDefaults()
	var errs []error
	if strings.TrimSpace(s.Topic) == "" {
		errs = append(errs, errors.New("Topic is required"))
	}
	if !s.Ephemeral && strings.TrimSpace(s.Group) == "" {
		errs = append(errs, errors.New("Group is required for a durable subscription (or set Ephemeral)"))
	}
	if s.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("Concurrency must be at least 1, got %d", s.Concurrency))
	}
	if s.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("MaxInFlight must be at least 1, got %d", s.MaxInFlight))
	}
	if s.HandlerTimeout < 0 || s.DrainTimeout < 0 {
		errs = append(errs, errors.New("timeouts must not be negative"))
	}
	if s.OnFailure < OnFailureDeadLetter || s.OnFailure > OnFailureDiscard {
		errs = append(errs, fmt.Errorf("OnFailure %v is not a FailurePolicy", s.OnFailure))
	}
	if s.DeadLetterFallback != FallbackStop && s.DeadLetterFallback != FallbackDiscard {
		errs = append(errs, fmt.Errorf("DeadLetterFallback %v is not a DeadLetterFallback", s.DeadLetterFallback))
	}
	if s.StartAt != StartOldest && s.StartAt != StartNewest {
		errs = append(errs, fmt.Errorf("StartAt %d is not a StartPosition", s.StartAt))
	}
	for _, p := range s.EventTypes {
		if err := validPattern(p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.Retry.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := ValidateHooks(s.Hooks); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidSubscription, errors.Join(errs...))
}

// Matches reports whether a message of eventType passes s.EventTypes.
func (s *Subscription) Matches(eventType string) bool {
	if len(s.EventTypes) == 0 {
		return true
	}
	for _, p := range s.EventTypes {
		if MatchEventType(p, eventType) {
			return true
		}
	}
	return false
}

func validPattern(p string) error {
	if p == "" {
		return errors.New("EventTypes: empty pattern")
	}
	for _, w := range strings.Split(p, ".") {
		if w == "" {
			return fmt.Errorf("EventTypes: pattern %q has an empty word", p)
		}
		if strings.ContainsAny(w, "*#") && w != "*" && w != "#" {
			return fmt.Errorf("EventTypes: in pattern %q, * and # must be whole words", p)
		}
	}
	return nil
}

// MatchEventType reports whether eventType matches an AMQP topic pattern:
// words separated by dots, "*" matches exactly one word, "#" zero or more.
// It is the rule RabbitMQ applies to bindings, so every backend filters alike.
func MatchEventType(pattern, eventType string) bool {
	return matchWords(strings.Split(pattern, "."), strings.Split(eventType, "."))
}

func matchWords(p, w []string) bool {
	for len(p) > 0 {
		switch p[0] {
		case "#":
			for i := 0; i <= len(w); i++ {
				if matchWords(p[1:], w[i:]) {
					return true
				}
			}
			return false
		case "*":
			if len(w) == 0 {
				return false
			}
		default:
			if len(w) == 0 || w[0] != p[0] {
				return false
			}
		}
		p, w = p[1:], w[1:]
	}
	return len(w) == 0
}
