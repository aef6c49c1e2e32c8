package testkit

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/cosmic-horizons/events/eventmodels"
)

// The pools random defaults are drawn from: plausible values of the
// platform, all within the validation limits.
var (
	users       = []string{"astro-user-1", "astro-user-7", "astro-user-12", "radio-lab-3", "survey-bot", "pi-okafor", "pi-lindqvist"}
	projects    = []string{"proj-vlass", "proj-alma-c11", "proj-meerkat-lsd", "proj-askap-emu", "proj-lofar-lotss"}
	telescopes  = []string{"VLA", "ALMA", "MeerKAT", "ASKAP", "LOFAR"}
	instruments = []string{"WIDAR", "Band6", "L-band", "RACS", "HBA", ""}
	queues      = []string{"cpu-small", "cpu-large", "gpu-small", "gpu-large", "debug"}
	nodes       = []string{"hpc-node-03", "hpc-node-17", "gpu-node-02", "gpu-node-11"}
	paramKeys   = []string{"band", "field", "epoch", "pipeline", "calibrator"}
	paramValues = []string{"S", "L", "T17", "E3", "v2.4", "3C286", "J1331+3030"}
	coreChoices = []int{1, 2, 4, 8, 16, 32, 64}
	memChoices  = []int64{4_096, 16_384, 65_536, 131_072, 262_144}
	failures    = []struct {
		class   eventmodels.ErrorClass
		code    int
		message string
		retry   bool
	}{
		{eventmodels.ErrorOutOfMemory, 137, "process killed: memory limit exceeded", true},
		{eventmodels.ErrorTimeout, 124, "walltime exceeded", true},
		{eventmodels.ErrorUser, 2, "invalid parameter 'band'", false},
		{eventmodels.ErrorInfrastructure, 255, "node lost during run", true},
		{eventmodels.ErrorUnknown, 1, "exited with status 1", false},
	}
	channels   = []eventmodels.Channel{eventmodels.ChannelLog, eventmodels.ChannelEmail, eventmodels.ChannelWebhook, eventmodels.ChannelPush, eventmodels.ChannelSMS}
	severities = []eventmodels.Severity{eventmodels.SeverityInfo, eventmodels.SeverityWarning, eventmodels.SeverityError, eventmodels.SeverityCritical}
	actions    = []string{"job.submit", "job.cancel", "project.update", "quota.change", "data.download"}
	components = []string{"kafka", "rabbitmq", "orchestrator", "metrics-service", "notification-service", "audit-service"}
	healths    = []eventmodels.HealthStatus{eventmodels.HealthHealthy, eventmodels.HealthDegraded, eventmodels.HealthUnhealthy, eventmodels.HealthUnknown}
	checkNames = []string{"brokers_reachable", "consumer_lag", "error_rate", "disk_free", "publish_latency"}
	cancelWhy  = []string{"superseded by a newer submission", "cancelled by user", "project quota exhausted", ""}
)

func pick[T any](r *rand.Rand, pool []T) T { return pool[r.IntN(len(pool))] }

// round2 keeps two decimals, so defaults read well in test output.
func round2(f float64) float64 { return math.Round(f*100) / 100 }

// randomLabels returns 1 to maxN labels. Never none: the Avro codec decodes
// no labels as an empty, non-nil slice and the JSON codec as nil, so an
// empty default could not round-trip to an equal value through both.
func randomLabels(r *rand.Rand, keys, values []string, maxN int) eventmodels.Labels {
	n := 1 + r.IntN(maxN)
	m := make(map[string]string, n)
	for _, i := range r.Perm(len(keys))[:min(n, len(keys))] {
		m[keys[i]] = pick(r, values)
	}
	return eventmodels.LabelsOf(m)
}

func randomSpec(r *rand.Rand) eventmodels.JobSpec {
	queue := pick(r, queues)
	gpus := 0
	if queue == "gpu-small" || queue == "gpu-large" {
		gpus = 1 + r.IntN(4)
	}
	return eventmodels.JobSpec{
		ProjectID:  pick(r, projects),
		Telescope:  pick(r, telescopes),
		Instrument: pick(r, instruments),
		JobName:    fmt.Sprintf("imaging-tile-%03d", r.IntN(1000)),
		Queue:      queue,
		Priority:   r.IntN(eventmodels.MaxPriority + 1),
		Resources: eventmodels.Resources{
			CPUCores:        pick(r, coreChoices),
			GPUs:            gpus,
			MemoryMB:        pick(r, memChoices),
			WalltimeSeconds: int64(600 + r.IntN(86_400-600)),
		},
		Parameters: randomLabels(r, paramKeys, paramValues, 3),
	}
}

func randomUsage(r *rand.Rand, progress float64) eventmodels.Usage {
	runtime := int64(1_000 + r.IntN(7_200_000))
	return eventmodels.Usage{
		CPUHours:     round2(r.Float64() * 64),
		GPUHours:     round2(r.Float64() * 8),
		MemoryPeakMB: int64(256 + r.IntN(262_144)),
		RuntimeMS:    runtime,
		QueueWaitMS:  int64(r.IntN(600_000)),
		Progress:     progress,
	}
}

func randomChecks(r *rand.Rand) []eventmodels.HealthCheck {
	n := 1 + r.IntN(3)
	out := make([]eventmodels.HealthCheck, 0, n)
	for _, i := range r.Perm(len(checkNames))[:n] {
		out = append(out, eventmodels.HealthCheck{
			Name:   checkNames[i],
			Status: pick(r, healths),
			Value:  round2(r.Float64() * 1000),
		})
	}
	return out
}
