package kafkabus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/kafkabus"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// TestCloseGivesUpAfterCloseTimeout: the cluster holds every produce
// request unanswered while a Publish waits for its acknowledgement. Close
// stops waiting after Config.CloseTimeout: it returns (reporting that it
// gave up), the waiting Publish fails with broker.ErrClosed instead of
// waiting for its ctx, and once the cluster is gone no goroutine of the
// producer is left behind.
func TestCloseGivesUpAfterCloseTimeout(t *testing.T) {
	leaks := []goleak.Option{goleak.IgnoreCurrent(), goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick")}
	cluster := kafkatest.NewCluster(t)
	cfg := testConfig(cluster)
	cfg.CloseTimeout = time.Second
	b, err := kafkabus.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("kafkabus.New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	topic := newTopic(t, b, "closing", 1)

	hold := cluster.Delay(kmsg.Produce, time.Hour, -1)
	t.Cleanup(hold.Remove)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	published := make(chan error, 1)
	go func() { published <- b.Publish(ctx, &broker.Message{Topic: topic, Key: "held"}) }()
	if err := hold.Wait(ctx, 1); err != nil {
		t.Fatalf("the produce request never reached the cluster: %v", err)
	}
	asyncDone := make(chan error, 2)
	if err := b.PublishAsync(ctx, func(err error) { asyncDone <- err }, &broker.Message{Topic: topic, Key: "held-async"}); err != nil {
		t.Fatalf("PublishAsync: %v", err)
	}

	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	bound := cfg.CloseTimeout + 5*time.Second
	select {
	case err := <-closed:
		took := time.Since(start)
		t.Logf("Close returned after %v: %v", took, err)
		if took < cfg.CloseTimeout {
			t.Errorf("Close returned after %v, before CloseTimeout %v, with the message unacknowledged", took, cfg.CloseTimeout)
		}
		if err == nil || !strings.Contains(err.Error(), "CloseTimeout") {
			t.Errorf("Close = %v, want an error saying it gave up after CloseTimeout", err)
		}
	case <-time.After(bound):
		t.Fatalf("Close still blocked %v after it was called (CloseTimeout %v)", bound, cfg.CloseTimeout)
	}
	select {
	case err := <-published:
		var pe *broker.PublishError
		if !errors.Is(err, broker.ErrClosed) || !errors.As(err, &pe) || len(pe.Failed) != 1 || pe.Failed[0].Index != 0 {
			t.Fatalf("the waiting Publish = %v, want a *broker.PublishError naming message #0, matching broker.ErrClosed", err)
		}
		t.Logf("waiting Publish: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting Publish did not return after Close")
	}
	select {
	case err := <-asyncDone:
		if !errors.Is(err, broker.ErrClosed) {
			t.Fatalf("the waiting PublishAsync's done = %v, want broker.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting PublishAsync's done was not called after Close")
	}
	if err := b.Publish(ctx, &broker.Message{Topic: topic, Key: "late"}); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Publish after Close = %v, want broker.ErrClosed", err)
	}

	hold.Remove()
	cluster.Close()
	goleak.VerifyNone(t, leaks...)
}

// TestConfigValidateRefusesNegativeCloseTimeout: Close must be bounded, so
// a negative CloseTimeout is an error.
func TestConfigValidateRefusesNegativeCloseTimeout(t *testing.T) {
	if err := (kafkabus.Config{Brokers: []string{"k:9092"}, CloseTimeout: -time.Second}).Validate(); err == nil || !strings.Contains(err.Error(), "CloseTimeout") {
		t.Errorf("negative CloseTimeout: Validate = %v, want it refused", err)
	}
}

// TestPublishAsyncContextEnds: while the cluster holds the produce request,
// the caller's ctx ends; done is called once, with ctx's error, and not
// again when the request is answered later.
func TestPublishAsyncContextEnds(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	b := newBackend(t, cluster)
	topic := newTopic(t, b, "async-ctx", 1)
	hold := cluster.Delay(kmsg.Produce, time.Hour, -1)
	t.Cleanup(hold.Remove)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	if err := b.PublishAsync(ctx, func(err error) { done <- err }, &broker.Message{Topic: topic, Key: "k"}); err != nil {
		t.Fatalf("PublishAsync: %v", err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), waitTimeout)
	defer wcancel()
	if err := hold.Wait(wctx, 1); err != nil {
		t.Fatalf("the produce request never reached the cluster: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("done called before the acknowledgement or ctx's end: %v", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("done = %v, want context.Canceled", err)
		}
	case <-wctx.Done():
		t.Fatal("done not called after ctx ended")
	}
	hold.Remove() // the request is answered now; done must not run again
	if err := b.Publish(wctx, &broker.Message{Topic: topic, Key: "k"}); err != nil {
		t.Fatalf("Publish after the hold: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("done called a second time: %v", err)
	default:
	}
}
