package eventmodels

import "fmt"

// Event types of the notifications, audit-trail and system-health topics.
const (
	TypeNotification = "notification"
	TypeAudit        = "audit"
	TypeSystemHealth = "system.health"
)

// Channel is how a notification reaches its recipient.
type Channel string

// The notification channels.
const (
	ChannelLog     Channel = "log"
	ChannelEmail   Channel = "email"
	ChannelWebhook Channel = "webhook"
	ChannelPush    Channel = "push" // live push to browsers
	ChannelSMS     Channel = "sms"
)

// Valid reports whether c is a defined channel.
func (c Channel) Valid() bool {
	switch c {
	case ChannelLog, ChannelEmail, ChannelWebhook, ChannelPush, ChannelSMS:
		return true
	}
	return false
}

// Severity ranks notifications and alerts.
type Severity string

// The severities, lowest first.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityError    Severity = "error"
	SeverityCritical Severity = "critical"
)

// Valid reports whether s is a defined severity.
func (s Severity) Valid() bool {
	switch s {
	case SeverityInfo, SeverityWarning, SeverityError, SeverityCritical:
		return true
	}
	return false
}

// Notification is a message for a person or system: a job finished, an alert
// fired or cleared.
type Notification struct {
	Base
	Recipient string   `json:"recipient" avro:"recipient"`
	Channel   Channel  `json:"channel" avro:"channel"`
	Severity  Severity `json:"severity" avro:"severity"`
	// Category groups notifications, e.g. "job.completed" or "alert.consumer_lag".
	Category string `json:"category" avro:"category"`
	Title    string `json:"title" avro:"title"`
	Message  string `json:"message" avro:"message"`
	// JobID is set when the notification is about a job.
	JobID string `json:"job_id,omitempty" avro:"job_id"`
}

// NewNotification returns a notification event.
func NewNotification(userID, recipient string, channel Channel, severity Severity, title, message string, opts ...Option) *Notification {
	return &Notification{
		Base:      newBase(TypeNotification, NotificationSchemaVersion, userID, opts),
		Recipient: recipient, Channel: channel, Severity: severity, Title: title, Message: message,
	}
}

// Key returns the job ID when set, else the recipient, so notifications of a
// job stay in order.
func (e *Notification) Key() string {
	if e.JobID != "" {
		return e.JobID
	}
	return e.Recipient
}

// Validate reports every broken rule.
func (e *Notification) Validate() error {
	return check(&e.Base, TypeNotification, func(v *validator) {
		v.required("recipient", e.Recipient)
		v.ident("recipient", e.Recipient, maxNameLength)
		if !e.Channel.Valid() {
			v.add("channel", fmt.Sprintf("unknown channel %q", e.Channel))
		}
		if !e.Severity.Valid() {
			v.add("severity", fmt.Sprintf("unknown severity %q", e.Severity))
		}
		v.ident("category", e.Category, maxNameLength)
		v.required("title", e.Title)
		v.text("title", e.Title, maxNameLength)
		v.text("message", e.Message, MaxTextLength)
		v.ident("job_id", e.JobID, MaxIDLength)
	})
}

// Outcome is the result of an audited action.
type Outcome string

// The audit outcomes.
const (
	OutcomeSuccess Outcome = "success"
	OutcomeFailure Outcome = "failure"
	OutcomeDenied  Outcome = "denied"
)

// Valid reports whether o is a defined outcome.
func (o Outcome) Valid() bool {
	return o == OutcomeSuccess || o == OutcomeFailure || o == OutcomeDenied
}

// Resource names what an audited action touched.
type Resource struct {
	Type string `json:"type" avro:"type"`
	ID   string `json:"id" avro:"id"`
}

// Audit records who did what to which resource, and how it ended.
type Audit struct {
	Base
	Actor    string   `json:"actor" avro:"actor"`
	Action   string   `json:"action" avro:"action"`
	Resource Resource `json:"resource" avro:"resource"`
	Outcome  Outcome  `json:"outcome" avro:"outcome"`
	Details  Labels   `json:"details,omitempty" avro:"details"`
}

// NewAudit returns an audit event; the actor defaults to userID.
func NewAudit(userID, action string, resource Resource, outcome Outcome, opts ...Option) *Audit {
	return &Audit{Base: newBase(TypeAudit, AuditSchemaVersion, userID, opts), Actor: userID, Action: action, Resource: resource, Outcome: outcome}
}

// Key returns the resource ID, so the trail of one resource stays in order.
func (e *Audit) Key() string { return e.Resource.ID }

// Validate reports every broken rule.
func (e *Audit) Validate() error {
	return check(&e.Base, TypeAudit, func(v *validator) {
		v.required("actor", e.Actor)
		v.ident("actor", e.Actor, MaxIDLength)
		v.required("action", e.Action)
		v.ident("action", e.Action, maxNameLength)
		v.required("resource.type", e.Resource.Type)
		v.ident("resource.type", e.Resource.Type, maxNameLength)
		v.required("resource.id", e.Resource.ID)
		v.ident("resource.id", e.Resource.ID, MaxIDLength)
		if !e.Outcome.Valid() {
			v.add("outcome", fmt.Sprintf("unknown outcome %q", e.Outcome))
		}
		e.Details.validate(v, "details", maxDetailEntries)
	})
}

// HealthStatus is the state of a component or of one check.
type HealthStatus string

// The health statuses.
const (
	HealthHealthy   HealthStatus = "healthy"
	HealthDegraded  HealthStatus = "degraded"
	HealthUnhealthy HealthStatus = "unhealthy"
	HealthUnknown   HealthStatus = "unknown"
)

// Valid reports whether s is a defined status.
func (s HealthStatus) Valid() bool {
	switch s {
	case HealthHealthy, HealthDegraded, HealthUnhealthy, HealthUnknown:
		return true
	}
	return false
}

// HealthCheck is one probe of a component (broker reachable, lag of a group, …).
type HealthCheck struct {
	Name    string       `json:"name" avro:"name"`
	Status  HealthStatus `json:"status" avro:"status"`
	Message string       `json:"message,omitempty" avro:"message"`
	// Value is the measured figure, e.g. lag in messages or latency in ms.
	Value float64 `json:"value" avro:"value"`
}

// SystemHealth reports the state of a component of the platform.
type SystemHealth struct {
	Base
	Component string        `json:"component" avro:"component"`
	Status    HealthStatus  `json:"status" avro:"status"`
	LatencyMS float64       `json:"latency_ms" avro:"latency_ms"`
	Checks    []HealthCheck `json:"checks" avro:"checks"`
}

// NewSystemHealth returns a system.health event.
func NewSystemHealth(userID, component string, status HealthStatus, latencyMS float64, checks []HealthCheck, opts ...Option) *SystemHealth {
	return &SystemHealth{Base: newBase(TypeSystemHealth, SystemHealthSchemaVersion, userID, opts), Component: component, Status: status, LatencyMS: latencyMS, Checks: checks}
}

// Key returns the component.
func (e *SystemHealth) Key() string { return e.Component }

// Validate reports every broken rule.
func (e *SystemHealth) Validate() error {
	return check(&e.Base, TypeSystemHealth, func(v *validator) {
		v.required("component", e.Component)
		v.ident("component", e.Component, maxNameLength)
		if !e.Status.Valid() {
			v.add("status", fmt.Sprintf("unknown status %q", e.Status))
		}
		v.nonNegative("latency_ms", e.LatencyMS)
		if len(e.Checks) > maxHealthChecks {
			v.add("checks", fmt.Sprintf("must have at most %d entries", maxHealthChecks))
		}
		for i, c := range e.Checks {
			// Field names are formatted only for a broken rule.
			field := func(name string) string { return fmt.Sprintf("checks[%d].%s", i, name) }
			if c.Name == "" {
				v.add(field("name"), "must not be empty")
			} else if p := identProblem(c.Name); p != "" {
				v.add(field("name"), p)
			}
			if p := textProblem(c.Message); p != "" {
				v.add(field("message"), p)
			}
			if !c.Status.Valid() {
				v.add(field("status"), fmt.Sprintf("unknown status %q", c.Status))
			}
			if !isFinite(c.Value) {
				v.add(field("value"), "must be a finite number")
			}
		}
	})
}
