package auditsvc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/auditsvc"
	"github.com/cosmic-horizons/events/examples/internal/audittrail"
	"github.com/cosmic-horizons/events/schemas"
	"github.com/cosmic-horizons/events/testkit"
)

// Every event of every platform topic is recorded once; a job's trail
// lists its events in the order they were published (per topic: the
// broker orders per key within a topic); the trail verifies.
func TestRecordsEveryTopicOnceInOrder(t *testing.T) {
	e := newEnv(t)
	s := e.service(t, auditsvc.Config{})
	e.subscribe(t, s, "audit")
	evs := platformEvents(1, 6)
	e.publish(t, evs...)
	testkit.Eventually(testkit.TimeoutContext(t, timeout), t, "every event recorded", func() bool { return s.Consumed() == int64(len(evs)) })

	st := s.Stats()
	if st.Recorded != int64(len(evs)) || st.Duplicates != 0 || st.Rejected != 0 || st.Records != len(evs) || !st.Available {
		t.Fatalf("stats %+v, want %d recorded and in the trail, nothing else", st, len(evs))
	}
	assertExactlyOnce(t, readTrail(t, e.dir), evs)

	// Topics: every platform topic, no dead-letter topic.
	topics := map[string]bool{}
	for _, r := range readTrail(t, e.dir) {
		topics[r.Topic] = true
	}
	for _, spec := range events.PlatformTopics() {
		if !topics[spec.Name] {
			t.Errorf("nothing recorded from %s", spec.Name)
		}
	}
	for _, topic := range s.Topics() {
		if strings.HasSuffix(topic, broker.DeadLetterSuffix) {
			t.Errorf("subscribed to dead-letter topic %s", topic)
		}
	}

	// Each job's trail: exactly its events, in trail order, and in
	// publish order within each topic.
	published := map[uuid.UUID]int{}
	byJob := map[string][]uuid.UUID{}
	for i, ev := range evs {
		published[ev.Envelope().EventID] = i
		if job := audittrail.JobIDOf(ev); job != "" {
			byJob[job] = append(byJob[job], ev.Envelope().EventID)
		}
	}
	if len(byJob) != 6 {
		t.Fatalf("%d jobs, want 6", len(byJob))
	}
	ctx := context.Background()
	srv := httptest.NewServer(s.HTTPHandler())
	defer srv.Close()
	for job, ids := range byJob {
		recs, err := s.ByJob(ctx, job)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(ids) {
			t.Fatalf("job %s: %d records, want %d", job, len(recs), len(ids))
		}
		lastOfTopic := map[string]int{}
		for i, r := range recs {
			if r.JobID != job {
				t.Fatalf("job %s: record of job %q", job, r.JobID)
			}
			if i > 0 && r.Seq <= recs[i-1].Seq {
				t.Fatalf("job %s: seq %d after %d", job, r.Seq, recs[i-1].Seq)
			}
			p, ok := published[r.EventID]
			if !ok {
				t.Fatalf("job %s: unknown event %s", job, r.EventID)
			}
			if last, seen := lastOfTopic[r.Topic]; seen && p < last {
				t.Fatalf("job %s: %s event published #%d recorded after #%d", job, r.Topic, p, last)
			}
			lastOfTopic[r.Topic] = p
		}

		// GET /audit lists the same records in the same order.
		var got []audittrail.Record
		getJSON(t, srv.URL+"/audit?job_id="+job, http.StatusOK, &got)
		if len(got) != len(recs) {
			t.Fatalf("GET /audit: %d records, want %d", len(got), len(recs))
		}
		for i := range got {
			if got[i].Seq != recs[i].Seq || got[i].EventID != recs[i].EventID || got[i].Hash != recs[i].Hash {
				t.Fatalf("GET /audit record %d: %+v, want %+v", i, got[i], recs[i])
			}
		}
	}

	rep, err := s.Verify(ctx)
	if err != nil || !rep.OK() || rep.Records != len(evs) {
		t.Fatalf("Verify = %+v, %v; want intact with %d records", rep, err, len(evs))
	}
	var res auditsvc.VerifyResult
	getJSON(t, srv.URL+"/audit/verify", http.StatusOK, &res)
	if !res.OK || res.Records != len(evs) || res.Broken != nil || res.LastSeq != uint64(len(evs)) {
		t.Fatalf("GET /audit/verify = %+v", res)
	}
	var stats auditsvc.Stats
	getJSON(t, srv.URL+"/audit/stats", http.StatusOK, &stats)
	if stats.Recorded != int64(len(evs)) || stats.LastSeq != uint64(len(evs)) {
		t.Fatalf("GET /audit/stats = %+v", stats)
	}
}

func TestHTTPRequests(t *testing.T) {
	e := newEnv(t)
	s := e.service(t, auditsvc.Config{})
	srv := httptest.NewServer(s.HTTPHandler())
	defer srv.Close()

	var apiErr struct{ Error string }
	getJSON(t, srv.URL+"/audit", http.StatusBadRequest, &apiErr)
	if !strings.Contains(apiErr.Error, "job_id") {
		t.Fatalf("400 body %q does not name job_id", apiErr.Error)
	}
	getJSON(t, srv.URL+"/audit?job_id=%20", http.StatusBadRequest, &apiErr)

	var none []audittrail.Record
	getJSON(t, srv.URL+"/audit?job_id=nobody", http.StatusOK, &none)
	if none == nil || len(none) != 0 {
		t.Fatalf("unknown job: %v, want []", none)
	}
	resp, err := http.Post(srv.URL+"/audit?job_id=x", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /audit: %d, want 405", resp.StatusCode)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	getJSON(t, srv.URL+"/audit?job_id=x", http.StatusServiceUnavailable, &apiErr)
	getJSON(t, srv.URL+"/audit/verify", http.StatusServiceUnavailable, &apiErr)
	if _, err := s.ByJob(context.Background(), "x"); !errors.Is(err, auditsvc.ErrClosed) {
		t.Fatalf("ByJob after Close: %v, want ErrClosed", err)
	}
}

// Redelivered events (the same event IDs published again, before and
// after a restart of the service) are recorded once.
func TestRedeliveryRecordedOnce(t *testing.T) {
	e := newEnv(t)
	s := e.service(t, auditsvc.Config{})
	cs := e.subscribe(t, s, "audit")
	evs := platformEvents(2, 3)
	e.publish(t, evs...)
	testkit.Eventually(testkit.TimeoutContext(t, timeout), t, "every event recorded", func() bool { return s.Consumed() == int64(len(evs)) })

	e.publish(t, evs...) // the same events again: same event IDs
	testkit.Eventually(testkit.TimeoutContext(t, timeout), t, "redeliveries seen", func() bool { return s.Stats().Duplicates == int64(len(evs)) })
	if st := s.Stats(); st.Recorded != int64(len(evs)) || st.Records != len(evs) {
		t.Fatalf("after redelivery: %+v, want %d records", st, len(evs))
	}

	// Restart on the same directory and publish them once more (a replay
	// from an upstream source): the index rebuilt from disk recognises all
	// of them.
	closeAll(cs)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := e.service(t, auditsvc.Config{})
	e.subscribe(t, s2, "audit")
	e.publish(t, evs...)
	testkit.Eventually(testkit.TimeoutContext(t, timeout), t, "replay seen", func() bool { return s2.Stats().Duplicates == int64(len(evs)) })
	if st := s2.Stats(); st.Recorded != 0 || st.Records != len(evs) {
		t.Fatalf("after restart: %+v, want nothing new and %d records", st, len(evs))
	}
	assertExactlyOnce(t, readTrail(t, e.dir), evs)
}

// A message that does not decode fails permanently: it is dead-lettered,
// nothing is appended, and consumption goes on.
func TestUndecodableIsDeadLettered(t *testing.T) {
	e := newEnv(t)
	s := e.service(t, auditsvc.Config{})
	dlq := testkit.NewMessageCapture()
	c, err := e.b.Subscribe(context.Background(), broker.Subscription{
		Topic: broker.DeadLetterTopic(eventmodels.TopicJobLifecycle), Group: "watch"}, dlq.Handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	e.subscribe(t, s, "audit")

	bad := []*broker.Message{
		{Topic: eventmodels.TopicJobLifecycle, Key: "job-x", Body: []byte("not json"), Headers: broker.Headers{
			{Key: broker.HeaderContentType, Value: eventmodels.ContentTypeJSON},
			{Key: broker.HeaderType, Value: eventmodels.TypeJobSubmitted},
			{Key: broker.HeaderID, Value: uuid.NewString()},
		}},
		{Topic: eventmodels.TopicJobLifecycle, Key: "job-y", Body: []byte(`{"event_type":"job.exploded"}`), Headers: broker.Headers{
			{Key: broker.HeaderContentType, Value: eventmodels.ContentTypeJSON},
			{Key: broker.HeaderType, Value: "job.exploded"},
		}},
	}
	if err := e.b.Publish(context.Background(), bad...); err != nil {
		t.Fatal(err)
	}
	good := testkit.NewEventBuilder(3).JobSubmitted().Build()
	e.publish(t, good)

	testkit.Eventually(testkit.TimeoutContext(t, timeout), t, "two dead letters", func() bool { return dlq.Count() == 2 })
	testkit.Eventually(testkit.TimeoutContext(t, timeout), t, "the valid event recorded", func() bool { return s.Consumed() == 1 })
	for _, m := range dlq.Messages() {
		if m.Header(broker.HeaderDLQPermanent) != "true" || m.Header(broker.HeaderDLQAttempts) != "1" {
			t.Errorf("dead letter %q: headers %v, want permanent after 1 attempt", m.Key, m.Headers)
		}
	}
	if st := s.Stats(); st.Rejected != 2 || st.Records != 1 {
		t.Fatalf("stats %+v, want 2 rejected and 1 record", st)
	}
	assertExactlyOnce(t, readTrail(t, e.dir), []eventmodels.Event{good})

	// The handler itself: a permanent error, nothing appended.
	err = s.Handler()(context.Background(), bad[0])
	if !broker.IsPermanent(err) {
		t.Fatalf("Handler(undecodable) = %v, want a permanent error", err)
	}
	if st := s.Stats(); st.Records != 1 {
		t.Fatalf("%d records after a rejected message, want 1", st.Records)
	}
}

// A storage failure neither dead-letters nor loses the message: the
// handler reopens the trail and retries until the write succeeds.
func TestStorageFailureRetriedNotDeadLettered(t *testing.T) {
	e := newEnv(t)
	day := time.Date(2026, 3, 1, 23, 0, 0, 0, time.UTC)
	clock := &settableClock{now: day}
	s := e.service(t, auditsvc.Config{Clock: clock.Now, FailureBackoff: time.Millisecond})
	dlq := testkit.NewMessageCapture()
	c, err := e.b.Subscribe(context.Background(), broker.Subscription{
		Topic: broker.DeadLetterTopic(eventmodels.TopicJobLifecycle), Group: "watch"}, dlq.Handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	e.subscribe(t, s, "audit")
	b := testkit.NewEventBuilder(4)
	first := b.JobSubmitted().Build()
	e.publish(t, first)
	testkit.Eventually(testkit.TimeoutContext(t, timeout), t, "first event recorded", func() bool { return s.Consumed() == 1 })

	// Block the next day's segment: creating it fails, which fails the
	// trail, as a full or broken disk would.
	next := day.Add(2 * time.Hour)
	blocker := filepath.Join(e.dir, audittrail.SegmentName(next))
	if err := os.Mkdir(blocker, 0o750); err != nil {
		t.Fatal(err)
	}
	clock.Set(next)
	second := b.JobSubmitted().Build()
	e.publish(t, second)
	testkit.Eventually(testkit.TimeoutContext(t, timeout), t, "failures retried with a reopen", func() bool {
		st := s.Stats()
		return st.StorageErrors >= 2 && st.Reopens >= 1
	})
	if s.Consumed() != 1 || dlq.Count() != 0 {
		t.Fatalf("during the failure: %d recorded, %d dead letters; want 1 and 0", s.Consumed(), dlq.Count())
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(testkit.TimeoutContext(t, timeout), t, "second event recorded", func() bool { return s.Consumed() == 2 })
	if st := s.Stats(); st.Rejected != 0 || dlq.Count() != 0 || !st.Available || st.LastError == "" {
		t.Fatalf("after recovery: %+v, %d dead letters", st, dlq.Count())
	}
	rep, err := s.Verify(context.Background())
	if err != nil || !rep.OK() || rep.Records != 2 || len(rep.Segments) != 2 {
		t.Fatalf("Verify = %+v, %v; want intact, 2 records in 2 segments", rep, err)
	}
	assertExactlyOnce(t, readTrail(t, e.dir), []eventmodels.Event{first, second})
}

// After Close, a handler neither acknowledges nor dead-letters: it returns
// a non-permanent error once its ctx ends.
func TestHandlerAfterClose(t *testing.T) {
	e := newEnv(t)
	s := e.service(t, auditsvc.Config{})
	msg, err := e.bus.Message(testkit.NewEventBuilder(5).JobSubmitted().Build())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = s.Handler()(ctx, msg)
	if !errors.Is(err, auditsvc.ErrClosed) || !errors.Is(err, context.Canceled) || broker.IsPermanent(err) {
		t.Fatalf("Handler after Close = %v, want ErrClosed and ctx's error, not permanent", err)
	}
}

func TestConfigValidate(t *testing.T) {
	bus, err := events.NewBus(nil) // decode-only
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  auditsvc.Config
		want []string
	}{
		{"empty", auditsvc.Config{}, []string{"Dir", "Bus"}},
		{"negative", auditsvc.Config{Dir: "x", Bus: bus, Retention: -time.Hour, FailureBackoff: -1}, []string{"Retention", "FailureBackoff"}},
		{"topics", auditsvc.Config{Dir: "x", Bus: bus, Topics: []string{"a", "a", " "}}, []string{"twice", "empty topic"}},
	} {
		_, err := auditsvc.New(tc.cfg)
		if err == nil {
			t.Errorf("%s: New succeeded", tc.name)
			continue
		}
		if missing := contains(err.Error(), tc.want...); len(missing) > 0 {
			t.Errorf("%s: error %q does not mention %v", tc.name, err, missing)
		}
	}
}

// A second service on a directory in use fails instead of corrupting it.
func TestDirectoryLocked(t *testing.T) {
	e := newEnv(t)
	e.service(t, auditsvc.Config{})
	if _, err := auditsvc.New(auditsvc.Config{Dir: e.dir, Bus: e.bus}); !errors.Is(err, audittrail.ErrLocked) {
		t.Fatalf("second New on the same dir: %v, want ErrLocked", err)
	}
}

func getJSON(t *testing.T, url string, wantStatus int, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: status %d, want %d", url, resp.StatusCode, wantStatus)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q", url, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// A message whose identifiers carry control characters (a user_id with a
// newline and an ANSI escape, written by a producer that skipped
// validation) is refused by the decoder's validation: it is dead-lettered
// and never reaches the trail, in Avro and in JSON alike.
func TestControlCharactersDeadLettered(t *testing.T) {
	e := newEnv(t)
	s := e.service(t, auditsvc.Config{})
	dlq := testkit.NewMessageCapture()
	c, err := e.b.Subscribe(context.Background(), broker.Subscription{
		Topic: broker.DeadLetterTopic(eventmodels.TopicAuditTrail), Group: "watch"}, dlq.Handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	e.subscribe(t, s, "audit")

	reg := eventmodels.NewRegistry()
	codecs, err := schemas.NewCodecs(reg, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := testkit.NewEventBuilder(5)
	forged := []*eventmodels.Audit{
		b.Audit().With(func(a *eventmodels.Audit) { a.UserID = "alice\n\x1b[31mroot" }).Build(),
		b.Audit().With(func(a *eventmodels.Audit) { a.Resource.ID = "job-1\r\x1b[2K" }).Build(),
	}
	var bad []*broker.Message
	for _, ct := range []string{eventmodels.ContentTypeAvro, eventmodels.ContentTypeJSON} {
		codec, err := codecs.For(ct)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range forged {
			body, err := codec.Encode(a) // Encode does not validate: a careless producer
			if err != nil {
				t.Fatal(err)
			}
			bad = append(bad, &broker.Message{Topic: eventmodels.TopicAuditTrail, Key: a.Key(), Body: body, Headers: broker.Headers{
				{Key: broker.HeaderContentType, Value: ct},
				{Key: broker.HeaderType, Value: eventmodels.TypeAudit},
				{Key: broker.HeaderID, Value: a.EventID.String()},
			}})
		}
	}
	if err := e.b.Publish(context.Background(), bad...); err != nil {
		t.Fatal(err)
	}
	good := b.Audit().Build()
	e.publish(t, good)

	testkit.Eventually(testkit.TimeoutContext(t, timeout), t, "every forged message dead-lettered", func() bool { return dlq.Count() == len(bad) })
	testkit.Eventually(testkit.TimeoutContext(t, timeout), t, "the valid event recorded", func() bool { return s.Consumed() == 1 })
	if st := s.Stats(); st.Rejected != int64(len(bad)) || st.Records != 1 {
		t.Fatalf("stats %+v, want %d rejected and 1 record", st, len(bad))
	}
	assertExactlyOnce(t, readTrail(t, e.dir), []eventmodels.Event{good})
	raw, err := os.ReadFile(onlySegment(t, e.dir))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsAny(raw, "\x1b\r") || bytes.Contains(raw, []byte("root")) {
		t.Errorf("the trail carries forged content: %q", raw)
	}
}
