package kafkatest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// TestProduceSurvivesFaults proves that each produce fault is real (it
// answers exactly the requests asked for) and that sarama's idempotent
// producer retries through it: every message ends up in the log exactly
// once and in order.
func TestProduceSurvivesFaults(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		inject func(c *kafkatest.Cluster, n int) *kafkatest.Fault
	}{
		{"NotLeaderForPartition", 5, func(c *kafkatest.Cluster, n int) *kafkatest.Fault {
			return c.FailNext(kmsg.Produce, n, kerr.NotLeaderForPartition)
		}},
		{"RequestTimedOutAfterAppend", 5, func(c *kafkatest.Cluster, n int) *kafkatest.Fault {
			return c.FailNext(kmsg.Produce, n, kerr.RequestTimedOut)
		}},
		{"DropConnections", 3, func(c *kafkatest.Cluster, n int) *kafkatest.Fault {
			return c.DropConnections(kmsg.Produce, n)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const topic, perKey = "events", 50
			c := kafkatest.NewCluster(t, kafkatest.Topic(topic, 3, nil))
			w := &workload{topic: topic, keys: 4}
			p := newProducer(t, c)

			f := tt.inject(c, tt.n)
			if err := w.send(p, 0, perKey); err != nil {
				t.Fatal(err)
			}
			if got := f.Hits(); got != tt.n {
				t.Errorf("fault affected %d requests, want %d", got, tt.n)
			}
			verifyLog(t, c, w, perKey)
		})
	}
}

// TestFailNextTopic proves that a topic-scoped fault leaves other topics
// alone and fails only the named one.
func TestFailNextTopic(t *testing.T) {
	c := kafkatest.NewCluster(t, kafkatest.Topic("a", 1, nil), kafkatest.Topic("b", 1, nil))
	p := newProducer(t, c)
	f := c.FailNextTopic(kmsg.Produce, "a", 2, kerr.NotLeaderForPartition)

	send := func(topic string) {
		t.Helper()
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("v")}); err != nil {
			t.Fatalf("send to %s: %v", topic, err)
		}
	}
	send("b")
	if got := f.Hits(); got != 0 {
		t.Fatalf("fault on topic a hit %d times by a produce to b", got)
	}
	send("a")
	if got := f.Hits(); got != 2 {
		t.Fatalf("fault on topic a hit %d times, want 2", got)
	}
	send("a") // the fault is used up: no retry needed, nothing counted
	if got := f.Hits(); got != 2 {
		t.Fatalf("used-up fault hit %d times, want 2", got)
	}
}

// TestFaultWaitAndRemove proves Wait returns once the fault has been hit,
// that Remove stops an unlimited fault, and that n == 0 installs nothing.
func TestFaultWaitAndRemove(t *testing.T) {
	c := kafkatest.NewCluster(t, kafkatest.Topic("a", 1, nil))
	cl := newClient(t, c)

	none := c.FailNext(kmsg.Metadata, 0, kerr.UnknownServerError)
	if err := cl.RefreshMetadata("a"); err != nil {
		t.Fatalf("refresh metadata with a no-op fault: %v", err)
	}
	if none.Hits() != 0 {
		t.Fatalf("n == 0 fault hit %d times", none.Hits())
	}

	f := c.Delay(kmsg.Metadata, time.Millisecond, -1)
	if err := cl.RefreshMetadata("a"); err != nil {
		t.Fatalf("refresh metadata: %v", err)
	}
	if err := f.Wait(timeoutCtx(t), 1); err != nil {
		t.Fatalf("wait for delay fault: %v", err)
	}
	f.Remove()
	hits := f.Hits()
	if err := cl.RefreshMetadata("a"); err != nil {
		t.Fatalf("refresh metadata: %v", err)
	}
	if f.Hits() != hits {
		t.Errorf("removed fault still counted requests: %d -> %d", hits, f.Hits())
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if err := none.Wait(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait on a fault never hit = %v, want DeadlineExceeded", err)
	}
}

// TestDelay proves that Delay holds a request for at least d.
func TestDelay(t *testing.T) {
	const d = 300 * time.Millisecond
	c := kafkatest.NewCluster(t, kafkatest.Topic("a", 1, nil))
	p := newProducer(t, c)
	msg := func() *sarama.ProducerMessage {
		return &sarama.ProducerMessage{Topic: "a", Value: sarama.StringEncoder("v")}
	}
	if _, _, err := p.SendMessage(msg()); err != nil { // connect and learn metadata first
		t.Fatalf("warm-up send: %v", err)
	}

	f := c.Delay(kmsg.Produce, d, 1)
	start := time.Now()
	if _, _, err := p.SendMessage(msg()); err != nil {
		t.Fatalf("delayed send: %v", err)
	}
	if elapsed := time.Since(start); elapsed < d {
		t.Errorf("delayed send took %v, want at least %v", elapsed, d)
	}
	if f.Hits() != 1 {
		t.Errorf("delay affected %d requests, want 1", f.Hits())
	}
}

// TestMoveLeaderMidProduce proves that leader moves, one partition at a time
// and cluster-wide, while an idempotent producer is running lose, duplicate
// or reorder nothing.
func TestMoveLeaderMidProduce(t *testing.T) {
	const topic, perKey = "events", 90
	c := kafkatest.NewCluster(t, kafkatest.Topic(topic, 3, nil))
	w := &workload{topic: topic, keys: 4}
	p := newProducer(t, c)

	if err := w.send(p, 0, perKey/3); err != nil {
		t.Fatal(err)
	}
	// The producer's metadata is now stale for every partition.
	for part := range int32(3) {
		before, _ := c.Leader(topic, part)
		after, err := c.MoveLeader(topic, part)
		if err != nil {
			t.Fatalf("move leader: %v", err)
		}
		if now, _ := c.Leader(topic, part); after == before || now != after {
			t.Fatalf("partition %d: leader %d, MoveLeader said %d, now %d", part, before, after, now)
		}
	}
	if err := w.send(p, perKey/3, 2*perKey/3); err != nil {
		t.Fatal(err)
	}

	// Shuffle all leaders every 20 acknowledgements while the last third
	// is being sent.
	var sendErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		sendErr = w.send(p, 2*perKey/3, perKey)
	}()
	isDone := func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
	shuffles := 0
	for next := w.acked.Load() + 20; !isDone(); next += 20 {
		waitFor(t, "20 more acknowledgements", func() bool { return isDone() || w.acked.Load() >= next })
		c.ShuffleLeaders()
		shuffles++
	}
	if sendErr != nil {
		t.Fatal(sendErr)
	}
	t.Logf("%d cluster-wide leader shuffles while producing", shuffles)
	verifyLog(t, c, w, perKey)
}
