package notifysvc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/notifysvc"
	"github.com/cosmic-horizons/events/examples/internal/orchestrator"
	"github.com/cosmic-horizons/events/testkit"
)

// TestTwoHundredJobs runs 200 jobs (10 % failing) through a real
// orchestrator on the memory broker, with a webhook receiver that fails the
// first two attempts of every notification, then redelivers every terminal
// job event: each terminal job gets exactly one notification per channel,
// emitted once and delivered once.
func TestTwoHundredJobs(t *testing.T) {
	const jobs = 200
	ctx := testkit.TimeoutContext(t, deadline)
	e := newEnv(t)

	// Observers subscribe before the first job: every notification event,
	// and every terminal job event (to redeliver them later).
	notes := testkit.NewMessageCapture()
	if _, err := e.mem.Subscribe(ctx, broker.Subscription{Topic: eventmodels.TopicNotifications, Group: "check"}, notes.Handle); err != nil {
		t.Fatal(err)
	}
	terminal := testkit.NewMessageCapture()
	if _, err := e.mem.Subscribe(ctx, broker.Subscription{Topic: eventmodels.TopicJobLifecycle, Group: "terminal",
		EventTypes: notifysvc.NotifiableEvents()}, terminal.Handle); err != nil {
		t.Fatal(err)
	}

	hook := newReceiver(t, 2, http.StatusServiceUnavailable)
	wh, err := notifysvc.NewWebhookChannel(notifysvc.WebhookConfig{URL: hook.srv.URL, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logRecorder{}
	push := &recordPusher{}
	svc := e.newService(t, notifysvc.Config{Channels: []notifysvc.Channel{wh, notifysvc.NewLogChannel(slog.New(logs)), notifysvc.NewBrowserChannel(push)}})
	if _, err := svc.Subscribe(ctx, e.bus, "notify", 4); err != nil {
		t.Fatal(err)
	}

	orch, err := orchestrator.New(orchestrator.Config{Durable: e.bus, Sim: orchestrator.SimConfig{Seed: 7, FailureRatio: 0.1, Speed: 0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = orch.Shutdown(context.Background()) })
	for i := range jobs {
		if _, err := orch.Submit(ctx, fmt.Sprintf("user-%d", i%5), spec()); err != nil {
			t.Fatal(err)
		}
	}
	if err := orch.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	status := map[string]eventmodels.JobStatus{}
	failures := 0
	for _, j := range orch.List() {
		status[j.JobID] = j.Status
		if j.Status == eventmodels.StatusFailed {
			failures++
		}
	}
	if len(status) != jobs || failures == 0 || failures > jobs/4 {
		t.Fatalf("orchestrator ran %d jobs with %d failures; want %d jobs, about 10 %% failing", len(status), failures, jobs)
	}

	channels := []eventmodels.Channel{eventmodels.ChannelWebhook, eventmodels.ChannelLog, eventmodels.ChannelPush}
	testkit.Eventually(ctx, t, "a delivery per job and channel", func() bool {
		st := svc.Stats()
		return st.Delivered[eventmodels.ChannelWebhook] == jobs && st.Delivered[eventmodels.ChannelLog] == jobs && st.Delivered[eventmodels.ChannelPush] == jobs
	})
	if err := notes.WaitFor(ctx, jobs*len(channels)); err != nil {
		t.Fatal(err)
	}

	// Redeliver every terminal job event (same event IDs, as a broker
	// would after a rebalance or a restart).
	if err := terminal.WaitFor(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	for _, m := range terminal.Messages() {
		if err := e.mem.Publish(ctx, &broker.Message{Topic: m.Topic, Key: m.Key, Headers: m.Headers, Body: m.Body}); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(ctx, t, "every redelivery ignored by every channel", func() bool { return sum(svc.Stats().Duplicates) == jobs*int64(len(channels)) })

	st := svc.Stats()
	for _, c := range channels {
		if st.Delivered[c] != jobs || st.Duplicates[c] != jobs || st.DeadLettered[c] != 0 || st.Failed[c] != 0 {
			t.Errorf("%s: delivered %d, duplicates %d, dead-lettered %d, failed %d; want %d, %d, 0, 0",
				c, st.Delivered[c], st.Duplicates[c], st.DeadLettered[c], st.Failed[c], jobs, jobs)
		}
	}
	if st.Emitted != jobs*3 || st.Handled != 2*jobs || st.Filtered != 0 {
		t.Errorf("emitted %d, handled %d, filtered %d; want %d, %d, 0", st.Emitted, st.Handled, st.Filtered, jobs*3, 2*jobs)
	}

	// The notifications topic: exactly one event per (job, channel), with
	// the severity of the outcome.
	type pair struct {
		job string
		ch  eventmodels.Channel
	}
	seen := map[pair]int{}
	for _, ev := range notes.Events() {
		n, ok := eventmodels.As[*eventmodels.Notification](ev)
		if !ok {
			t.Fatalf("notifications topic carries %T", ev)
		}
		seen[pair{n.JobID, n.Channel}]++
		want := eventmodels.SeverityInfo
		if status[n.JobID] == eventmodels.StatusFailed {
			want = eventmodels.SeverityError
		}
		if n.Severity != want || n.Category != "job."+string(status[n.JobID]) || n.Recipient != n.UserID {
			t.Errorf("%s on %s: severity %s, category %s, recipient %s; want %s, job.%s, the user", n.JobID, n.Channel, n.Severity, n.Category, n.Recipient, want, status[n.JobID])
		}
	}
	if notes.Count() != jobs*3 || len(seen) != jobs*3 {
		t.Errorf("notifications topic: %d messages for %d (job, channel) pairs; want %d each", notes.Count(), len(seen), jobs*3)
	}
	for p, n := range seen {
		if n != 1 {
			t.Errorf("%s on %s emitted %d times", p.job, p.ch, n)
		}
	}

	// The webhook receiver failed the first two attempts of each one and
	// accepted the third, once.
	attempts, accepted, got := hook.snapshot()
	if len(accepted) != jobs || len(got) != jobs {
		t.Errorf("webhook accepted %d notifications (%d requests); want %d", len(accepted), len(got), jobs)
	}
	for k, n := range accepted {
		if n != 1 || attempts[k] != 3 {
			t.Errorf("webhook %s: accepted %d times after %d attempts; want once after 3", k, n, attempts[k])
		}
	}
	jobsSeen := map[string]bool{}
	for _, n := range got {
		jobsSeen[n.JobID] = true
	}
	if len(jobsSeen) != jobs {
		t.Errorf("webhook got notifications of %d jobs, want %d", len(jobsSeen), jobs)
	}

	// Log and push: one per job.
	perJob := func(name string, ids []string) {
		count := map[string]int{}
		for _, id := range ids {
			count[id]++
		}
		if len(count) != jobs || len(ids) != jobs {
			t.Errorf("%s: %d records for %d jobs; want %d, one each", name, len(ids), len(count), jobs)
		}
	}
	var logJobs, pushJobs []string
	for _, r := range logs.records() {
		logJobs = append(logJobs, r["job_id"])
	}
	for _, n := range push.all() {
		pushJobs = append(pushJobs, n.JobID)
	}
	perJob("log", logJobs)
	perJob("push", pushJobs)
}

// flaky is a channel that fails the first delivery of each notification
// with an ordinary error (no dead letter).
type flaky struct {
	mu    sync.Mutex
	tries map[string]int
	ok    map[string]int
}

func (*flaky) Name() eventmodels.Channel { return eventmodels.ChannelSMS }
func (f *flaky) Deliver(_ context.Context, n *eventmodels.Notification) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries[n.JobID]++
	if f.tries[n.JobID] == 1 {
		return errors.New("sms gateway unavailable")
	}
	f.ok[n.JobID]++
	return nil
}

// TestChannelFailureRetriesOnlyThatChannel: a channel that fails makes the
// job event fail and be retried by its subscription; the retry delivers to
// that channel, while the channel that had succeeded skips it and nothing
// is emitted twice.
func TestChannelFailureRetriesOnlyThatChannel(t *testing.T) {
	ctx := testkit.TimeoutContext(t, deadline)
	e := newEnv(t)
	sms := &flaky{tries: map[string]int{}, ok: map[string]int{}}
	push := &recordPusher{}
	svc := e.newService(t, notifysvc.Config{Channels: []notifysvc.Channel{sms, notifysvc.NewBrowserChannel(push)}})
	if _, err := svc.Subscribe(ctx, e.bus, "notify", 2); err != nil {
		t.Fatal(err)
	}
	evs := terminalEvents("ann", "ben")
	if err := e.bus.Publish(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	n := int64(len(evs))
	// The channels of one event run concurrently: the retry's push skip
	// may be counted after its sms delivery.
	testkit.Eventually(ctx, t, "every sms delivered and every push retry skipped", func() bool {
		st := svc.Stats()
		return st.Delivered[eventmodels.ChannelSMS] == n && st.Duplicates[eventmodels.ChannelPush] == n
	})
	st := svc.Stats()
	if st.Failed[eventmodels.ChannelSMS] != n || st.Delivered[eventmodels.ChannelPush] != n || st.Duplicates[eventmodels.ChannelPush] != n ||
		st.Duplicates[eventmodels.ChannelSMS] != 0 || st.Emitted != 2*n {
		t.Errorf("stats %+v; want sms failed %d and delivered %d, push delivered %d and skipped %d, %d emitted", st, n, n, n, n, 2*n)
	}
	if got := len(push.all()); int64(got) != n {
		t.Errorf("push delivered %d, want %d", got, n)
	}
	for job, k := range sms.ok {
		if k != 1 || sms.tries[job] != 2 {
			t.Errorf("sms %s: delivered %d times in %d tries; want once in 2", job, k, sms.tries[job])
		}
	}
}

// TestWebhookDeadLetter: a webhook that always fails (5xx: after the last
// attempt) or rejects (4xx: at once) ends in notifications.dlq, with the
// dead-letter headers and a body that decodes to the notification; the
// other channels are unaffected and the job events are acknowledged.
func TestWebhookDeadLetter(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		attempts  int
		permanent bool
	}{
		{"always 500", http.StatusInternalServerError, fastRetry.MaxAttempts, false},
		{"422 rejected", http.StatusUnprocessableEntity, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testkit.TimeoutContext(t, deadline)
			e := newEnv(t)
			dlq := testkit.NewMessageCapture()
			if _, err := e.mem.Subscribe(ctx, broker.Subscription{Topic: broker.DeadLetterTopic(eventmodels.TopicNotifications), Group: "check"}, dlq.Handle); err != nil {
				t.Fatal(err)
			}
			hook := newReceiver(t, -1, tc.status)
			wh, err := notifysvc.NewWebhookChannel(notifysvc.WebhookConfig{URL: hook.srv.URL, Retry: fastRetry,
				DeadLetters: notifysvc.TopicDeadLetters(e.bus, e.mem, "notifysvc")})
			if err != nil {
				t.Fatal(err)
			}
			var outMu sync.Mutex
			outcomes := map[string]int{}
			svc := e.newService(t, notifysvc.Config{Channels: []notifysvc.Channel{wh, notifysvc.NewLogChannel(nil)},
				OnDelivery: func(ch eventmodels.Channel, err error, dead bool) {
					outMu.Lock()
					outcomes[fmt.Sprintf("%s err=%v dead=%v", ch, err != nil, dead)]++
					outMu.Unlock()
				}})
			c, err := svc.Subscribe(ctx, e.bus, "notify", 1)
			if err != nil {
				t.Fatal(err)
			}
			evs := terminalEvents("ann", "ben")
			if err := e.bus.Publish(ctx, evs...); err != nil {
				t.Fatal(err)
			}
			if err := dlq.WaitFor(ctx, len(evs)); err != nil {
				t.Fatal(err)
			}
			// Channels deliver independently: the log channel may finish its
			// last delivery after the webhook's last dead letter.
			testkit.Eventually(ctx, t, "stats to count every dead letter and log delivery", func() bool {
				st := svc.Stats()
				return st.DeadLettered[eventmodels.ChannelWebhook] == int64(len(evs)) && st.Delivered[eventmodels.ChannelLog] >= int64(len(evs))
			})
			st := svc.Stats()
			if st.Delivered[eventmodels.ChannelLog] != int64(len(evs)) || st.Delivered[eventmodels.ChannelWebhook] != 0 || sum(st.Failed) != 0 {
				t.Errorf("stats %+v", st)
			}
			// Every outcome was reported: the dead letters as failures,
			// although the handler succeeded.
			outMu.Lock()
			want := map[string]int{"webhook err=true dead=true": len(evs), "log err=false dead=false": len(evs)}
			if fmt.Sprint(outcomes) != fmt.Sprint(want) {
				t.Errorf("OnDelivery saw %v, want %v", outcomes, want)
			}
			outMu.Unlock()
			attempts, accepted, _ := hook.snapshot()
			if len(accepted) != 0 || len(attempts) != len(evs) {
				t.Errorf("webhook accepted %d, saw %d notifications; want 0 and %d", len(accepted), len(attempts), len(evs))
			}
			jobs := map[string]bool{}
			for _, c := range dlq.Captured() {
				m := c.Message
				n, ok := c.Event.(*eventmodels.Notification)
				if !ok {
					t.Fatalf("dead letter decodes to %T (%v)", c.Event, c.Err)
				}
				jobs[n.JobID] = true
				if attempts[n.EventID.String()] != tc.attempts || m.Header(broker.HeaderDLQAttempts) != fmt.Sprint(tc.attempts) {
					t.Errorf("%s: %d attempts, header %q; want %d", n.JobID, attempts[n.EventID.String()], m.Header(broker.HeaderDLQAttempts), tc.attempts)
				}
				if !strings.Contains(m.Header(broker.HeaderDLQError), fmt.Sprintf("HTTP %d", tc.status)) ||
					m.Header(broker.HeaderDLQTopic) != eventmodels.TopicNotifications || m.Header(broker.HeaderDLQGroup) != "notifysvc" ||
					(m.Header(broker.HeaderDLQPermanent) == "true") != tc.permanent || n.Channel != eventmodels.ChannelWebhook {
					t.Errorf("dead letter headers %v, channel %s", m.Headers, n.Channel)
				}
			}
			if len(jobs) != len(evs) {
				t.Errorf("dead letters cover %d jobs, want %d", len(jobs), len(evs))
			}
			if c.Err() != nil {
				t.Errorf("consumer stopped: %v", c.Err())
			}
		})
	}
}

// TestPreferencesRoute: each user gets the events and channels their entry
// (or the default) names, and nothing else.
func TestPreferencesRoute(t *testing.T) {
	ctx := testkit.TimeoutContext(t, deadline)
	e := newEnv(t)
	prefs, err := notifysvc.ParsePreferences([]byte(`{
		"default": {"events": ["job.failed"], "channels": ["log"]},
		"users": {
			"ann": {"events": ["job.*"], "channels": ["log", "push"]},
			"ben": {"channels": ["push"]},
			"cat": {"channels": []}
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	logs := &logRecorder{}
	push := &recordPusher{}
	svc := e.newService(t, notifysvc.Config{Preferences: prefs,
		Channels: []notifysvc.Channel{notifysvc.NewLogChannel(slog.New(logs)), notifysvc.NewBrowserChannel(push)}})
	for _, ev := range terminalEvents("ann", "ben", "cat", "dan") {
		if err := svc.Notify(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string][]string{}
	for _, r := range logs.records() {
		got["log"] = append(got["log"], r["job_id"])
	}
	for _, n := range push.all() {
		got["push"] = append(got["push"], n.JobID)
	}
	// ann (0): all three on both; ben (1): failed on push; cat (2): none;
	// dan (3): failed on log.
	want := map[string][]string{"log": {"job-c0", "job-f0", "job-x0", "job-f3"}, "push": {"job-c0", "job-f0", "job-x0", "job-f1"}}
	for ch, w := range want {
		if fmt.Sprint(got[ch]) != fmt.Sprint(w) {
			t.Errorf("%s got %v, want %v", ch, got[ch], w)
		}
	}
	if st := svc.Stats(); st.Handled != 12 || st.Filtered != 7 || st.Emitted != 8 {
		t.Errorf("handled %d, filtered %d, emitted %d; want 12, 7, 8", st.Handled, st.Filtered, st.Emitted)
	}
	// A job's notification is news for its owner, logged at INFO with its
	// severity as an attribute (TestLogChannelLevels covers the alerts).
	levels, severities := map[string]string{}, map[string]string{}
	for _, r := range logs.records() {
		levels[r["job_id"]], severities[r["job_id"]] = r["level"], r["severity"]
	}
	if levels["job-c0"] != "INFO" || levels["job-f0"] != "INFO" || levels["job-x0"] != "INFO" {
		t.Errorf("log levels %v, want INFO for every job notification", levels)
	}
	if severities["job-c0"] != "info" || severities["job-f0"] != "error" || severities["job-x0"] != "warning" {
		t.Errorf("severities %v", severities)
	}
}

// TestEmitFailure: when the notifications topic refuses the event, nothing
// is delivered and Notify fails (the subscription retries); the next try
// emits and delivers once.
func TestEmitFailure(t *testing.T) {
	ctx := testkit.TimeoutContext(t, deadline)
	e := newEnv(t)
	mock := testkit.NewMockPublisher()
	bus, err := events.NewBus(mock)
	if err != nil {
		t.Fatal(err)
	}
	push := &recordPusher{}
	svc := e.newService(t, notifysvc.Config{Publisher: bus, Channels: []notifysvc.Channel{notifysvc.NewBrowserChannel(push)}})
	mock.FailNext(1, errors.New("broker down"))
	ev := failed("ann", "job-1")
	if err := svc.Notify(ctx, ev); err == nil || !strings.Contains(err.Error(), "broker down") {
		t.Fatalf("Notify = %v, want the publish error", err)
	}
	if len(push.all()) != 0 {
		t.Fatal("delivered although the emit failed")
	}
	for range 2 {
		if err := svc.Notify(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if len(push.all()) != 1 || len(mock.Messages()) != 1 {
		t.Errorf("pushed %d, emitted %d; want 1 and 1", len(push.all()), len(mock.Messages()))
	}
	if got, want := push.all()[0].EventID, notifysvc.NotificationID(eventmodels.ChannelPush, ev.EventID); got != want {
		t.Errorf("notification id %s, want %s", got, want)
	}
	if st := svc.Stats(); st.EmitFailures != 1 || st.Emitted != 1 || st.Duplicates[eventmodels.ChannelPush] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	prefs := &notifysvc.Preferences{Default: notifysvc.Preference{Events: []string{"#"}, Channels: []eventmodels.Channel{eventmodels.ChannelWebhook}}}
	for _, tc := range []struct {
		name string
		cfg  notifysvc.Config
		want []string
	}{
		{"empty", notifysvc.Config{}, []string{"at least one channel"}},
		{"twice", notifysvc.Config{Channels: []notifysvc.Channel{notifysvc.NewLogChannel(nil), notifysvc.NewLogChannel(nil)}}, []string{`two channels named "log"`}},
		{"unconfigured", notifysvc.Config{Channels: []notifysvc.Channel{notifysvc.NewLogChannel(nil)}, Preferences: prefs}, []string{`channel "webhook", which is not configured`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := notifysvc.New(tc.cfg)
			if err == nil {
				t.Fatal("New accepted a bad config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestBusPusherAndStatsHTTP: BusPusher publishes browser pushes on a bus
// (for a dashboard in another process), and GET /stats serves the counters.
func TestBusPusherAndStatsHTTP(t *testing.T) {
	ctx := testkit.TimeoutContext(t, deadline)
	e := newEnv(t)
	realtime := testkit.NewMessageCapture()
	if _, err := e.mem.Subscribe(ctx, broker.Subscription{Topic: eventmodels.TopicNotifications, Ephemeral: true}, realtime.Handle); err != nil {
		t.Fatal(err)
	}
	svc := e.newService(t, notifysvc.Config{Channels: []notifysvc.Channel{notifysvc.NewBrowserChannel(notifysvc.BusPusher{Bus: e.bus})}})
	ev := failed("ann", "job-9")
	if err := svc.Notify(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if err := realtime.WaitFor(ctx, 2); err != nil {
		t.Fatal(err)
	}
	// newService defaults Publisher to the same bus: one emitted, one pushed.
	got := realtime.Events()
	if len(got) != 2 {
		t.Fatalf("%d notifications on the bus, want 2 (emitted and pushed)", len(got))
	}
	for _, g := range got {
		if n := g.(*eventmodels.Notification); n.JobID != "job-9" || n.Channel != eventmodels.ChannelPush {
			t.Errorf("bus carries %+v", n)
		}
	}

	rec := httptest.NewRecorder()
	svc.HTTPHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/stats", nil))
	var st notifysvc.Stats
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || rec.Code != 200 {
		t.Fatalf("GET /stats: %d %s", rec.Code, rec.Body)
	}
	if st.Delivered[eventmodels.ChannelPush] != 1 || st.Emitted != 1 || st.Handled != 1 {
		t.Errorf("GET /stats = %+v", st)
	}
}
