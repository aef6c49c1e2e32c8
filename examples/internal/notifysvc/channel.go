package notifysvc

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/eventmodels"
)

// Channel delivers notifications one way (a webhook, a log, browsers).
//
// Deliver is called from many goroutines at once and must be safe for
// concurrent use. It returns nil once the notification was delivered; an
// error matching ErrDeadLettered when it could not be delivered and was
// parked in a dead letter instead (the service counts it and does not try
// again); any other error when it could not be delivered now: the service
// fails the job event, whose subscription retries it (the channels that
// already succeeded are not called again). Deliver must honour ctx: it is
// cancelled when the subscription stops, and a delivery abandoned that way
// is retried after the restart, never dead-lettered.
//
// A Channel that holds resources may implement io.Closer; Service.Close
// closes it.
type Channel interface {
	// Name is the channel kind, the Notification.Channel of what it
	// delivers; one Service holds at most one Channel per name.
	Name() eventmodels.Channel
	// Deliver delivers n (see the interface's contract).
	Deliver(ctx context.Context, n *eventmodels.Notification) error
}

// ErrDeadLettered is matched (errors.Is) by the error of a Channel that gave
// a notification up after its last attempt and parked it in a dead letter.
var ErrDeadLettered = errors.New("notifysvc: notification dead-lettered")

// LogChannel writes each notification as one structured log record. A
// notification about a user's job (category "job.…") is news for its
// recipient, not a fault of this service: it is logged at Info whatever its
// severity (a failed job is Error for its owner), with the severity as an
// attribute. Other notifications (health alerts) log at Info for info,
// Warn for warning, Error for error and critical. It never fails.
type LogChannel struct {
	log *slog.Logger
}

// NewLogChannel returns a LogChannel writing to logger (nil: discard).
func NewLogChannel(logger *slog.Logger) *LogChannel {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &LogChannel{log: logger}
}

// Name returns eventmodels.ChannelLog.
func (*LogChannel) Name() eventmodels.Channel { return eventmodels.ChannelLog }

// Deliver logs n.
func (c *LogChannel) Deliver(ctx context.Context, n *eventmodels.Notification) error {
	level := slog.LevelInfo
	switch {
	case strings.HasPrefix(n.Category, "job."):
	case n.Severity == eventmodels.SeverityWarning:
		level = slog.LevelWarn
	case n.Severity == eventmodels.SeverityError, n.Severity == eventmodels.SeverityCritical:
		level = slog.LevelError
	}
	c.log.Log(ctx, level, n.Title,
		"notification_id", n.EventID.String(), "recipient", n.Recipient, "category", n.Category,
		"job_id", n.JobID, "severity", string(n.Severity), "message", n.Message,
		"correlation_id", n.CorrelationID.String())
	return nil
}

// Pusher pushes a notification to the browsers watching a live view. The
// dashboard (package dashboard) implements it in process; BusPusher
// implements it over the real-time bus for a dashboard in another process.
type Pusher interface {
	PushNotification(ctx context.Context, n *eventmodels.Notification) error
}

// BrowserChannel delivers notifications as live pushes to browsers through
// a Pusher. Delivered means handed to the Pusher: a browser that is not
// connected at that moment does not see it (the dashboard shows job state,
// which it re-syncs, not a notification inbox).
type BrowserChannel struct {
	push Pusher
}

// NewBrowserChannel returns a BrowserChannel pushing through p.
func NewBrowserChannel(p Pusher) *BrowserChannel { return &BrowserChannel{push: p} }

// Name returns eventmodels.ChannelPush.
func (*BrowserChannel) Name() eventmodels.Channel { return eventmodels.ChannelPush }

// Deliver pushes n.
func (c *BrowserChannel) Deliver(ctx context.Context, n *eventmodels.Notification) error {
	if c.push == nil {
		return errors.New("notifysvc: BrowserChannel has no Pusher")
	}
	return c.push.PushNotification(ctx, n)
}

// BusPusher is a Pusher that publishes notifications on a bus — the
// real-time bus, to which a dashboard in another process subscribes (its
// Subscribe consumes the notifications topic there too).
type BusPusher struct {
	Bus *events.Bus
}

// PushNotification publishes n on the bus.
func (p BusPusher) PushNotification(ctx context.Context, n *eventmodels.Notification) error {
	if p.Bus == nil {
		return errors.New("notifysvc: BusPusher has no Bus")
	}
	return p.Bus.Publish(ctx, n)
}
