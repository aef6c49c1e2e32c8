package testkit

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/google/uuid"
)

// JobMetricsBuilder builds a *eventmodels.JobMetrics. Make one with
// Builder.JobMetrics.
type JobMetricsBuilder struct{ e eventmodels.JobMetrics }

// JobMetrics starts a valid job.metrics event of a new job ID with a random
// project, usage and node.
func (b *Builder) JobMetrics() *JobMetricsBuilder {
	d, done := b.next(eventmodels.TypeJobMetrics, eventmodels.JobMetricsSchemaVersion)
	defer done()
	return &JobMetricsBuilder{eventmodels.JobMetrics{
		Base: d.base, JobID: b.newJobIDLocked(), ProjectID: pick(d.r, projects),
		Usage: randomUsage(d.r, round2(d.r.Float64()*eventmodels.MaxProgress)), Node: pick(d.r, nodes),
	}}
}

func cloneJobMetrics(e *eventmodels.JobMetrics) *eventmodels.JobMetrics { c := *e; return &c }

// WithJobID sets job_id, the event's key.
func (x *JobMetricsBuilder) WithJobID(id string) *JobMetricsBuilder { x.e.JobID = id; return x }

// WithProjectID sets project_id.
func (x *JobMetricsBuilder) WithProjectID(id string) *JobMetricsBuilder { x.e.ProjectID = id; return x }

// WithUsage sets usage.
func (x *JobMetricsBuilder) WithUsage(u eventmodels.Usage) *JobMetricsBuilder {
	x.e.Usage = u
	return x
}

// WithProgress sets usage.progress (valid: 0–100).
func (x *JobMetricsBuilder) WithProgress(p float64) *JobMetricsBuilder {
	x.e.Usage.Progress = p
	return x
}

// WithNode sets node.
func (x *JobMetricsBuilder) WithNode(node string) *JobMetricsBuilder { x.e.Node = node; return x }

// WithUser sets the envelope's user_id, who initiated the event.
func (x *JobMetricsBuilder) WithUser(userID string) *JobMetricsBuilder { x.e.UserID = userID; return x }

// WithCorrelationID sets the envelope's correlation_id, e.g. to tie the
// event to others of one job.
func (x *JobMetricsBuilder) WithCorrelationID(id uuid.UUID) *JobMetricsBuilder {
	x.e.CorrelationID = id
	return x
}

// WithEventID sets the envelope's event_id, e.g. to build a duplicate.
func (x *JobMetricsBuilder) WithEventID(id uuid.UUID) *JobMetricsBuilder { x.e.EventID = id; return x }

// At sets the envelope's timestamp, cut to UTC milliseconds.
func (x *JobMetricsBuilder) At(t time.Time) *JobMetricsBuilder {
	x.e.Timestamp = eventmodels.NormalizeTime(t)
	return x
}

// With calls fn on the event being built: the escape hatch for any field,
// including invalid values for validation tests. A nil fn does nothing.
func (x *JobMetricsBuilder) With(fn func(*eventmodels.JobMetrics)) *JobMetricsBuilder {
	if fn != nil {
		fn(&x.e)
	}
	return x
}

// Build returns a copy of the event as set so far, valid unless a setter
// made it invalid. Build does not validate and never panics; each call
// returns a new copy (with the same event ID).
func (x *JobMetricsBuilder) Build() *eventmodels.JobMetrics { return cloneJobMetrics(&x.e) }

// BuildValid returns Build() and the result of its Validate.
func (x *JobMetricsBuilder) BuildValid() (*eventmodels.JobMetrics, error) {
	return buildValid(x.Build())
}

// MustBuild returns Build(), failing t with the validation error if the
// event is invalid.
func (x *JobMetricsBuilder) MustBuild(t testing.TB) *eventmodels.JobMetrics {
	t.Helper()
	return mustBuild(t, x.Build())
}

// NotificationBuilder builds a *eventmodels.Notification. Make one with
// Builder.Notification.
type NotificationBuilder struct{ e eventmodels.Notification }

// Notification starts a valid notification about a new job ID: the user's
// address as recipient, a random channel and severity, category
// "job.completed", a title and a message.
func (b *Builder) Notification() *NotificationBuilder {
	d, done := b.next(eventmodels.TypeNotification, eventmodels.NotificationSchemaVersion)
	defer done()
	job := b.newJobIDLocked()
	return &NotificationBuilder{eventmodels.Notification{
		Base: d.base, Recipient: d.base.UserID + "@example.org",
		Channel: pick(d.r, channels), Severity: pick(d.r, severities), Category: "job.completed",
		Title: "Job " + job + " completed", Message: fmt.Sprintf("Your job finished in %dm; results are ready.", 1+d.r.IntN(240)),
		JobID: job,
	}}
}

func cloneNotification(e *eventmodels.Notification) *eventmodels.Notification { c := *e; return &c }

// WithRecipient sets recipient (the key when job_id is empty).
func (x *NotificationBuilder) WithRecipient(r string) *NotificationBuilder {
	x.e.Recipient = r
	return x
}

// WithChannel sets channel.
func (x *NotificationBuilder) WithChannel(c eventmodels.Channel) *NotificationBuilder {
	x.e.Channel = c
	return x
}

// WithSeverity sets severity.
func (x *NotificationBuilder) WithSeverity(s eventmodels.Severity) *NotificationBuilder {
	x.e.Severity = s
	return x
}

// WithCategory sets category, e.g. "alert.consumer_lag".
func (x *NotificationBuilder) WithCategory(c string) *NotificationBuilder { x.e.Category = c; return x }

// WithTitle sets title (valid: not empty).
func (x *NotificationBuilder) WithTitle(t string) *NotificationBuilder { x.e.Title = t; return x }

// WithMessage sets message.
func (x *NotificationBuilder) WithMessage(m string) *NotificationBuilder { x.e.Message = m; return x }

// WithJobID sets job_id, the event's key when not empty; "" makes the
// recipient the key.
func (x *NotificationBuilder) WithJobID(id string) *NotificationBuilder { x.e.JobID = id; return x }

// WithUser sets the envelope's user_id, who initiated the event.
func (x *NotificationBuilder) WithUser(userID string) *NotificationBuilder {
	x.e.UserID = userID
	return x
}

// WithCorrelationID sets the envelope's correlation_id, e.g. to tie the
// event to others of one job.
func (x *NotificationBuilder) WithCorrelationID(id uuid.UUID) *NotificationBuilder {
	x.e.CorrelationID = id
	return x
}

// WithEventID sets the envelope's event_id, e.g. to build a duplicate.
func (x *NotificationBuilder) WithEventID(id uuid.UUID) *NotificationBuilder {
	x.e.EventID = id
	return x
}

// At sets the envelope's timestamp, cut to UTC milliseconds.
func (x *NotificationBuilder) At(t time.Time) *NotificationBuilder {
	x.e.Timestamp = eventmodels.NormalizeTime(t)
	return x
}

// With calls fn on the event being built: the escape hatch for any field,
// including invalid values for validation tests. A nil fn does nothing.
func (x *NotificationBuilder) With(fn func(*eventmodels.Notification)) *NotificationBuilder {
	if fn != nil {
		fn(&x.e)
	}
	return x
}

// Build returns a copy of the event as set so far, valid unless a setter
// made it invalid. Build does not validate and never panics; each call
// returns a new copy (with the same event ID).
func (x *NotificationBuilder) Build() *eventmodels.Notification { return cloneNotification(&x.e) }

// BuildValid returns Build() and the result of its Validate.
func (x *NotificationBuilder) BuildValid() (*eventmodels.Notification, error) {
	return buildValid(x.Build())
}

// MustBuild returns Build(), failing t with the validation error if the
// event is invalid.
func (x *NotificationBuilder) MustBuild(t testing.TB) *eventmodels.Notification {
	t.Helper()
	return mustBuild(t, x.Build())
}

// AuditBuilder builds a *eventmodels.Audit. Make one with Builder.Audit.
type AuditBuilder struct{ e eventmodels.Audit }

// Audit starts a valid audit event: the user as actor, a random action on
// a new job ID, outcome success (one in five: failure or denied), and
// random details.
func (b *Builder) Audit() *AuditBuilder {
	d, done := b.next(eventmodels.TypeAudit, eventmodels.AuditSchemaVersion)
	defer done()
	outcome := eventmodels.OutcomeSuccess
	if d.r.IntN(5) == 0 {
		outcome = pick(d.r, []eventmodels.Outcome{eventmodels.OutcomeFailure, eventmodels.OutcomeDenied})
	}
	return &AuditBuilder{eventmodels.Audit{
		Base: d.base, Actor: d.base.UserID, Action: pick(d.r, actions),
		Resource: eventmodels.Resource{Type: "job", ID: b.newJobIDLocked()}, Outcome: outcome,
		Details: randomLabels(d.r, []string{"ip", "client", "reason"}, []string{"10.1.2.3", "cli/2.1", "web/5.0", "quota"}, 2),
	}}
}

func cloneAudit(e *eventmodels.Audit) *eventmodels.Audit {
	c := *e
	c.Details = slices.Clone(e.Details)
	return &c
}

// WithActor sets actor (by default the user).
func (x *AuditBuilder) WithActor(actor string) *AuditBuilder { x.e.Actor = actor; return x }

// WithAction sets action, e.g. "job.cancel".
func (x *AuditBuilder) WithAction(action string) *AuditBuilder { x.e.Action = action; return x }

// WithResource sets resource; its ID is the event's key.
func (x *AuditBuilder) WithResource(typ, id string) *AuditBuilder {
	x.e.Resource = eventmodels.Resource{Type: typ, ID: id}
	return x
}

// WithOutcome sets outcome.
func (x *AuditBuilder) WithOutcome(o eventmodels.Outcome) *AuditBuilder { x.e.Outcome = o; return x }

// WithDetail sets one detail, keeping details sorted by key.
func (x *AuditBuilder) WithDetail(key, value string) *AuditBuilder {
	x.e.Details = setLabel(x.e.Details, key, value)
	return x
}

// WithUser sets the envelope's user_id, who initiated the event. Actor
// follows it unless it was set to another value.
func (x *AuditBuilder) WithUser(userID string) *AuditBuilder {
	if x.e.Actor == x.e.UserID {
		x.e.Actor = userID
	}
	x.e.UserID = userID
	return x
}

// WithCorrelationID sets the envelope's correlation_id, e.g. to tie the
// event to others of one job.
func (x *AuditBuilder) WithCorrelationID(id uuid.UUID) *AuditBuilder {
	x.e.CorrelationID = id
	return x
}

// WithEventID sets the envelope's event_id, e.g. to build a duplicate.
func (x *AuditBuilder) WithEventID(id uuid.UUID) *AuditBuilder { x.e.EventID = id; return x }

// At sets the envelope's timestamp, cut to UTC milliseconds.
func (x *AuditBuilder) At(t time.Time) *AuditBuilder {
	x.e.Timestamp = eventmodels.NormalizeTime(t)
	return x
}

// With calls fn on the event being built: the escape hatch for any field,
// including invalid values for validation tests. A nil fn does nothing.
func (x *AuditBuilder) With(fn func(*eventmodels.Audit)) *AuditBuilder {
	if fn != nil {
		fn(&x.e)
	}
	return x
}

// Build returns a copy of the event as set so far, valid unless a setter
// made it invalid. Build does not validate and never panics; each call
// returns a new copy (with the same event ID).
func (x *AuditBuilder) Build() *eventmodels.Audit { return cloneAudit(&x.e) }

// BuildValid returns Build() and the result of its Validate.
func (x *AuditBuilder) BuildValid() (*eventmodels.Audit, error) { return buildValid(x.Build()) }

// MustBuild returns Build(), failing t with the validation error if the
// event is invalid.
func (x *AuditBuilder) MustBuild(t testing.TB) *eventmodels.Audit {
	t.Helper()
	return mustBuild(t, x.Build())
}

// SystemHealthBuilder builds a *eventmodels.SystemHealth. Make one with
// Builder.SystemHealth.
type SystemHealthBuilder struct{ e eventmodels.SystemHealth }

// SystemHealth starts a valid system.health event: a random component,
// status, latency and one to three checks.
func (b *Builder) SystemHealth() *SystemHealthBuilder {
	d, done := b.next(eventmodels.TypeSystemHealth, eventmodels.SystemHealthSchemaVersion)
	defer done()
	return &SystemHealthBuilder{eventmodels.SystemHealth{
		Base: d.base, Component: pick(d.r, components), Status: pick(d.r, healths),
		LatencyMS: round2(d.r.Float64() * 50), Checks: randomChecks(d.r),
	}}
}

func cloneSystemHealth(e *eventmodels.SystemHealth) *eventmodels.SystemHealth {
	c := *e
	c.Checks = slices.Clone(e.Checks)
	return &c
}

// WithComponent sets component, the event's key.
func (x *SystemHealthBuilder) WithComponent(c string) *SystemHealthBuilder {
	x.e.Component = c
	return x
}

// WithStatus sets status.
func (x *SystemHealthBuilder) WithStatus(s eventmodels.HealthStatus) *SystemHealthBuilder {
	x.e.Status = s
	return x
}

// WithLatencyMS sets latency_ms (valid: ≥ 0).
func (x *SystemHealthBuilder) WithLatencyMS(ms float64) *SystemHealthBuilder {
	x.e.LatencyMS = ms
	return x
}

// WithChecks replaces checks (the slice is copied); none is valid.
func (x *SystemHealthBuilder) WithChecks(checks ...eventmodels.HealthCheck) *SystemHealthBuilder {
	x.e.Checks = slices.Clone(checks)
	return x
}

// AddCheck appends one check.
func (x *SystemHealthBuilder) AddCheck(c eventmodels.HealthCheck) *SystemHealthBuilder {
	x.e.Checks = append(slices.Clip(x.e.Checks), c)
	return x
}

// WithUser sets the envelope's user_id, who initiated the event.
func (x *SystemHealthBuilder) WithUser(userID string) *SystemHealthBuilder {
	x.e.UserID = userID
	return x
}

// WithCorrelationID sets the envelope's correlation_id, e.g. to tie the
// event to others of one job.
func (x *SystemHealthBuilder) WithCorrelationID(id uuid.UUID) *SystemHealthBuilder {
	x.e.CorrelationID = id
	return x
}

// WithEventID sets the envelope's event_id, e.g. to build a duplicate.
func (x *SystemHealthBuilder) WithEventID(id uuid.UUID) *SystemHealthBuilder {
	x.e.EventID = id
	return x
}

// At sets the envelope's timestamp, cut to UTC milliseconds.
func (x *SystemHealthBuilder) At(t time.Time) *SystemHealthBuilder {
	x.e.Timestamp = eventmodels.NormalizeTime(t)
	return x
}

// With calls fn on the event being built: the escape hatch for any field,
// including invalid values for validation tests. A nil fn does nothing.
func (x *SystemHealthBuilder) With(fn func(*eventmodels.SystemHealth)) *SystemHealthBuilder {
	if fn != nil {
		fn(&x.e)
	}
	return x
}

// Build returns a copy of the event as set so far, valid unless a setter
// made it invalid. Build does not validate and never panics; each call
// returns a new copy (with the same event ID).
func (x *SystemHealthBuilder) Build() *eventmodels.SystemHealth { return cloneSystemHealth(&x.e) }

// BuildValid returns Build() and the result of its Validate.
func (x *SystemHealthBuilder) BuildValid() (*eventmodels.SystemHealth, error) {
	return buildValid(x.Build())
}

// MustBuild returns Build(), failing t with the validation error if the
// event is invalid.
func (x *SystemHealthBuilder) MustBuild(t testing.TB) *eventmodels.SystemHealth {
	t.Helper()
	return mustBuild(t, x.Build())
}
