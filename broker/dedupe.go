package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DedupeStore remembers which messages were handled successfully, for the
// Dedupe middleware. Implementations must be safe for concurrent use.
//
// The interface is a claim protocol rather than a Seen/Mark pair, because a
// check followed by a separate mark is not correct under concurrent
// deliveries of one id (a rebalance, or a RabbitMQ redelivery while the first
// copy is still being handled elsewhere): both copies would see "not seen"
// and both would be handled. A single "mark if new" before handling is not
// correct either: a handler that then fails, or a process that crashes,
// leaves the id marked although the message was never handled, and its
// redelivery would be dropped. With claims, exactly one caller at a time
// handles an id, an id is only ever recorded as done after its handler
// succeeded, and a failed or abandoned claim lets the next delivery handle
// the message.
//
// Stores shared between processes (Redis, SQL) implement a claim as a lease
// that expires (SET NX PX, a row with a deadline), so a claim held by a
// process that crashed does not block the id forever.
type DedupeStore interface {
	// Claim tries to take id for handling. It returns true when the
	// caller now holds the claim and must end it with Commit or Release,
	// and false when id was committed before (the message is a duplicate).
	// When another caller holds the claim, Claim waits until that claim
	// ends — committed: false; released or expired: the caller takes it,
	// true — or until ctx ends, returning ctx's error.
	Claim(ctx context.Context, id string) (bool, error)
	// Commit records that the message with id was handled successfully and
	// ends the claim; from now on Claim(id) returns false, for as long as
	// the store remembers id.
	Commit(ctx context.Context, id string) error
	// Release ends a claim without recording id: the handler failed, and
	// the next delivery of the message must be handled.
	Release(ctx context.Context, id string) error
}

// HookDuplicate is called by the Dedupe middleware for each message it
// skipped (acknowledged without calling the handler) as a duplicate.
type HookDuplicate interface {
	OnDuplicate(ctx context.Context, m *Message)
}

// DedupeOption configures the Dedupe middleware.
type DedupeOption func(*dedupeConfig)

type dedupeConfig struct {
	key func(*Message) string
}

// DedupeKey sets how the store key of a message is formed; a message whose
// key is "" is handled without de-duplication. The default, DefaultDedupeKey,
// combines the subscription group and the event ID (HeaderID).
func DedupeKey(key func(m *Message) string) DedupeOption {
	return func(c *dedupeConfig) { c.key = key }
}

// DefaultDedupeKey is m.Delivery.Group + "|" + the event ID (in the form
// CanonicalID gives: a UUID written in upper case is the same ID in lower
// case), or "" when the message has no HeaderID. The group is part of the key so that one store
// can serve several subscriptions: each group must handle every message once.
func DefaultDedupeKey(m *Message) string {
	id := m.Header(HeaderID)
	if id == "" {
		return ""
	}
	return m.Delivery.Group + "|" + CanonicalID(id)
}

// dedupeBookkeeping bounds each Commit and Release call Dedupe makes after
// the handler returned: they run even when the handler's ctx has ended (a
// claim left behind would hold up the next delivery), but not forever.
const dedupeBookkeeping = 10 * time.Second

// Dedupe skips messages that were already handled successfully, by event ID
// (HeaderID; messages without one pass through un-deduplicated). For each
// message it claims the ID in store; if the ID was committed before, it
// returns ErrDuplicate without calling the handler: the pipeline
// acknowledges the message and tells HookDuplicate. Otherwise the handler
// runs; the ID is committed only when it returned nil, and released when it
// failed, so a failed (or panicking) message is handled again on
// redelivery. Concurrent deliveries of one ID are handled one at a time
// (see DedupeStore).
//
// A store error is returned, wrapped, so the message is not acknowledged and
// is retried — never treated as "seen" nor ignored. If Commit fails after
// the handler succeeded, the error is returned too and the claim released:
// the message will be handled again. De-duplication narrows at-least-once
// delivery down to "once, as long as the store remembers", not exactly-once.
//
// It is an AttemptMiddleware: register it as a hook (a backend's or a
// Subscription's Hooks). It then runs inside the pipeline's retries (a
// store error is retried like a handler error) and inside its dead-letter
// step: a message that ends in the dead letter was not handled and is not
// recorded, so re-publishing it from "<topic>.dlq" handles it. Outside a
// pipeline, wrap the handler with it: Dedupe(store)(h).
//
// A nil store fails every message with an error.
func Dedupe(store DedupeStore, opts ...DedupeOption) AttemptMiddleware {
	cfg := dedupeConfig{key: DefaultDedupeKey}
	for _, o := range opts {
		o(&cfg)
	}
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			key := cfg.key(m)
			if key == "" {
				return next(ctx, m)
			}
			if store == nil {
				return errors.New("broker: Dedupe has no store")
			}
			mine, err := store.Claim(ctx, key)
			if err != nil {
				return fmt.Errorf("broker: dedupe claim %q: %w", key, err)
			}
			if !mine {
				return ErrDuplicate
			}
			// Commit and Release run even when ctx has ended (a claim left
			// behind would hold up the next delivery), bounded on their own.
			bookkeeping := func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.WithoutCancel(ctx), dedupeBookkeeping)
			}
			returned := false
			defer func() {
				if !returned {
					// The handler panicked (Recover sits outside): give the
					// claim up, or every redelivery would wait on it.
					bctx, cancel := bookkeeping()
					defer cancel()
					_ = store.Release(bctx, key)
				}
			}()
			herr := next(ctx, m)
			returned = true
			bctx, cancel := bookkeeping()
			defer cancel()
			if herr != nil {
				if err := store.Release(bctx, key); err != nil {
					return errors.Join(herr, fmt.Errorf("broker: dedupe release %q: %w", key, err))
				}
				return herr
			}
			if err := store.Commit(bctx, key); err != nil {
				err = fmt.Errorf("broker: dedupe commit %q (the message was handled and will be handled again): %w", key, err)
				if rerr := store.Release(bctx, key); rerr != nil {
					err = errors.Join(err, fmt.Errorf("broker: dedupe release %q: %w", key, rerr))
				}
				return err
			}
			return nil
		}
	}
}

// DefaultDedupeWindow is the window of NewMemoryDedupeStore when given a
// window below 1.
const DefaultDedupeWindow = 10_000

// MemoryDedupeStore is an in-process DedupeStore that remembers the last
// window committed IDs (first in, first out); older ones are forgotten, and
// their duplicates are handled again. Claims in progress do not count
// against the window. Every operation is O(1). It is safe for concurrent
// use; a Claim waiting for another claim of the same ID returns when that
// claim ends or its ctx ends.
//
// It suits a single consumer process; it forgets everything on restart, so
// it catches redeliveries within a run (retries after a rebalance or a
// reconnect), not across restarts.
type MemoryDedupeStore struct {
	mu     sync.Mutex
	ids    map[string]*dedupeEntry
	ring   []string // committed IDs, oldest at next once full
	next   int
	filled bool
}

type dedupeEntry struct {
	done    bool
	end     chan struct{} // closed when the claim ends; nil once done
	waiters int           // Claim calls waiting on end (for tests)
}

// NewMemoryDedupeStore returns a store remembering the last window
// committed IDs (window < 1: DefaultDedupeWindow).
func NewMemoryDedupeStore(window int) *MemoryDedupeStore {
	if window < 1 {
		window = DefaultDedupeWindow
	}
	return &MemoryDedupeStore{ids: make(map[string]*dedupeEntry, window), ring: make([]string, window)}
}

// Claim implements DedupeStore.
func (s *MemoryDedupeStore) Claim(ctx context.Context, id string) (bool, error) {
	for {
		s.mu.Lock()
		e, ok := s.ids[id]
		if !ok {
			s.ids[id] = &dedupeEntry{end: make(chan struct{})}
			s.mu.Unlock()
			return true, nil
		}
		if e.done {
			s.mu.Unlock()
			return false, nil
		}
		end := e.end
		e.waiters++
		s.mu.Unlock()
		select {
		case <-end:
		case <-ctx.Done():
			s.mu.Lock()
			e.waiters--
			s.mu.Unlock()
			return false, ctx.Err()
		}
	}
}

// Commit implements DedupeStore. Committing an ID that is not claimed
// records it all the same; committing it twice is a no-op.
func (s *MemoryDedupeStore) Commit(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.ids[id]
	if ok && e.done {
		return nil
	}
	if ok {
		close(e.end)
		e.end, e.done = nil, true
	} else {
		s.ids[id] = &dedupeEntry{done: true}
	}
	if s.filled {
		delete(s.ids, s.ring[s.next])
	}
	s.ring[s.next] = id
	s.next++
	if s.next == len(s.ring) {
		s.next, s.filled = 0, true
	}
	return nil
}

// Release implements DedupeStore. Releasing an ID that is not claimed is a
// no-op.
func (s *MemoryDedupeStore) Release(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.ids[id]; ok && !e.done {
		close(e.end)
		delete(s.ids, id)
	}
	return nil
}

// Len returns the number of IDs the store holds: committed ones (at most
// the window) plus claims in progress.
func (s *MemoryDedupeStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}
