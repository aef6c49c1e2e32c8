package metricsvc

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HTTPHandler serves GET /metrics (Prometheus text format) and GET /summary
// (JSON).
func (s *Service) HTTPHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{s})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /summary", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.Summary())
	})
	return mux
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
	for state, n := range sum.JobsByState {
		ch <- prometheus.MustNewConstMetric(descJobs, prometheus.GaugeValue, float64(n), state)
	}
	for typ, n := range sum.EventsByType {
		ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(n), typ)
	}
	ch <- prometheus.MustNewConstMetric(descDuplicates, prometheus.CounterValue, float64(sum.Duplicates))
	ch <- prometheus.MustNewConstMetric(descRate, prometheus.GaugeValue, sum.EventsPerSecond)
	for _, d := range []struct {
		desc *prometheus.Desc
		p    Percentiles
	}{{descQueueWait, sum.QueueWaitMS}, {descRuntime, sum.RuntimeMS}} {
		ch <- prometheus.MustNewConstSummary(d.desc, uint64(d.p.Count), 0, map[float64]float64{
			0.5: d.p.P50 / 1000, 0.95: d.p.P95 / 1000, 0.99: d.p.P99 / 1000,
		})
	}
	for _, m := range []struct {
		desc *prometheus.Desc
		vals map[string]float64
	}{{descUserCPU, sum.CPUHoursByUser}, {descUserGPU, sum.GPUHoursByUser}, {descProjCPU, sum.CPUHoursByProject}, {descProjGPU, sum.GPUHoursByProject}} {
		for k, v := range m.vals {
			ch <- prometheus.MustNewConstMetric(m.desc, prometheus.GaugeValue, v, k)
		}
	}
	for _, l := range sum.ConsumerLag {
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(l.Lag), l.Group, l.Topic, strconv.Itoa(int(l.Partition)))
	}
}
