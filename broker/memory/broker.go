package memory

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/cosmic-horizons/events/broker"
)

// ErrBufferFull is returned (inside a *broker.PublishError naming the
// messages not appended) by Publish on a Backend with Config.FailWhenFull,
// when a partition is full of messages some group has not committed yet.
var ErrBufferFull = errors.New("memory: partition buffer full")

// Backend is the in-process backend: a broker.Backend and a
// broker.HealthChecker. Create it with New; the zero value is not usable.
//
// All methods are safe for concurrent use. Close stops every subscription
// (draining in-flight handlers) and leaves no goroutine behind.
type Backend struct {
	cfg Config

	// topics is a copy-on-write map, so Publish looks topics up without a
	// lock; mu serialises its replacement.
	topics atomic.Pointer[map[string]*topic]

	mu        sync.Mutex // guards consumers and topic creation
	consumers map[*consumer]struct{}
	closing   atomic.Bool // Subscribe refused
	closed    atomic.Bool // Publish refused
	done      chan struct{}
	closeOnce sync.Once
	ephemeral atomic.Uint64 // numbers ephemeral groups
}

var (
	_ broker.Backend       = (*Backend)(nil)
	_ broker.HealthChecker = (*Backend)(nil)
)

// New returns a running Backend with no topics; topics are created on
// first publish or subscribe. It fails only on an invalid cfg (every
// problem reported, see Config.Validate) or a ctx already done; ctx is not
// kept.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Backend{
		cfg:       cfg.withDefaults(),
		consumers: make(map[*consumer]struct{}),
		done:      make(chan struct{}),
	}
	b.topics.Store(&map[string]*topic{})
	return b, nil
}

// Close stops every subscription as Consumer.Close does (no new messages
// handed out, in-flight handlers finish within their DrainTimeout, finished
// work committed, the group left), concurrently, and waits for them. Then
// Publish and Subscribe return broker.ErrClosed, and publishers waiting for
// room return too. Dead-letter publishes made while subscriptions drain
// still succeed. Close always returns nil and is idempotent; concurrent
// calls all wait for the first to finish. When Close returns, no goroutine
// started by the broker is left. Like Consumer.Close, it must not be called
// from a handler of this broker, whose return it would wait for.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closing.Store(true)
		cs := make([]*consumer, 0, len(b.consumers))
		for c := range b.consumers {
			cs = append(cs, c)
		}
		b.mu.Unlock()
		for _, c := range cs {
			c.rt.Stop()
		}
		for _, c := range cs {
			<-c.done
		}
		b.closed.Store(true)
		close(b.done)
	})
	return nil
}

// topic returns the named topic, creating it with its configured partition
// count on first use.
func (b *Backend) topic(name string) *topic {
	if t := (*b.topics.Load())[name]; t != nil {
		return t
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.topics.Load()
	if t := old[name]; t != nil {
		return t
	}
	t := newTopic(name, b.cfg.partitionsOf(name), b.cfg.BufferSize)
	m := make(map[string]*topic, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[name] = t
	b.topics.Store(&m)
	return t
}

// register records a running consumer so Close can stop it; false once the
// broker is closing.
func (b *Backend) register(c *consumer) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing.Load() {
		return false
	}
	b.consumers[c] = struct{}{}
	return true
}

func (b *Backend) forget(c *consumer) {
	b.mu.Lock()
	delete(b.consumers, c)
	b.mu.Unlock()
}

// topic is a named set of partitions and the groups reading it.
type topic struct {
	name  string
	parts []*partition
	rr    atomic.Uint32 // spreads empty keys round-robin

	mu        sync.Mutex
	groups    map[string]*group // durable groups, kept for the broker's lifetime
	ephemeral map[*group]struct{}
}

func newTopic(name string, partitions int32, bufferSize int) *topic {
	t := &topic{
		name:      name,
		parts:     make([]*partition, partitions),
		groups:    make(map[string]*group),
		ephemeral: make(map[*group]struct{}),
	}
	for i := range t.parts {
		t.parts[i] = newPartition(int32(i), bufferSize)
	}
	return t
}

// partitionFor picks the partition of a key: FNV-1a of a non-empty key,
// round-robin for the empty key.
func (t *topic) partitionFor(key string) *partition {
	n := uint32(len(t.parts))
	if key == "" {
		return t.parts[(t.rr.Add(1)-1)%n]
	}
	return t.parts[hashKey(key)%n]
}

// durableGroup returns the named group, registering it (and its cursors at
// start) on first use.
func (t *topic) durableGroup(name string, start broker.StartPosition) *group {
	t.mu.Lock()
	defer t.mu.Unlock()
	if g := t.groups[name]; g != nil {
		return g
	}
	g := newGroup(t, name, false, start == broker.StartNewest)
	t.groups[name] = g
	return g
}

// ephemeralGroup registers a private group positioned at the end.
func (t *topic) ephemeralGroup(name string) *group {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := newGroup(t, name, true, true)
	t.ephemeral[g] = struct{}{}
	return g
}

// removeEphemeral unregisters an ephemeral group whose member left, so it
// no longer holds the buffer.
func (t *topic) removeEphemeral(g *group) {
	t.mu.Lock()
	delete(t.ephemeral, g)
	t.mu.Unlock()
	for _, c := range g.cursors {
		c.part.unregister(c)
	}
}
