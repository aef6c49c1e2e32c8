package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/dashboard"
	"github.com/cosmic-horizons/events/rabbitbus"
)

// BenchmarkPublishToWebSocket measures the real-time path's broadcast
// target (< 200 ms from publish to the browser): each iteration publishes
// one job event on the real-time bus and waits until the dashboard's
// WebSocket (/ws, default FlushInterval: updates are coalesced for up to
// 100 ms) delivers the update naming that job to a Go WebSocket client,
// which stands in for the browser (no rendering). It reports the P50, P99
// and worst latency. The real-time bus is RabbitMQ at
// DASHBOARD_BENCH_AMQP_URL when set (as in production), else the
// in-memory bus. docs/benchmarks.md has the command and figures.
func BenchmarkPublishToWebSocket(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var bus *events.Bus
	path := "in-memory bus"
	if url := os.Getenv("DASHBOARD_BENCH_AMQP_URL"); url != "" {
		rb, err := rabbitbus.New(ctx, rabbitbus.Config{URLs: []string{url}, DropUnroutable: []string{"*"}})
		if err != nil {
			b.Fatal(err)
		}
		defer rb.Close()
		if bus, err = events.NewBus(rb); err != nil {
			b.Fatal(err)
		}
		path = "RabbitMQ"
	} else {
		mem, err := memory.New(ctx, memory.Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer mem.Close()
		if bus, err = events.NewBus(mem); err != nil {
			b.Fatal(err)
		}
	}
	d, err := dashboard.New(dashboard.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	cons, err := d.Subscribe(ctx, bus)
	if err != nil {
		b.Fatal(err)
	}
	defer cons.Close()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(-1)
	if _, _, err := c.Read(ctx); err != nil { // the snapshot
		b.Fatal(err)
	}

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("job-%06d", i+1)
		start := time.Now()
		if err := bus.Publish(ctx, eventmodels.NewJobSubmitted("ann", id, spec)); err != nil {
			b.Fatal(err)
		}
		for found := false; !found; {
			_, raw, err := c.Read(ctx)
			if err != nil {
				b.Fatalf("waiting for %s: %v", id, err)
			}
			var m msg
			if err := json.Unmarshal(raw, &m); err != nil {
				b.Fatal(err)
			}
			_, found = findJob(m.Jobs, id)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(int(p*float64(len(lat))), len(lat)-1)].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	b.Logf("%s, %d events: publish → WebSocket P50 %.1f ms, P99 %.1f ms, max %.1f ms", path, len(lat), q(0.5), q(0.99), q(1))
}
