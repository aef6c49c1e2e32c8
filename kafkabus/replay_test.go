package kafkabus_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/kafkabus"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// replayMsgs builds n messages for topic over keys keys, round-robin, with
// a global "seq" and a per-key "kseq" header, numbered from seq from.
func replayMsgs(topic string, from, n, keys int) []*broker.Message {
	out := make([]*broker.Message, n)
	for i := range out {
		s := from + i
		out[i] = &broker.Message{Topic: topic, Key: jobKey(s % keys), Body: []byte("body-" + strconv.Itoa(s)),
			Headers: broker.Headers{{Key: "seq", Value: strconv.Itoa(s)}, {Key: "kseq", Value: strconv.Itoa(s / keys)}}}
	}
	return out
}

// replayInto replays topic into a collect and fails the test on an error.
func replayInto(t *testing.T, b *kafkabus.Backend, topic string) []*broker.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	got := newCollect()
	if err := b.Replay(ctx, topic, got.handle); err != nil {
		t.Fatalf("Replay(%s): %v", topic, err)
	}
	return got.msgs
}

// wantReplay fails unless got is exactly want (records read with a plain
// consumer) in partition, then offset order, with the same key, body and
// headers, a group-less delivery, and each key in publish order.
func wantReplay(t *testing.T, got []*broker.Message, want []*sarama.ConsumerMessage) {
	t.Helper()
	slices.SortFunc(want, func(a, b *sarama.ConsumerMessage) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	if len(got) != len(want) {
		t.Fatalf("replayed %d messages, want %d", len(got), len(want))
	}
	kseq := map[string]int{}
	for i, m := range got {
		w := want[i]
		d := m.Delivery
		if d.Partition != w.Partition || d.Offset != w.Offset {
			t.Fatalf("message #%d at %d@%d, want %d@%d", i, d.Partition, d.Offset, w.Partition, w.Offset)
		}
		if m.Key != string(w.Key) || !bytes.Equal(m.Body, w.Value) || len(m.Headers) != len(w.Headers) {
			t.Fatalf("message #%d = %+v, the log holds key %q body %q", i, m, w.Key, w.Value)
		}
		for _, h := range w.Headers {
			if m.Header(string(h.Key)) != string(h.Value) {
				t.Fatalf("message #%d header %s = %q, want %q", i, h.Key, m.Header(string(h.Key)), h.Value)
			}
		}
		if d.Group != "" || d.Attempt != 1 || d.Redelivered || d.ReceivedAt.IsZero() {
			t.Fatalf("message #%d delivery %+v, want no group, attempt 1, a receive time", i, d)
		}
		k, err := strconv.Atoi(m.Header("kseq"))
		if err != nil {
			t.Fatalf("message #%d without kseq: %+v", i, m)
		}
		if prev, seen := kseq[m.Key]; seen && k <= prev {
			t.Fatalf("key %s: kseq %d after %d", m.Key, k, prev)
		}
		kseq[m.Key] = k
	}
}

// rawAdmin is a plain sarama cluster admin, closed at the end of the test.
func rawAdmin(t *testing.T, c *kafkatest.Cluster) sarama.ClusterAdmin {
	t.Helper()
	ca, err := sarama.NewClusterAdmin(c.Addrs(), rawConfig())
	if err != nil {
		t.Fatalf("cluster admin: %v", err)
	}
	t.Cleanup(func() { _ = ca.Close() })
	return ca
}

// committed returns the offsets group committed on topic.
func committed(t *testing.T, ca sarama.ClusterAdmin, group, topic string) map[int32]int64 {
	t.Helper()
	res, err := ca.ListConsumerGroupOffsets(group, nil)
	if err != nil {
		t.Fatalf("offsets of %s: %v", group, err)
	}
	out := map[int32]int64{}
	for p, b := range res.Blocks[topic] {
		out[p] = b.Offset
	}
	return out
}

func groupNames(t *testing.T, ca sarama.ClusterAdmin) []string {
	t.Helper()
	gs, err := ca.ListConsumerGroups()
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	return slices.Sorted(maps.Keys(gs))
}

// TestReplay checks, on one cluster: a replay hands out exactly the log,
// partition by partition, each key in order; it leaves consumer groups
// alone (no group created, committed offsets unchanged, a caught-up group
// gets only later messages, a new group still gets everything); a handler
// error and a cancelled ctx stop it; an unknown topic is a typed error.
func TestReplay(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	b := newBackend(t, cluster)
	ca := rawAdmin(t, cluster)
	topic := newTopic(t, b, "replay", 6)
	ctx := context.Background()
	const n, keys = 300, 5 // 5 keys on 6 partitions: at least one is empty
	if err := b.Publish(ctx, replayMsgs(topic, 0, n, keys)...); err != nil {
		t.Fatal(err)
	}
	log := readAll(t, cluster, topic)
	if len(log) != n {
		t.Fatalf("the log holds %d records, want %d", len(log), n)
	}

	t.Run("every message in order", func(t *testing.T) {
		wantReplay(t, replayInto(t, b, topic), slices.Clone(log))
	})

	t.Run("groups untouched", func(t *testing.T) {
		group := "caught-" + topic
		caught := newCollect()
		c, err := b.Subscribe(ctx, broker.Subscription{Topic: topic, Group: group}, caught.handle)
		if err != nil {
			t.Fatal(err)
		}
		caught.wait(t, n)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		before, groups := committed(t, ca, group, topic), groupNames(t, ca)

		wantReplay(t, replayInto(t, b, topic), slices.Clone(log))

		if after := committed(t, ca, group, topic); !maps.Equal(after, before) {
			t.Fatalf("committed offsets of %s after the replay %v, before %v", group, after, before)
		}
		if after := groupNames(t, ca); !slices.Equal(after, groups) {
			t.Fatalf("groups after the replay %v, before %v", after, groups)
		}
		// The caught-up group resumes after its 300 messages: one marker
		// per key, and a redelivered message would precede its partition's.
		again := newCollect()
		c, err = b.Subscribe(ctx, broker.Subscription{Topic: topic, Group: group}, again.handle)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := b.Publish(ctx, replayMsgs(topic, n, keys, keys)...); err != nil {
			t.Fatal(err)
		}
		for _, m := range again.wait(t, keys) {
			if s, _ := strconv.Atoi(m.Header("seq")); s < n {
				t.Fatalf("caught-up group got message %d again after the replay", s)
			}
		}
		fresh := newCollect()
		fc, err := b.Subscribe(ctx, broker.Subscription{Topic: topic, Group: "fresh-" + topic}, fresh.handle)
		if err != nil {
			t.Fatal(err)
		}
		defer fc.Close()
		seen := map[string]bool{}
		for _, m := range fresh.wait(t, n+keys) {
			seen[m.Header("seq")] = true
		}
		if len(seen) != n+keys {
			t.Fatalf("a new group got %d distinct messages, want %d", len(seen), n+keys)
		}
	})

	t.Run("handler error", func(t *testing.T) {
		boom := errors.New("boom")
		var calls int
		var tenth *broker.Message
		err := b.Replay(ctx, topic, func(_ context.Context, m *broker.Message) error {
			calls++
			if calls == 10 {
				tenth = m.Clone()
				return boom
			}
			return nil
		})
		var he *broker.HandlerError
		if !errors.Is(err, boom) || !errors.As(err, &he) || calls != 10 {
			t.Fatalf("Replay = %v after %d calls, want a HandlerError wrapping boom after 10", err, calls)
		}
		if he.Topic != topic || he.Partition != tenth.Delivery.Partition || he.Offset != tenth.Delivery.Offset || he.Key != tenth.Key {
			t.Fatalf("HandlerError %+v does not name the 10th message %+v", he, tenth.Delivery)
		}
	})

	t.Run("ctx cancelled by the handler", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		calls := 0
		err := b.Replay(cctx, topic, func(context.Context, *broker.Message) error {
			calls++
			if calls == 5 {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) || calls != 5 {
			t.Fatalf("Replay = %v after %d calls, want context.Canceled after 5", err, calls)
		}
		if err := b.Replay(cctx, topic, func(context.Context, *broker.Message) error { return nil }); !errors.Is(err, context.Canceled) {
			t.Fatalf("Replay with an ended ctx = %v", err)
		}
	})

	t.Run("unknown topic", func(t *testing.T) {
		err := b.Replay(ctx, "no-such-topic", func(context.Context, *broker.Message) error {
			t.Error("handler called for an unknown topic")
			return nil
		})
		if !errors.Is(err, kafkabus.ErrUnknownTopic) || !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			t.Fatalf("Replay of a missing topic = %v, want ErrUnknownTopic", err)
		}
		t.Logf("unknown topic: %v", err)
	})

	t.Run("bad input", func(t *testing.T) {
		if err := b.Replay(ctx, "", func(context.Context, *broker.Message) error { return nil }); !errors.Is(err, broker.ErrInvalidSubscription) {
			t.Errorf("Replay without a topic = %v", err)
		}
		if err := b.Replay(ctx, topic, nil); !errors.Is(err, broker.ErrInvalidSubscription) {
			t.Errorf("Replay with a nil handler = %v", err)
		}
	})

	t.Run("close", func(t *testing.T) {
		b2 := newBackend(t, cluster)
		calls := 0
		err := b2.Replay(ctx, topic, func(hctx context.Context, _ *broker.Message) error {
			calls++
			if err := b2.Close(); err != nil { // waits for the replay's reader
				t.Errorf("Close: %v", err)
			}
			if hctx.Err() == nil {
				t.Error("the handler's ctx is not cancelled by Close")
			}
			return nil
		})
		if !errors.Is(err, broker.ErrClosed) || calls != 1 {
			t.Fatalf("Replay interrupted by Close = %v after %d calls, want ErrClosed after 1", err, calls)
		}
		if err := b2.Replay(ctx, topic, func(context.Context, *broker.Message) error { return nil }); !errors.Is(err, broker.ErrClosed) {
			t.Fatalf("Replay after Close = %v, want ErrClosed", err)
		}
	})
}

// TestReplayDeletedRecords: a partition whose records were all deleted
// (log start = high-water mark > 0) is skipped, one whose start moved is
// read from its new start, and one whose start moves during the replay,
// before Replay reaches it, is read from the start it has then.
func TestReplayDeletedRecords(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	b := newBackend(t, cluster)
	ca := rawAdmin(t, cluster)
	topic := newTopic(t, b, "replay-del", 4)
	if err := b.Publish(context.Background(), replayMsgs(topic, 0, 80, 16)...); err != nil {
		t.Fatal(err)
	}
	byPart := map[int32][]*sarama.ConsumerMessage{}
	for _, m := range readAll(t, cluster, topic) {
		byPart[m.Partition] = append(byPart[m.Partition], m)
	}
	for p := int32(0); p < 4; p++ {
		if len(byPart[p]) < 3 {
			t.Fatalf("partition %d holds %d records; the test needs 3 on each (change the keys)", p, len(byPart[p]))
		}
	}
	if err := ca.DeleteRecords(topic, map[int32]int64{0: int64(len(byPart[0])), 1: 2}); err != nil {
		t.Fatalf("DeleteRecords: %v", err)
	}
	want := slices.Concat(byPart[1][2:], byPart[2], byPart[3][1:])

	got := newCollect()
	deleted := false
	err := b.Replay(context.Background(), topic, func(ctx context.Context, m *broker.Message) error {
		if !deleted {
			deleted = true
			if err := ca.DeleteRecords(topic, map[int32]int64{3: 1}); err != nil {
				return fmt.Errorf("DeleteRecords during the replay: %w", err)
			}
		}
		return got.handle(ctx, m)
	})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	wantReplay(t, got.msgs, want)
}

// TestReplayCancelDuringFetch cancels ctx while the replay's fetch is held
// by the broker for ten minutes, with a client read timeout as long: Replay
// returns ctx's error without waiting for the fetch, and once the cluster
// is gone Close waits for the replay's connection, leaving no goroutine.
func TestReplayCancelDuringFetch(t *testing.T) {
	leakOpts := []goleak.Option{goleak.IgnoreCurrent(), goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick")}
	cluster := kafkatest.NewCluster(t)
	cfg := testConfig(cluster)
	cfg.Sarama = func(sc *sarama.Config) { sc.Net.ReadTimeout = 10 * time.Minute }
	b := openBackend(t, cfg)
	topic := newTopic(t, b, "replay-hang", 2)
	if err := b.Publish(context.Background(), replayMsgs(topic, 0, 20, 4)...); err != nil {
		t.Fatal(err)
	}
	held := cluster.Delay(kmsg.Fetch, 10*time.Minute, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- b.Replay(ctx, topic, func(context.Context, *broker.Message) error {
			return errors.New("no message can arrive while the fetch is held")
		})
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), waitTimeout)
	defer wcancel()
	if err := held.Wait(wctx, 1); err != nil {
		t.Fatalf("the replay sent no fetch: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Replay = %v, want context.Canceled", err)
		}
	case <-time.After(waitTimeout):
		cluster.Close() // so that the cleanup's Close does not wait for the held fetch
		t.Fatal("Replay did not return after its ctx was cancelled")
	}
	cluster.Close() // drops the held fetch
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	goleak.VerifyNone(t, leakOpts...)
}
