package metricsvc

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HTTPHandler serves GET /metrics (Prometheus text format, one consistent
// snapshot per scrape), GET /summary (Summary as JSON) and GET /jobs/{id}
// (JobSummary as JSON; 404 for a job never seen).
func (s *Service) HTTPHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{s})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /summary", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Summary())
	})
	mux.HandleFunc("GET /jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		j, ok := s.Job(r.PathValue("id"))
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "metricsvc: no events seen for job " + strconv.Quote(r.PathValue("id"))})
			return
		}
		writeJSON(w, http.StatusOK, j)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

var (
	descJobs       = prometheus.NewDesc("cosmic_jobs", "Jobs by current state.", []string{"state"}, nil)
	descEvents     = prometheus.NewDesc("cosmic_events_total", "Distinct events consumed, by type.", []string{"type"}, nil)
	descDuplicates = prometheus.NewDesc("cosmic_events_duplicates_total", "Redelivered events ignored.", nil, nil)
	descRate       = prometheus.NewDesc("cosmic_events_per_second", "Events consumed per second over the window.", nil, nil)
	descQueueWait  = prometheus.NewDesc("cosmic_job_queue_wait_seconds", "Time jobs waited in the queue.", nil, nil)
	descRuntime    = prometheus.NewDesc("cosmic_job_runtime_seconds", "Run time of finished jobs.", nil, nil)
	descUserCPU    = prometheus.NewDesc("cosmic_user_cpu_hours", "CPU hours used, by user.", []string{"user"}, nil)
	descUserGPU    = prometheus.NewDesc("cosmic_user_gpu_hours", "GPU hours used, by user.", []string{"user"}, nil)
	descProjCPU    = prometheus.NewDesc("cosmic_project_cpu_hours", "CPU hours used, by project.", []string{"project"}, nil)
	descProjGPU    = prometheus.NewDesc("cosmic_project_gpu_hours", "GPU hours used, by project.", []string{"project"}, nil)
	descLag        = prometheus.NewDesc("cosmic_consumer_lag", "Messages a consumer group is behind, per partition.", []string{"group", "topic", "partition"}, nil)
)

// collector renders a Summary snapshot at scrape time, so one scrape is
// consistent.
type collector struct{ s *Service }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descJobs, descEvents, descDuplicates, descRate, descQueueWait, descRuntime, descUserCPU, descUserGPU, descProjCPU, descProjGPU, descLag} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	sum := c.s.Summary()
	gauge := func(desc *prometheus.Desc, typ prometheus.ValueType, v float64, labels ...string) {
		for i, l := range labels {
			labels[i] = strings.ToValidUTF8(l, "\uFFFD") // label values come from events; never let one break a scrape
		}
		m, err := prometheus.NewConstMetric(desc, typ, v, labels...)
		if err != nil {
			m = prometheus.NewInvalidMetric(desc, err)
		}
		ch <- m
	}
	for _, state := range eventmodels.JobStatuses() { // every state, so each series exists from the start
		gauge(descJobs, prometheus.GaugeValue, float64(sum.JobsByState[string(state)]), string(state))
	}
	for typ, n := range sum.EventsByType {
		gauge(descEvents, prometheus.CounterValue, float64(n), typ)
	}
	gauge(descDuplicates, prometheus.CounterValue, float64(sum.Duplicates))
	gauge(descRate, prometheus.GaugeValue, sum.EventsPerSecond)
	for _, d := range []struct {
		desc *prometheus.Desc
		p    Percentiles
	}{{descQueueWait, sum.QueueWaitMS}, {descRuntime, sum.RuntimeMS}} {
		m, err := prometheus.NewConstSummary(d.desc, uint64(d.p.Count), d.p.Sum/1000, map[float64]float64{
			0.5: d.p.P50 / 1000, 0.95: d.p.P95 / 1000, 0.99: d.p.P99 / 1000,
		})
		if err != nil {
			m = prometheus.NewInvalidMetric(d.desc, err)
		}
		ch <- m
	}
	for _, m := range []struct {
		desc *prometheus.Desc
		vals map[string]float64
	}{{descUserCPU, sum.CPUHoursByUser}, {descUserGPU, sum.GPUHoursByUser}, {descProjCPU, sum.CPUHoursByProject}, {descProjGPU, sum.GPUHoursByProject}} {
		for k, v := range m.vals {
			gauge(m.desc, prometheus.GaugeValue, v, k)
		}
	}
	for _, l := range sum.ConsumerLag {
		gauge(descLag, prometheus.GaugeValue, float64(l.Lag), l.Group, l.Topic, strconv.Itoa(int(l.Partition)))
	}
}
