package orchestrator

import (
	"fmt"

	"github.com/cosmic-horizons/events/eventmodels"
)

// The resources one job may ask for. Submit and POST /jobs refuse a spec
// outside them (a *eventmodels.ValidationError; a 400 naming the field and
// the bound), so every figure the simulated executor derives from them,
// such as CPU hours, stays finite and every event of the job valid. They
// are tighter than what the event model carries (eventmodels.MaxWireInt,
// eventmodels.MaxWireLong).
const (
	// MaxCPUCores bounds resources.cpu_cores (at least 1).
	MaxCPUCores = 4096
	// MaxGPUs bounds resources.gpus (at least 0).
	MaxGPUs = 64
	// MaxMemoryMB bounds resources.memory_mb (at least 1): 16 TiB.
	MaxMemoryMB = 16 << 20
	// MaxWalltimeSeconds bounds resources.walltime_seconds (at least 1):
	// 30 days.
	MaxWalltimeSeconds = 30 * 24 * 3600
)

// resourceBound is one resource and its allowed range.
type resourceBound struct {
	field    string
	value    int64
	min, max int64
}

func resourceBounds(r eventmodels.Resources) []resourceBound {
	return []resourceBound{
		{"cpu_cores", int64(r.CPUCores), 1, MaxCPUCores},
		{"gpus", int64(r.GPUs), 0, MaxGPUs},
		{"memory_mb", r.MemoryMB, 1, MaxMemoryMB},
		{"walltime_seconds", r.WalltimeSeconds, 1, MaxWalltimeSeconds},
	}
}

// checkResources adds to ve every resource of r outside this service's
// bounds, as prefix+field ("resources.cpu_cores" for a request body,
// "spec.resources.cpu_cores" for a job.submitted). A problem ve already
// records for such a field (the event model's wider bound) is replaced, so
// each field is reported once, with the bound that applies.
func checkResources(ve *eventmodels.ValidationError, prefix string, r eventmodels.Resources) {
	for _, b := range resourceBounds(r) {
		if b.value >= b.min && b.value <= b.max {
			continue
		}
		field := prefix + b.field
		kept := ve.Fields[:0]
		for _, f := range ve.Fields {
			if f.Field != field {
				kept = append(kept, f)
			}
		}
		ve.Fields = kept
		ve.Add(field, fmt.Sprintf("must be between %d and %d", b.min, b.max))
	}
}
