package benchcore

import (
	"errors"
	"testing"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
)

func newTestWorkload(t *testing.T, cfg WorkloadConfig) (*Workload, *events.Bus, RunID) {
	t.Helper()
	run := NewRunID()
	s, err := newSDK(Options{Backend: BackendMemory, Topic: "bench", Workload: cfg}, run)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s.workload, s.bus, run
}

func TestWorkloadSizesAndValidity(t *testing.T) {
	for _, size := range []int{0, 300, 1000} {
		w, bus, run := newTestWorkload(t, WorkloadConfig{BodySize: size})
		want := size
		if want == 0 {
			want = 300
		}
		for n := range uint64(mixPeriod) {
			e := w.Event(n)
			if err := e.Validate(); err != nil {
				t.Fatalf("size %d: event %d (%s) invalid: %v", size, n, w.Kind(n), err)
			}
			if seq, ok := run.Seq(e.Envelope().EventID); !ok || seq != n {
				t.Fatalf("event %d carries seq %d, %v", n, seq, ok)
			}
			if e.Key() != w.Key(n) {
				t.Fatalf("event %d key %q, want %q", n, e.Key(), w.Key(n))
			}
			m, err := bus.Message(e)
			if err != nil {
				t.Fatal(err)
			}
			body := m.Body
			k := w.Kind(n)
			if len(body) != w.BodySize(k) {
				t.Fatalf("event %d (%s): %d bytes, BodySize says %d", n, k, len(body), w.BodySize(k))
			}
			reachable := want <= 700 || (k != KindSubmitted && k != KindQueued && k != KindMetrics)
			if reachable && (len(body) < want || len(body) > want+2) {
				t.Fatalf("size %d: event %d (%s) body is %d bytes", size, n, k, len(body))
			}
		}
		if mean := w.MeanBodySize(); size <= 700 && (mean < float64(want) || mean > float64(want)+2) {
			t.Errorf("size %d: mean body %v", size, mean)
		}
	}
}

func TestWorkloadMix(t *testing.T) {
	for _, share := range []float64{0.3, 1, 0.05} {
		w, _, _ := newTestWorkload(t, WorkloadConfig{MetricsShare: share})
		counts := map[Kind]int{}
		for n := range uint64(mixPeriod) {
			counts[w.Kind(n)]++
		}
		if want := int(share*mixPeriod + 0.5); counts[KindMetrics] != want {
			t.Errorf("share %v: %d metrics events of %d, want %d", share, counts[KindMetrics], mixPeriod, want)
		}
		if share < 1 && (counts[KindSubmitted] == 0 || counts[KindProgress] <= counts[KindSubmitted]) {
			t.Errorf("share %v: lifecycle mix %v", share, counts)
		}
	}
}

func TestWorkloadMessageMatchesBus(t *testing.T) {
	w, bus, run := newTestWorkload(t, WorkloadConfig{})
	for _, n := range []uint64{0, 7, 12345} {
		m := w.Message(n, "1700000000000000000")
		want, err := bus.Message(w.Event(n))
		if err != nil {
			t.Fatal(err)
		}
		if m.Key != want.Key || m.Topic != "bench" || len(m.Body) != len(want.Body) {
			t.Errorf("message %d: key %q topic %q %d bytes; bus: key %q %d bytes", n, m.Key, m.Topic, len(m.Body), want.Key, len(want.Body))
		}
		if seq, ok := run.SeqString(m.Header(broker.HeaderID)); !ok || seq != n {
			t.Errorf("message %d: ce_id %q carries %d, %v", n, m.Header(broker.HeaderID), seq, ok)
		}
		if m.Header(HeaderSent) != "1700000000000000000" || m.Header(broker.HeaderType) != want.Header(broker.HeaderType) {
			t.Errorf("message %d headers = %v", n, m.Headers)
		}
		for _, hdr := range want.Headers {
			if _, ok := m.Headers.Lookup(hdr.Key); !ok {
				t.Errorf("message %d lacks header %q the bus writes", n, hdr.Key)
			}
		}
	}
	// The template is not changed by building messages from it.
	if a, b := w.Message(1, "1"), w.Message(1, "2"); a.Header(HeaderSent) == b.Header(HeaderSent) {
		t.Error("messages share their headers map")
	}
}

func TestWorkloadConfigErrors(t *testing.T) {
	for _, cfg := range []WorkloadConfig{
		{BodySize: -1}, {BodySize: eventmodels.MaxTextLength + 1}, {Keys: -5}, {Keys: 2_000_000}, {MetricsShare: 1.5}, {MetricsShare: -0.1},
	} {
		if err := cfg.Validate(); !errors.Is(err, ErrWorkload) {
			t.Errorf("%+v: Validate = %v, want ErrWorkload", cfg, err)
		}
	}
}
