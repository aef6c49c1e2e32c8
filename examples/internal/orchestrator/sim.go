package orchestrator

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
)

// SimConfig shapes the simulated HPC executor. Everything random is drawn
// from sources seeded by Seed and the job ID, so one seed gives the same jobs,
// outcomes and resource use on every run (and after a restart).
type SimConfig struct {
	// Seed of every random choice.
	Seed uint64
	// FailureRatio is the share of jobs that fail while running, 0–1.
	FailureRatio float64
	// Speed scales simulated time to wall time: 1 runs a job in roughly
	// QueueDelay + RunTime of real time, 10 ten times faster, 0 instantly
	// (deterministic tests).
	Speed float64
	// QueueDelay is the mean time a job waits in the queue; default 2s.
	QueueDelay time.Duration
	// RunTime is the mean run time of a job; default 10s.
	RunTime time.Duration
	// ProgressSteps is the number of progress reports while running;
	// default 5.
	ProgressSteps int
	// MetricsEvery publishes job.metrics after every n progress steps (and
	// always at the end); default 1.
	MetricsEvery int
	// Nodes is the number of simulated compute nodes; default 16.
	Nodes int
}

func (c SimConfig) withDefaults() SimConfig {
	if c.QueueDelay == 0 {
		c.QueueDelay = 2 * time.Second
	}
	if c.RunTime == 0 {
		c.RunTime = 10 * time.Second
	}
	if c.ProgressSteps <= 0 {
		c.ProgressSteps = 5
	}
	if c.MetricsEvery <= 0 {
		c.MetricsEvery = 1
	}
	if c.Nodes <= 0 {
		c.Nodes = 16
	}
	return c
}

// plan is what the executor will do with one job, fixed by the seed and the
// job ID before it starts.
type plan struct {
	queueWait time.Duration // simulated
	runTime   time.Duration // simulated, to completion or failure
	failAt    int           // progress step at which it fails; 0: completes
	failClass eventmodels.ErrorClass
	node      string
	memPeakMB int64
}

func (c SimConfig) planFor(jobID string, spec eventmodels.JobSpec) plan {
	h := fnv.New64a()
	_, _ = h.Write([]byte(jobID))
	rng := rand.New(rand.NewPCG(c.Seed, h.Sum64()))
	jitter := func(mean time.Duration) time.Duration {
		return time.Duration(float64(mean) * (0.5 + rng.Float64())) // 0.5–1.5 × mean
	}
	p := plan{
		queueWait: jitter(c.QueueDelay),
		runTime:   jitter(c.RunTime),
		node:      fmt.Sprintf("hpc-node-%02d", 1+rng.IntN(c.Nodes)),
		memPeakMB: max(spec.Resources.MemoryMB/2+rng.Int64N(max(spec.Resources.MemoryMB/2, 1)), 1),
	}
	if rng.Float64() < c.FailureRatio {
		p.failAt = 1 + rng.IntN(c.ProgressSteps)
		classes := []eventmodels.ErrorClass{eventmodels.ErrorOutOfMemory, eventmodels.ErrorTimeout, eventmodels.ErrorUser, eventmodels.ErrorInfrastructure}
		p.failClass = classes[rng.IntN(len(classes))]
	}
	return p
}

// wall converts simulated time to the wall time to wait.
func (c SimConfig) wall(d time.Duration) time.Duration {
	if c.Speed <= 0 {
		return 0
	}
	return time.Duration(float64(d) / c.Speed)
}

// usage is the resource use after the given simulated run time.
func usageAt(spec eventmodels.JobSpec, p plan, ran time.Duration, progress float64) eventmodels.Usage {
	hours := ran.Hours()
	return eventmodels.Usage{
		CPUHours:     round3(hours * float64(spec.Resources.CPUCores)),
		GPUHours:     round3(hours * float64(spec.Resources.GPUs)),
		MemoryPeakMB: int64(float64(p.memPeakMB) * (0.5 + progress/200)),
		RuntimeMS:    ran.Milliseconds(),
		QueueWaitMS:  p.queueWait.Milliseconds(),
		Progress:     progress,
	}
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
