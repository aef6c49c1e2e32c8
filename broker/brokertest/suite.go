package brokertest

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// Backend is what the factory returns for one test.
type Backend struct {
	Publisher  broker.Publisher
	Subscriber broker.Subscriber
	// NewSubscriber, if set, returns another subscriber on the same broker
	// (another process, in real life). Tests of group membership and of
	// resuming after a restart use it when present.
	NewSubscriber func(t *testing.T) broker.Subscriber
	// Health, if set, reports on the Subscriber's subscriptions (its
	// InFlight entries); the stuck-consumer test uses it.
	Health broker.HealthChecker
}

// Factory returns a fresh backend for one test and registers its cleanup
// with t.Cleanup.
type Factory func(t *testing.T) Backend

// Features says what a backend supports and how to drive it.
type Features struct {
	// Persistent backends keep messages for groups that are not
	// subscribed: a group that subscribes late sees messages published
	// before, and a group that resubscribes resumes after its last
	// acknowledged message.
	Persistent bool
	// ConsumerGroups: consumers of one group share the work.
	ConsumerGroups bool
	// KeyAffinity: the members of a group never share a key (keys are
	// sharded over members, as Kafka and memory do by partition), so
	// per-key order holds across members too. RabbitMQ's competing
	// consumers on one queue do not have it.
	KeyAffinity bool
	// AsyncOrdered: the Publisher is a broker.AsyncPublisher whose
	// hand-off keeps order across calls, so messages with equal keys
	// published by successive PublishAsync calls arrive in call order.
	AsyncOrdered bool
	// Ephemeral: Subscription.Ephemeral is supported.
	Ephemeral bool
	// MaxMessageBytes is the backend's limit on Message.Size(); the suite
	// publishes a message over it and expects ErrMessageTooLarge, and one
	// just under it whose dead letter must arrive whole. 0 skips both.
	MaxMessageBytes int
	// PublishForeign, if set, publishes m as a producer outside this SDK
	// would: without the backend's size check (the broker's own limit
	// applies). The suite sends a message over MaxMessageBytes this way and
	// expects its dead letter without the body.
	PublishForeign func(t *testing.T, m *broker.Message)
	// NewTopic, if set, provisions a topic before a test uses it (e.g. Kafka
	// without auto-creation) and may register its deletion with t.Cleanup.
	// The suite also calls it for the topic's dead-letter topic.
	NewTopic func(t *testing.T, name string, partitions int32)
	// NewGroup, if set, creates a consumer group on a topic before anything
	// is published for it, for backends where a group exists only once
	// declared (AMQP: a group is a queue, and a message published before
	// the queue exists is not kept for it). The Persistent tests call it
	// before they publish; backends that keep a topic's log regardless
	// (Kafka, memory) leave it nil.
	NewGroup func(t *testing.T, topic, group string)
	// Cleanup, if set, runs at the end of each test with the topics and
	// groups it used (e.g. to delete RabbitMQ queues).
	Cleanup func(t *testing.T, topics, groups []string)
	// Partitions of each test topic; default 4.
	Partitions int32
	// Timeout bounds each wait; default 30s.
	Timeout time.Duration
	// Scale multiplies message counts (default 1); backends slower than the
	// test budget may lower it, never below the counts in the test names.
	Scale float64
}

func (f Features) withDefaults() Features {
	if f.Partitions == 0 {
		f.Partitions = 4
	}
	if f.Timeout == 0 {
		f.Timeout = 30 * time.Second
	}
	if f.Scale == 0 {
		f.Scale = 1
	}
	return f
}

// Run runs every conformance test against backends from factory.
func Run(t *testing.T, factory Factory, features Features) {
	f := features.withDefaults()
	tests := []struct {
		name string
		fn   func(*env)
	}{
		{"RoundTrip", testRoundTrip},
		{"ConcurrentPublishersNoLossNoDuplicates", testConcurrentPublishers},
		{"TopicIsolation", testTopicIsolation},
		{"TwoGroupsEachGetEverything", testTwoGroups},
		{"GroupMembersSplitWork", testMembersSplit},
		{"PerKeyOrderWithConcurrency", testPerKeyOrder},
		{"RetryThenSuccess", testRetryThenSuccess},
		{"DeadLetterAfterRetries", testDeadLetter},
		{"PanicIsSurvived", testPanic},
		{"CloseDrainsInFlight", testCloseDrains},
		{"ContextCancelDrainsInFlight", testCancelDrains},
		{"ResubscribeResumes", testResubscribe},
		{"StopPolicyLeavesMessageUnacked", testStopPolicy},
		{"PublishAfterClose", testPublishAfterClose},
		{"SubscribeAfterClose", testSubscribeAfterClose},
		{"OversizedMessage", testOversized},
		{"LateSubscriberSeesOldMessages", testLateSubscriber},
		{"EphemeralSeesOnlyNew", testEphemeral},
		{"EventTypeFilter", testEventTypeFilter},
		{"InvalidSubscription", testInvalidSubscription},
		{"TypedEventsThroughBus", testTypedEvents},
		{"PoisonAtSizeLimitIsDeadLetteredWhole", testPoisonAtSizeLimit},
		{"ForeignOversizedIsDeadLetteredWithoutBody", testForeignOversized},
		{"UnknownEventTypeIsDeadLettered", testUnknownEventType},
		{"ForeignCloudEventsAcceptedOrRefused", testForeignCloudEvents},
		{"StuckHandlerShowsInHealth", testStuckHandlerInHealth},
		{"MemberJoinsWhileHandlerBusy", testJoinWhileBusy},
		{"HandlerIgnoringCtxIsAbandoned", testIgnoresCtx},
		{"UnkeyedMessagesSpreadOverWorkers", testUnkeyedSpread},
		{"AsyncPublishCompletesEachOnce", testAsyncPublish},
		{"AsyncPublishRefusalsAreReturned", testAsyncPublishRefusals},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, factory, f)
			tc.fn(e)
		})
	}
}

// env is one test's world: a backend, unique names, bounded waits.
type env struct {
	t      *testing.T
	f      Features
	b      Backend
	prefix string
	topics []string
	groups []string
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9]+`)

func newEnv(t *testing.T, factory Factory, f Features) *env {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := strings.ToLower(unsafeName.ReplaceAllString(t.Name(), "-"))
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	e := &env{t: t, f: f, prefix: "bt-" + strings.Trim(name, "-") + "-" + hex.EncodeToString(rnd[:])}
	e.b = factory(t)
	if e.b.Publisher == nil || e.b.Subscriber == nil {
		t.Fatal("brokertest: the factory returned a Backend without Publisher or Subscriber")
	}
	t.Cleanup(func() {
		if f.Cleanup != nil {
			f.Cleanup(t, e.topics, e.groups)
		}
	})
	return e
}

// topic returns a fresh topic name (and provisions it and its dead-letter
// topic when the backend needs that).
func (e *env) topic(suffix string) string {
	name := e.prefix + "-" + suffix
	if e.f.NewTopic != nil {
		e.f.NewTopic(e.t, name, e.f.Partitions)
		e.f.NewTopic(e.t, broker.DeadLetterTopic(name), 1)
	}
	e.topics = append(e.topics, name, broker.DeadLetterTopic(name))
	return name
}

func (e *env) group(suffix string) string {
	name := e.prefix + "-" + suffix
	e.groups = append(e.groups, name)
	return name
}

// declareGroup makes group exist on topic before a test publishes for it
// (Features.NewGroup).
func (e *env) declareGroup(topic, group string) {
	e.t.Helper()
	if e.f.NewGroup != nil {
		e.f.NewGroup(e.t, topic, group)
	}
}

func (e *env) n(base int) int {
	return max(int(float64(base)*e.f.Scale), 1)
}
