package platform

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
	"github.com/cosmic-horizons/events/examples/internal/opsview"
	"github.com/cosmic-horizons/events/testkit"
	"github.com/cosmic-horizons/events/testkit/rabbittest"
)

func TestRegisterFlags(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "env1:9092, env2:9092")
	t.Setenv("AMQP_URLS", "")
	var o Options
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	o.RegisterFlags(fs)
	if !slices.Equal(o.KafkaBrokers, []string{"env1:9092", "env2:9092"}) || o.AMQPURLs != nil {
		t.Fatalf("from the environment: %+v", o)
	}
	if err := fs.Parse([]string{"--kafka-brokers", "a:1,,b:2 ", "--amqp-urls", "amqp://u:p@h:5672/"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.KafkaBrokers, []string{"a:1", "b:2"}) || !slices.Equal(o.AMQPURLs, []string{"amqp://u:p@h:5672/"}) {
		t.Fatalf("flags override the environment: %+v", o)
	}
}

func TestRedact(t *testing.T) {
	got := redact([]string{"amqp://guest:secret@10.0.0.1:5672/vh", "amqp://10.0.0.2:5672/", "amqps://user@h/"})
	want := []string{"amqp://guest:***@10.0.0.1:5672/vh", "amqp://10.0.0.2:5672/", "amqps://user@h/"}
	if !slices.Equal(got, want) {
		t.Fatalf("redact = %v, want %v", got, want)
	}
}

// TestOpenPaths: each configuration opens both paths, and events published
// on the durable bus are readable by its Replayer.
func TestOpenPaths(t *testing.T) {
	cases := map[string]func(t *testing.T) Options{
		"memory only":               func(*testing.T) Options { return Options{MemoryOnly: true} },
		"embedded Kafka + memory":   func(*testing.T) Options { return Options{} },
		"embedded Kafka + RabbitMQ": func(t *testing.T) Options { return Options{AMQPURLs: []string{rabbittest.URL(t)}} },
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			o := opts(t)
			p, err := Open(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := p.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			if p.Durable == nil || p.Realtime == nil || p.DurableBackend == nil || p.RealtimeBackend == nil || p.Replayer == nil || p.Signals == nil {
				t.Fatalf("a path is missing: %+v", p)
			}
			if o.MemoryOnly != (p.Embedded == nil) {
				t.Errorf("embedded cluster %v with MemoryOnly %v", p.Embedded != nil, o.MemoryOnly)
			}
			if len(p.Health) != 2 {
				t.Errorf("health checkers %v, want one per path", p.Health)
			}
			e := eventmodels.NewJobQueued("u", "job-1", "batch", 1)
			if err := p.Durable.Publish(ctx, e); err != nil {
				t.Fatal(err)
			}
			var got []string
			if err := p.Replayer.Replay(ctx, eventmodels.TopicJobLifecycle, func(ctx context.Context, m *broker.Message) error {
				got = append(got, m.Key)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, []string{"job-1"}) {
				t.Errorf("replayed %v, want the one event published", got)
			}
		})
	}
}

func TestMainBadFlags(t *testing.T) {
	svc := Service{Name: "t"}
	if code := Main(svc, []string{"--log-level", "loud"}); code != 2 {
		t.Errorf("bad --log-level: exit %d, want 2", code)
	}
	if code := Main(svc, []string{"--no-such-flag"}); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
}

// TestServesSignals: a service's API gets GET /signals with the handler
// outcomes of the platform's consumers; every other path is the service's.
func TestServesSignals(t *testing.T) {
	ctx := context.Background()
	p, err := Open(ctx, Options{MemoryOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var handled atomic.Int64
	c, err := p.DurableBackend.Subscribe(ctx, broker.Subscription{Topic: eventmodels.TopicJobLifecycle, Group: "billing", Retry: broker.RetryPolicy{MaxAttempts: 1}},
		func(context.Context, *broker.Message) error {
			if handled.Add(1)%2 == 0 {
				return broker.Permanent(errors.New("bad job"))
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 4 {
		if err := p.Durable.Publish(ctx, eventmodels.NewJobQueued("u", fmt.Sprintf("job-%d", i), "batch", 1)); err != nil {
			t.Fatal(err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ops, err := opsview.New(opsview.Config{Collector: p.Ops, Checkers: p.Health})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(withSignals(p, ops, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "api "+r.URL.Path)
	})))
	defer srv.Close()
	var sig []healthsvc.ServiceSignals
	testkit.Eventually(wctx, t, "the signals of 4 attempts, 2 dead letters and nothing in flight", func() bool {
		resp, err := http.Get(srv.URL + healthsvc.SignalsPath + "?window=1m")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sig = nil
		if err := json.NewDecoder(resp.Body).Decode(&sig); err != nil {
			t.Fatal(err)
		}
		// A dead letter is counted once published, just after its attempt.
		return len(sig) == 1 && sig[0].Attempts() == 4 && sig[0].DeadLettered == 2 && sig[0].InFlight == 0
	})
	if s := sig[0]; s.Service != "billing" || s.Handled != 2 || s.Failed != 2 || s.DeadLettered != 2 {
		t.Fatalf("signals %+v, want billing with 2 handled, 2 failed and dead-lettered", s)
	}
	resp, err := http.Get(srv.URL + "/jobs")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "api /jobs" {
		t.Fatalf("GET /jobs answered %q, want the service's API", body)
	}
	// The operator view counts what the platform's backends published
	// and consumed.
	ops.Sample(ctx)
	resp, err = http.Get(srv.URL + opsview.Path + "/api/series")
	if err != nil {
		t.Fatal(err)
	}
	var series opsview.Series
	err = json.NewDecoder(resp.Body).Decode(&series)
	resp.Body.Close()
	if err != nil || series.Samples != 1 || series.Totals["published"]["job-lifecycle"] != 4 || series.Totals["consumed"]["job-lifecycle"] != 2 {
		t.Fatalf("GET /ops/api/series = %+v, %v; want one sample, 4 published to and 2 consumed from job-lifecycle", series, err)
	}
}
