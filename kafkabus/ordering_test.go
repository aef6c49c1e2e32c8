package kafkabus_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// handling is one handler call seen by the ordering test.
type handling struct {
	member      int
	seq         int
	redelivered bool
}

// orderLog records, per key, every handler call in the order they happened.
type orderLog struct {
	mu      sync.Mutex
	byKey   map[string][]handling
	handled atomic.Int64
	changed chan struct{}
}

func newOrderLog() *orderLog {
	return &orderLog{byKey: map[string][]handling{}, changed: make(chan struct{}, 1)}
}

func (l *orderLog) handler(member int) broker.Handler {
	return func(ctx context.Context, m *broker.Message) error {
		seq, err := strconv.Atoi(m.Header("seq"))
		if err != nil {
			return broker.Permanent(err)
		}
		time.Sleep(time.Millisecond) // simulated work, not synchronisation
		l.mu.Lock()
		l.byKey[m.Key] = append(l.byKey[m.Key], handling{member: member, seq: seq, redelivered: m.Delivery.Redelivered})
		l.mu.Unlock()
		l.handled.Add(1)
		select {
		case l.changed <- struct{}{}:
		default:
		}
		return nil
	}
}

// waitHandled waits until at least n handler calls succeeded.
func (l *orderLog) waitHandled(t *testing.T, n int64) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for l.handled.Load() < n {
		select {
		case <-l.changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %d handled messages; got %d", n, l.handled.Load())
		}
	}
}

// waitAll waits until every key has seen every seq below per.
func (l *orderLog) waitAll(t *testing.T, keys, per int) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		if missing := l.missing(keys, per); missing == 0 {
			return
		} else {
			select {
			case <-l.changed:
			case <-deadline.C:
				t.Fatalf("timed out: %d of %d events never handled", missing, keys*per)
			}
		}
	}
}

func (l *orderLog) missing(keys, per int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	missing := 0
	for k := range keys {
		seen := map[int]bool{}
		for _, h := range l.byKey[jobKey(k)] {
			seen[h.seq] = true
		}
		missing += per - len(seen)
	}
	return missing
}

func jobKey(k int) string { return fmt.Sprintf("job-%03d", k) }

// check verifies every key's history: it never skips ahead, and it only
// goes back (a redelivered prefix) when the partition changed hands or the
// message is flagged redelivered. It returns the duplicate count.
func (l *orderLog) check(t *testing.T) (dups, rewinds int, perMember map[int]int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	perMember = map[int]int{}
	for key, hs := range l.byKey {
		last := -1
		for i, h := range hs {
			perMember[h.member]++
			switch {
			case h.seq == last+1: // the next new event
			case h.seq <= last: // a redelivery
				dups++
				if i > 0 && hs[i-1].seq+1 != h.seq { // a rewind starts here
					rewinds++
					if hs[i-1].member == h.member && !h.redelivered {
						t.Errorf("key %s: member %d went back from seq %d to %d without a rebalance", key, h.member, last, h.seq)
					}
				}
			default:
				t.Errorf("key %s: seq %d handled right after %d: skipped or reordered", key, h.seq, last)
			}
			last = max(last, h.seq)
		}
	}
	return dups, rewinds, perMember
}

// TestOrderingAcrossRebalances publishes 100 jobs × 200 events while group
// members join and leave (concurrency 8 each) and checks every job's
// events are handled in order, none lost, duplicates only where a
// partition changed hands.
func TestOrderingAcrossRebalances(t *testing.T) {
	const jobs, per = 100, 200
	cluster := kafkatest.NewCluster(t)
	pub := newBackend(t, cluster)
	topic := newTopic(t, pub, "order", 10)
	group := "order-" + topic
	log := newOrderLog()
	sub := broker.Subscription{Topic: topic, Group: group, Concurrency: 8, DrainTimeout: 10 * time.Second}

	subscribe := func(member int) broker.Consumer {
		b := newBackend(t, cluster) // each member is its own process
		c, err := b.Subscribe(context.Background(), sub, log.handler(member))
		if err != nil {
			t.Fatalf("member %d: Subscribe: %v", member, err)
		}
		return c
	}
	m1 := subscribe(1)

	// Publish seqs [from, to) of every job: 10 publishers, each owning 10
	// jobs and sending their events in order in batches of 20 per job.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	publish := func(from, to int) error {
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		for p := range 10 {
			wg.Go(func() {
				for seq := from; seq < to; seq += 20 {
					var batch []*broker.Message
					for k := p * 10; k < p*10+10; k++ {
						for s := seq; s < min(seq+20, to); s++ {
							batch = append(batch, &broker.Message{Topic: topic, Key: jobKey(k), Body: []byte("event"),
								Headers: broker.Headers{{Key: "seq", Value: strconv.Itoa(s)}}})
						}
					}
					if err := pub.Publish(ctx, batch...); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		return <-errs
	}

	// Membership changes while events are in the log and in flight:
	// member 2 joins once member 1 is busy, member 3 joins after more
	// events, and member 1 leaves while the last third is published.
	if err := publish(0, 60); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	log.waitHandled(t, jobs*20)
	m2 := subscribe(2)
	if err := publish(60, 120); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	m3 := subscribe(3)
	last := make(chan error, 1)
	go func() { last <- publish(120, per) }()
	log.waitHandled(t, jobs*per/2)
	if err := m1.Close(); err != nil {
		t.Fatalf("member 1 Close: %v", err)
	}
	if err := <-last; err != nil {
		t.Fatalf("Publish: %v", err)
	}
	log.waitAll(t, jobs, per)
	for i, m := range []broker.Consumer{m2, m3} {
		if err := m.Close(); err != nil {
			t.Errorf("member %d Close: %v", i+2, err)
		}
	}
	dups, rewinds, perMember := log.check(t)
	t.Logf("%d events handled (per member %v), %d duplicates in %d redelivered prefixes (2 joins, 1 leave)",
		log.handled.Load(), perMember, dups, rewinds)
	if len(perMember) != 3 {
		t.Errorf("work reached %d members, want 3: the rebalances did not happen mid-stream", len(perMember))
	}
}
