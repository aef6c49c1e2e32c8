package eventmodels

import (
	"fmt"
	"math"
)

// Event types of the job lifecycle (topic job-lifecycle) and job metrics
// (topic job-metrics).
const (
	TypeJobSubmitted     = "job.submitted"
	TypeJobQueued        = "job.queued"
	TypeJobStatusChanged = "job.status_changed"
	TypeJobCompleted     = "job.completed"
	TypeJobFailed        = "job.failed"
	TypeJobCancelled     = "job.cancelled"
	TypeJobMetrics       = "job.metrics"
)

// Current payload schema versions, written into Base.SchemaVersion by the
// constructors. The Avro files in package schemas carry the same versions.
const (
	JobLifecycleSchemaVersion = 1
	JobMetricsSchemaVersion   = 2
	NotificationSchemaVersion = 1
	AuditSchemaVersion        = 1
	SystemHealthSchemaVersion = 1
)

// Limits applied by Validate.
const (
	MaxIDLength      = 128  // job, project, user, resource IDs
	MaxTextLength    = 4096 // messages and free text
	MaxPriority      = 10
	MaxProgress      = 100.0
	maxNameLength    = 256
	maxParameters    = 64
	maxHealthChecks  = 64
	maxDetailEntries = 64
)

// Numeric limits applied by Validate: an event carries only values both of
// its encodings write exactly, so the Avro and the JSON form of an event
// never disagree.
const (
	// MaxWireInt is the largest value of a field the Avro schemas declare
	// int (32 bits): schema_version, priority, cpu_cores, gpus, position,
	// exit_code. The Go fields are int, which holds more; Validate refuses
	// the rest. The smallest such value is MinWireInt.
	MaxWireInt = math.MaxInt32
	// MinWireInt is the smallest value of an Avro int field.
	MinWireInt = math.MinInt32
	// MaxWireLong is the largest value of a field the Avro schemas declare
	// long (memory_mb, walltime_seconds, estimated_wait_ms, runtime_ms,
	// memory_peak_mb, queue_wait_ms): 2^53−1, the largest integer a JSON
	// reader that holds numbers as IEEE doubles (a browser: the dashboard)
	// reads exactly.
	MaxWireLong = 1<<53 - 1
)

// Resources is what a job asks of the cluster. Validate bounds each field
// by what the wire carries; a service granting resources applies its own,
// tighter limits.
type Resources struct {
	// CPUCores is 1 to MaxWireInt.
	CPUCores int `json:"cpu_cores" avro:"cpu_cores"`
	// GPUs is 0 to MaxWireInt.
	GPUs int `json:"gpus" avro:"gpus"`
	// MemoryMB is 1 to MaxWireLong.
	MemoryMB int64 `json:"memory_mb" avro:"memory_mb"`
	// WalltimeSeconds is 1 to MaxWireLong.
	WalltimeSeconds int64 `json:"walltime_seconds" avro:"walltime_seconds"`
}

func (r Resources) validate(v *validator) {
	v.between("cpu_cores", int64(r.CPUCores), 1, MaxWireInt)
	v.between("gpus", int64(r.GPUs), 0, MaxWireInt)
	v.between("memory_mb", r.MemoryMB, 1, MaxWireLong)
	v.between("walltime_seconds", r.WalltimeSeconds, 1, MaxWireLong)
}

// JobSpec describes a job as submitted: where it runs and what it needs. It is
// the body of a submission request and the "spec" record of JobSubmitted.
type JobSpec struct {
	ProjectID  string    `json:"project_id" avro:"project_id"`
	Telescope  string    `json:"telescope" avro:"telescope"`
	Instrument string    `json:"instrument" avro:"instrument"`
	JobName    string    `json:"job_name" avro:"job_name"`
	Queue      string    `json:"queue" avro:"queue"`
	Priority   int       `json:"priority" avro:"priority"`
	Resources  Resources `json:"resources" avro:"resources"`
	Parameters Labels    `json:"parameters,omitempty" avro:"parameters"`
}

// Validate reports every broken rule of the spec (without an envelope);
// HTTP front ends use it to check a submission before any event exists.
func (s *JobSpec) Validate() error {
	var v validator
	s.validate(&v)
	return v.result().Err()
}

func (s *JobSpec) validate(v *validator) {
	v.required("project_id", s.ProjectID)
	v.ident("project_id", s.ProjectID, MaxIDLength)
	v.required("telescope", s.Telescope)
	v.ident("telescope", s.Telescope, maxNameLength)
	v.ident("instrument", s.Instrument, maxNameLength)
	v.ident("job_name", s.JobName, maxNameLength)
	v.required("queue", s.Queue)
	v.ident("queue", s.Queue, maxNameLength)
	if s.Priority < 0 || s.Priority > MaxPriority {
		v.add("priority", fmt.Sprintf("must be between 0 and %d", MaxPriority))
	}
	v.push("resources.")
	s.Resources.validate(v)
	v.pop()
	s.Parameters.validate(v, "parameters", maxParameters)
}

func jobID(v *validator, id string) {
	v.required("job_id", id)
	v.ident("job_id", id, MaxIDLength)
}

func progress(v *validator, p float64) {
	if !(p >= 0 && p <= MaxProgress) { // also rejects NaN
		v.add("progress", "must be between 0 and 100")
	}
}

// JobSubmitted is published when a user submits a job.
type JobSubmitted struct {
	Base
	JobID string  `json:"job_id" avro:"job_id"`
	Spec  JobSpec `json:"spec" avro:"spec"`
}

// NewJobSubmitted returns a job.submitted event for spec.
func NewJobSubmitted(userID, jobID string, spec JobSpec, opts ...Option) *JobSubmitted {
	return &JobSubmitted{Base: newBase(TypeJobSubmitted, JobLifecycleSchemaVersion, userID, opts), JobID: jobID, Spec: spec}
}

// Key returns the job ID.
func (e *JobSubmitted) Key() string { return e.JobID }

// Validate reports every broken rule.
func (e *JobSubmitted) Validate() error {
	return check(&e.Base, TypeJobSubmitted, func(v *validator) {
		jobID(v, e.JobID)
		v.push("spec.")
		e.Spec.validate(v)
		v.pop()
	})
}

// JobQueued is published when the scheduler accepts a job into a queue.
type JobQueued struct {
	Base
	JobID           string `json:"job_id" avro:"job_id"`
	Queue           string `json:"queue" avro:"queue"`
	Position        int    `json:"position" avro:"position"`
	EstimatedWaitMS int64  `json:"estimated_wait_ms" avro:"estimated_wait_ms"`
}

// NewJobQueued returns a job.queued event.
func NewJobQueued(userID, jobID, queue string, position int, opts ...Option) *JobQueued {
	return &JobQueued{Base: newBase(TypeJobQueued, JobLifecycleSchemaVersion, userID, opts), JobID: jobID, Queue: queue, Position: position}
}

// Key returns the job ID.
func (e *JobQueued) Key() string { return e.JobID }

// Validate reports every broken rule.
func (e *JobQueued) Validate() error {
	return check(&e.Base, TypeJobQueued, func(v *validator) {
		jobID(v, e.JobID)
		v.required("queue", e.Queue)
		v.ident("queue", e.Queue, maxNameLength)
		v.between("position", int64(e.Position), 0, MaxWireInt)
		v.between("estimated_wait_ms", e.EstimatedWaitMS, 0, MaxWireLong)
	})
}

// JobStatusChanged is published on every move of a job between statuses and
// on progress reports while it runs (running → running).
type JobStatusChanged struct {
	Base
	JobID      string    `json:"job_id" avro:"job_id"`
	FromStatus JobStatus `json:"from_status" avro:"from_status"`
	ToStatus   JobStatus `json:"to_status" avro:"to_status"`
	// Progress is the percentage done, 0–100.
	Progress float64 `json:"progress" avro:"progress"`
	Message  string  `json:"message,omitempty" avro:"message"`
	Node     string  `json:"node,omitempty" avro:"node"`
}

// NewJobStatusChanged returns a job.status_changed event.
func NewJobStatusChanged(userID, jobID string, from, to JobStatus, progress float64, opts ...Option) *JobStatusChanged {
	return &JobStatusChanged{Base: newBase(TypeJobStatusChanged, JobLifecycleSchemaVersion, userID, opts), JobID: jobID, FromStatus: from, ToStatus: to, Progress: progress}
}

// Key returns the job ID.
func (e *JobStatusChanged) Key() string { return e.JobID }

// Validate reports every broken rule, including a transition that
// CanTransition forbids.
func (e *JobStatusChanged) Validate() error {
	return check(&e.Base, TypeJobStatusChanged, func(v *validator) {
		jobID(v, e.JobID)
		from, to := e.FromStatus.Valid(), e.ToStatus.Valid()
		if !from {
			v.add("from_status", fmt.Sprintf("unknown status %q", e.FromStatus))
		}
		if !to {
			v.add("to_status", fmt.Sprintf("unknown status %q", e.ToStatus))
		}
		if from && to && !CanTransition(e.FromStatus, e.ToStatus) {
			v.add("to_status", fmt.Sprintf("illegal transition %s → %s", e.FromStatus, e.ToStatus))
		}
		progress(v, e.Progress)
		v.text("message", e.Message, MaxTextLength)
		v.ident("node", e.Node, maxNameLength)
	})
}

// JobCompleted is published when a job finishes successfully.
type JobCompleted struct {
	Base
	JobID     string `json:"job_id" avro:"job_id"`
	ExitCode  int    `json:"exit_code" avro:"exit_code"`
	OutputURI string `json:"output_uri,omitempty" avro:"output_uri"`
	// Usage is the job's final resource use.
	Usage Usage `json:"usage" avro:"usage"`
}

// NewJobCompleted returns a job.completed event (exit code 0).
func NewJobCompleted(userID, jobID string, usage Usage, opts ...Option) *JobCompleted {
	return &JobCompleted{Base: newBase(TypeJobCompleted, JobLifecycleSchemaVersion, userID, opts), JobID: jobID, Usage: usage}
}

// Key returns the job ID.
func (e *JobCompleted) Key() string { return e.JobID }

// Validate reports every broken rule.
func (e *JobCompleted) Validate() error {
	return check(&e.Base, TypeJobCompleted, func(v *validator) {
		jobID(v, e.JobID)
		if e.ExitCode != 0 {
			v.add("exit_code", "must be 0 for a completed job")
		}
		v.ident("output_uri", e.OutputURI, MaxTextLength)
		v.push("usage.")
		e.Usage.validate(v)
		v.pop()
	})
}

// ErrorClass says why a job failed; alerting and retry policy key on it.
type ErrorClass string

// The error classes. ErrorUnknown is also what an older consumer reads for a
// class added later (the Avro enum's default).
const (
	ErrorUnknown        ErrorClass = "unknown"
	ErrorUser           ErrorClass = "user_error"
	ErrorOutOfMemory    ErrorClass = "out_of_memory"
	ErrorTimeout        ErrorClass = "timeout"
	ErrorInfrastructure ErrorClass = "infrastructure"
	ErrorRejected       ErrorClass = "rejected"
)

// Valid reports whether c is a defined class.
func (c ErrorClass) Valid() bool {
	switch c {
	case ErrorUnknown, ErrorUser, ErrorOutOfMemory, ErrorTimeout, ErrorInfrastructure, ErrorRejected:
		return true
	}
	return false
}

// JobFailed is published when a job ends in failure.
type JobFailed struct {
	Base
	JobID        string     `json:"job_id" avro:"job_id"`
	FromStatus   JobStatus  `json:"from_status" avro:"from_status"`
	ExitCode     int        `json:"exit_code" avro:"exit_code"`
	ErrorClass   ErrorClass `json:"error_class" avro:"error_class"`
	ErrorMessage string     `json:"error_message" avro:"error_message"`
	Retryable    bool       `json:"retryable" avro:"retryable"`
	RuntimeMS    int64      `json:"runtime_ms" avro:"runtime_ms"`
}

// NewJobFailed returns a job.failed event for a job that was in status from.
func NewJobFailed(userID, jobID string, from JobStatus, class ErrorClass, message string, opts ...Option) *JobFailed {
	return &JobFailed{Base: newBase(TypeJobFailed, JobLifecycleSchemaVersion, userID, opts), JobID: jobID, FromStatus: from, ErrorClass: class, ErrorMessage: message}
}

// Key returns the job ID.
func (e *JobFailed) Key() string { return e.JobID }

// Validate reports every broken rule.
func (e *JobFailed) Validate() error {
	return check(&e.Base, TypeJobFailed, func(v *validator) {
		jobID(v, e.JobID)
		terminalFrom(v, e.FromStatus, StatusFailed)
		if !e.ErrorClass.Valid() {
			v.add("error_class", fmt.Sprintf("unknown error class %q", e.ErrorClass))
		}
		v.required("error_message", e.ErrorMessage)
		v.text("error_message", e.ErrorMessage, MaxTextLength)
		v.between("exit_code", int64(e.ExitCode), MinWireInt, MaxWireInt)
		v.between("runtime_ms", e.RuntimeMS, 0, MaxWireLong)
	})
}

func terminalFrom(v *validator, from, to JobStatus) {
	if !from.Valid() {
		v.add("from_status", fmt.Sprintf("unknown status %q", from))
	} else if !CanTransition(from, to) {
		v.add("from_status", fmt.Sprintf("illegal transition %s → %s", from, to))
	}
}

// JobCancelled is published when a job is cancelled before it ended.
type JobCancelled struct {
	Base
	JobID       string    `json:"job_id" avro:"job_id"`
	FromStatus  JobStatus `json:"from_status" avro:"from_status"`
	Reason      string    `json:"reason" avro:"reason"`
	CancelledBy string    `json:"cancelled_by" avro:"cancelled_by"`
}

// NewJobCancelled returns a job.cancelled event; CancelledBy defaults to userID.
func NewJobCancelled(userID, jobID string, from JobStatus, reason string, opts ...Option) *JobCancelled {
	return &JobCancelled{Base: newBase(TypeJobCancelled, JobLifecycleSchemaVersion, userID, opts), JobID: jobID, FromStatus: from, Reason: reason, CancelledBy: userID}
}

// Key returns the job ID.
func (e *JobCancelled) Key() string { return e.JobID }

// Validate reports every broken rule.
func (e *JobCancelled) Validate() error {
	return check(&e.Base, TypeJobCancelled, func(v *validator) {
		jobID(v, e.JobID)
		terminalFrom(v, e.FromStatus, StatusCancelled)
		v.text("reason", e.Reason, MaxTextLength)
		v.required("cancelled_by", e.CancelledBy)
		v.ident("cancelled_by", e.CancelledBy, MaxIDLength)
	})
}

// Usage is the resource use of a job so far.
type Usage struct {
	CPUHours     float64 `json:"cpu_hours" avro:"cpu_hours"`
	GPUHours     float64 `json:"gpu_hours" avro:"gpu_hours"`
	MemoryPeakMB int64   `json:"memory_peak_mb" avro:"memory_peak_mb"`
	RuntimeMS    int64   `json:"runtime_ms" avro:"runtime_ms"`
	QueueWaitMS  int64   `json:"queue_wait_ms" avro:"queue_wait_ms"`
	// Progress is the percentage done, 0–100.
	Progress float64 `json:"progress" avro:"progress"`
}

func (u *Usage) validate(v *validator) {
	v.nonNegative("cpu_hours", u.CPUHours)
	v.nonNegative("gpu_hours", u.GPUHours)
	v.between("memory_peak_mb", u.MemoryPeakMB, 0, MaxWireLong)
	v.between("runtime_ms", u.RuntimeMS, 0, MaxWireLong)
	v.between("queue_wait_ms", u.QueueWaitMS, 0, MaxWireLong)
	progress(v, u.Progress)
}

// JobMetrics is published periodically while a job runs, and once at its end.
type JobMetrics struct {
	Base
	JobID     string `json:"job_id" avro:"job_id"`
	ProjectID string `json:"project_id" avro:"project_id"`
	Usage     Usage  `json:"usage" avro:"usage"`
	// Node is the compute node the job runs on (added in schema version 2).
	Node string `json:"node" avro:"node"`
}

// NewJobMetrics returns a job.metrics event.
func NewJobMetrics(userID, jobID, projectID string, usage Usage, opts ...Option) *JobMetrics {
	return &JobMetrics{Base: newBase(TypeJobMetrics, JobMetricsSchemaVersion, userID, opts), JobID: jobID, ProjectID: projectID, Usage: usage}
}

// Key returns the job ID.
func (e *JobMetrics) Key() string { return e.JobID }

// Validate reports every broken rule.
func (e *JobMetrics) Validate() error {
	return check(&e.Base, TypeJobMetrics, func(v *validator) {
		jobID(v, e.JobID)
		v.required("project_id", e.ProjectID)
		v.ident("project_id", e.ProjectID, MaxIDLength)
		v.push("usage.")
		e.Usage.validate(v)
		v.pop()
		v.ident("node", e.Node, maxNameLength)
	})
}
