package rabbitbus_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/rabbitbus"
)

// testLogger logs to the test when RABBITBUS_TEST_LOG is set, and is
// silent otherwise.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("RABBITBUS_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// newClient returns a connected Client closed at the end of the test.
func newClient(t testing.TB, cfg rabbitbus.Config, opts ...rabbitbus.Option) *rabbitbus.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := rabbitbus.New(ctx, cfg, opts...)
	if err != nil {
		t.Fatalf("rabbitbus.New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// deleteTopology deletes the exchanges of topics and the queues of every
// group on every topic.
func deleteTopology(t testing.TB, c *rabbitbus.Client, topics, groups []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, topic := range topics {
		for _, g := range groups {
			if err := c.DeleteGroup(ctx, topic, g); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		if err := c.DeleteTopic(ctx, topic); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}
