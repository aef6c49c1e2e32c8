package benchcore

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cosmic-horizons/events/testkit"
)

// Latency is a latency distribution in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// LatencyOf converts testkit statistics to milliseconds.
func LatencyOf(s testkit.LatencyStats) Latency {
	return Latency{Count: s.Count, P50: ms(s.P50), P95: ms(s.P95), P99: ms(s.P99), Max: ms(s.Max), Mean: ms(s.Mean)}
}

// Result is what one run measured (or, with Runs > 1, the median of
// several runs of one configuration; see Median).
type Result struct {
	// Backend is memory, kafka or rabbitmq; Mode sdk or raw.
	Backend string `json:"backend"`
	Mode    string `json:"mode"`
	// Started is when the run began.
	Started time.Time `json:"started"`
	// OfferedRate is the rate asked for, events/s; 0 means as fast as
	// possible.
	OfferedRate float64 `json:"offered_rate"`
	Publishers  int     `json:"publishers"`
	Subscribers int     `json:"subscribers"`
	Concurrency int     `json:"concurrency"`
	Batch       int     `json:"batch"`
	Partitions  int     `json:"partitions"`
	// BodyBytes is the mean encoded body size of the events sent.
	BodyBytes float64 `json:"body_bytes"`
	// Seconds is the length of the publishing phase; Warmup its first
	// part, left out of the latencies.
	Seconds float64 `json:"seconds"`
	Warmup  float64 `json:"warmup_seconds"`

	// Sent events were handed to Publish; Acked were confirmed; Failed
	// were reported unconfirmed; Consumed counts distinct events received.
	Sent     int64 `json:"sent"`
	Acked    int64 `json:"acked"`
	Failed   int64 `json:"failed"`
	Consumed int64 `json:"consumed"`
	// Lost events were acknowledged and never consumed: must be 0.
	Lost int64 `json:"lost"`
	// Duplicates are receptions of an event beyond its first.
	Duplicates int64 `json:"duplicates"`
	// Unconfirmed events arrived although their Publish failed.
	Unconfirmed int64 `json:"unconfirmed"`
	// Foreign messages were not events of this run.
	Foreign int64 `json:"foreign"`

	// PublishRate is acknowledged events per second of the publishing
	// phase; Throughput is consumed events per second from the first
	// publish to the last consumption.
	PublishRate float64 `json:"publish_rate"`
	Throughput  float64 `json:"throughput"`
	// Publish is the latency of Publish calls (per event); EndToEnd of
	// publish→consume.
	Publish  Latency `json:"publish_latency"`
	EndToEnd Latency `json:"e2e_latency"`

	// CPUSeconds is the CPU time (user+system) of this process during the
	// run; PeakRSSMiB its peak resident memory during the run.
	CPUSeconds float64 `json:"cpu_seconds"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// BrokerCPUSeconds and BrokerPeakRSSMiB are those of an embedded
	// broker run in a child process (Kafka), when there is one.
	BrokerCPUSeconds float64 `json:"broker_cpu_seconds,omitempty"`
	BrokerPeakRSSMiB float64 `json:"broker_peak_rss_mib,omitempty"`
	// Runs is how many runs the figures summarise (1 for a single run).
	Runs int `json:"runs"`

	// Scenario is empty for a run of Run (publishers and consumers at
	// once) and ScenarioDrain for RunDrain (publish first, then consume).
	Scenario string `json:"scenario,omitempty"`
	// DrainRate (RunDrain) is events consumed per second from the first to
	// the last consumption of the backlog; DrainSeconds the time from the
	// Subscribe call to the last consumption, FirstEventSeconds to the
	// first (joining the group, the first fetch).
	DrainRate         float64 `json:"drain_rate,omitempty"`
	DrainSeconds      float64 `json:"drain_seconds,omitempty"`
	FirstEventSeconds float64 `json:"first_event_seconds,omitempty"`
	// PublishCPUSeconds and DrainCPUSeconds (RunDrain) split CPUSeconds:
	// the publishing phase (no consumer running) and the drain.
	PublishCPUSeconds float64 `json:"publish_cpu_seconds,omitempty"`
	DrainCPUSeconds   float64 `json:"drain_cpu_seconds,omitempty"`
}

// ScenarioDrain marks the results of RunDrain.
const ScenarioDrain = "drain"

// Label names the result's configuration: "kafka/sdk", with "/drain" for
// RunDrain and "@5000/s" when paced.
func (r Result) Label() string {
	s := r.Backend + "/" + r.Mode
	if r.Scenario != "" {
		s += "/" + r.Scenario
	}
	if r.OfferedRate > 0 {
		s += fmt.Sprintf("@%g/s", r.OfferedRate)
	}
	return s
}

// OK reports whether the run lost nothing and saw no foreign message.
func (r Result) OK() bool { return r.Lost == 0 }

// Median summarises runs of one configuration: each measured figure is the
// median over the runs, except the loss counts (Lost, Failed, Duplicates,
// Unconfirmed, Foreign), which are the worst run's, so that one bad run is
// never hidden. The descriptive fields come from the first run.
func Median(rs []Result) Result {
	if len(rs) == 0 {
		return Result{}
	}
	out := rs[0]
	out.Runs = len(rs)
	med := func(get func(Result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = get(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	medI := func(get func(Result) int64) int64 {
		return int64(math.Round(med(func(r Result) float64 { return float64(get(r)) })))
	}
	worst := func(get func(Result) int64) int64 {
		w := get(rs[0])
		for _, r := range rs[1:] {
			w = max(w, get(r))
		}
		return w
	}
	medL := func(get func(Result) Latency) Latency {
		return Latency{
			Count: medI(func(r Result) int64 { return get(r).Count }),
			P50:   med(func(r Result) float64 { return get(r).P50 }),
			P95:   med(func(r Result) float64 { return get(r).P95 }),
			P99:   med(func(r Result) float64 { return get(r).P99 }),
			Max:   med(func(r Result) float64 { return get(r).Max }),
			Mean:  med(func(r Result) float64 { return get(r).Mean }),
		}
	}
	out.BodyBytes = med(func(r Result) float64 { return r.BodyBytes })
	out.Seconds = med(func(r Result) float64 { return r.Seconds })
	out.Sent = medI(func(r Result) int64 { return r.Sent })
	out.Acked = medI(func(r Result) int64 { return r.Acked })
	out.Consumed = medI(func(r Result) int64 { return r.Consumed })
	out.Failed = worst(func(r Result) int64 { return r.Failed })
	out.Lost = worst(func(r Result) int64 { return r.Lost })
	out.Duplicates = worst(func(r Result) int64 { return r.Duplicates })
	out.Unconfirmed = worst(func(r Result) int64 { return r.Unconfirmed })
	out.Foreign = worst(func(r Result) int64 { return r.Foreign })
	out.PublishRate = med(func(r Result) float64 { return r.PublishRate })
	out.Throughput = med(func(r Result) float64 { return r.Throughput })
	out.Publish = medL(func(r Result) Latency { return r.Publish })
	out.EndToEnd = medL(func(r Result) Latency { return r.EndToEnd })
	out.CPUSeconds = med(func(r Result) float64 { return r.CPUSeconds })
	out.PeakRSSMiB = med(func(r Result) float64 { return r.PeakRSSMiB })
	out.BrokerCPUSeconds = med(func(r Result) float64 { return r.BrokerCPUSeconds })
	out.BrokerPeakRSSMiB = med(func(r Result) float64 { return r.BrokerPeakRSSMiB })
	out.DrainRate = med(func(r Result) float64 { return r.DrainRate })
	out.DrainSeconds = med(func(r Result) float64 { return r.DrainSeconds })
	out.FirstEventSeconds = med(func(r Result) float64 { return r.FirstEventSeconds })
	out.PublishCPUSeconds = med(func(r Result) float64 { return r.PublishCPUSeconds })
	out.DrainCPUSeconds = med(func(r Result) float64 { return r.DrainCPUSeconds })
	return out
}

// PairRatios compares each sdk run with the raw run just before it (same
// backend and offered rate: the two halves of one alternation, under the
// same machine conditions) and returns, per backend and rate, a line with
// the sdk ÷ raw throughput of every pair and their median, e.g.
// "kafka@max/s sdk ÷ raw throughput per pair: 0.80 0.80 0.75, median 0.80".
func PairRatios(runs []Result) []string {
	type key struct {
		backend string
		rate    float64
	}
	ratios := map[key][]float64{}
	var order []key
	for i := 1; i < len(runs); i++ {
		raw, sdk := runs[i-1], runs[i]
		if raw.Mode != ModeRaw || sdk.Mode != ModeSDK || raw.Backend != sdk.Backend || raw.OfferedRate != sdk.OfferedRate || raw.Throughput == 0 {
			continue
		}
		k := key{raw.Backend, raw.OfferedRate}
		if _, ok := ratios[k]; !ok {
			order = append(order, k)
		}
		ratios[k] = append(ratios[k], sdk.Throughput/raw.Throughput)
	}
	var out []string
	for _, k := range order {
		rs := ratios[k]
		parts := make([]string, len(rs))
		for i, r := range rs {
			parts[i] = strconv.FormatFloat(r, 'f', 2, 64)
		}
		rate := "max"
		if k.rate > 0 {
			rate = strconv.FormatFloat(k.rate, 'f', -1, 64)
		}
		med := Median(func() []Result {
			x := make([]Result, len(rs))
			for i, r := range rs {
				x[i].Throughput = r
			}
			return x
		}()).Throughput
		out = append(out, fmt.Sprintf("%s@%s/s sdk ÷ raw throughput per pair: %s, median %.2f", k.backend, rate, strings.Join(parts, " "), med))
	}
	return out
}
