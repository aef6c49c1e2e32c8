package notifysvc_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/notifysvc"
	"github.com/cosmic-horizons/events/testkit"
)

func note() *eventmodels.Notification {
	n := eventmodels.NewNotification("ann", "ann", eventmodels.ChannelWebhook, eventmodels.SeverityInfo, "Job j completed", "done")
	n.JobID = "j"
	return n
}

func TestWebhookSignsAndRetries(t *testing.T) {
	ctx := testkit.TimeoutContext(t, deadline)
	r := newReceiver(t, 1, http.StatusBadGateway)
	r.secret = []byte("s3cret")
	wh, err := notifysvc.NewWebhookChannel(notifysvc.WebhookConfig{URL: r.srv.URL, Secret: r.secret, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	n := note()
	if err := wh.Deliver(ctx, n); err != nil {
		t.Fatal(err)
	}
	attempts, accepted, got := r.snapshot()
	if attempts[n.EventID.String()] != 2 || accepted[n.EventID.String()] != 1 || r.badSig != 0 {
		t.Errorf("attempts %v, accepted %v, bad signatures %d", attempts, accepted, r.badSig)
	}
	if len(got) != 1 || got[0].Title != n.Title || got[0].JobID != "j" || got[0].EventType != eventmodels.TypeNotification {
		t.Errorf("receiver got %+v", got)
	}
}

func TestWebhookNoDeadLetterSink(t *testing.T) {
	ctx := testkit.TimeoutContext(t, deadline)
	r := newReceiver(t, -1, http.StatusInternalServerError)
	wh, err := notifysvc.NewWebhookChannel(notifysvc.WebhookConfig{URL: r.srv.URL, Retry: broker.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	err = wh.Deliver(ctx, note())
	if err == nil || errors.Is(err, notifysvc.ErrDeadLettered) || !strings.Contains(err.Error(), "gave up after 2 attempt(s): HTTP 500") {
		t.Errorf("Deliver = %v; want the last failure, not dead-lettered", err)
	}
}

func TestWebhookDeadLetterSinkFails(t *testing.T) {
	ctx := testkit.TimeoutContext(t, deadline)
	r := newReceiver(t, -1, http.StatusBadRequest)
	sink := notifysvc.DeadLetterFunc(func(context.Context, *eventmodels.Notification, error, int) error { return errors.New("disk full") })
	wh, err := notifysvc.NewWebhookChannel(notifysvc.WebhookConfig{URL: r.srv.URL, DeadLetters: sink})
	if err != nil {
		t.Fatal(err)
	}
	err = wh.Deliver(ctx, note())
	if err == nil || errors.Is(err, notifysvc.ErrDeadLettered) || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Deliver = %v; want the sink's failure", err)
	}
}

// TestWebhookCancelled: a delivery abandoned because ctx ended (shutdown)
// is not dead-lettered.
func TestWebhookCancelled(t *testing.T) {
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(testkit.TimeoutContext(t, deadline))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			cancel() // the service stops while the first attempt fails
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	var dead atomic.Int32
	sink := notifysvc.DeadLetterFunc(func(context.Context, *eventmodels.Notification, error, int) error { dead.Add(1); return nil })
	wh, err := notifysvc.NewWebhookChannel(notifysvc.WebhookConfig{URL: srv.URL, DeadLetters: sink, Retry: broker.RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	err = wh.Deliver(ctx, note())
	if !errors.Is(err, context.Canceled) || errors.Is(err, notifysvc.ErrDeadLettered) || dead.Load() != 0 {
		t.Errorf("Deliver = %v, dead letters %d; want context.Canceled and none", err, dead.Load())
	}
}

func TestWebhookRetryAfter(t *testing.T) {
	ctx := testkit.TimeoutContext(t, deadline)
	var calls atomic.Int32
	var first, gap atomic.Int64 // unix nanoseconds, nanoseconds
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			first.Store(time.Now().UnixNano())
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		gap.Store(time.Now().UnixNano() - first.Load())
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	wh, err := notifysvc.NewWebhookChannel(notifysvc.WebhookConfig{URL: srv.URL, Retry: broker.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Deliver(ctx, note()); err != nil {
		t.Fatal(err)
	}
	// A lower bound only: the retry waited at least what Retry-After asked.
	if calls.Load() != 2 || time.Duration(gap.Load()) < time.Second {
		t.Errorf("%d calls, second after %v; want 2, at least 1s apart", calls.Load(), time.Duration(gap.Load()))
	}
}

func TestNewWebhookChannelErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  notifysvc.WebhookConfig
		want string
	}{
		{notifysvc.WebhookConfig{}, "URL is required"},
		{notifysvc.WebhookConfig{URL: "ftp://x/y"}, "absolute http or https"},
		{notifysvc.WebhookConfig{URL: "/relative"}, "absolute http or https"},
		{notifysvc.WebhookConfig{URL: "http://x", Retry: broker.RetryPolicy{MaxAttempts: -1}}, "MaxAttempts"},
	} {
		if _, err := notifysvc.NewWebhookChannel(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
