package notifysvc_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/notifysvc"
)

// TestLogChannelLevels: a failed job is news for its owner, logged at INFO
// (an operator reading the service's log at -v must not take it for a
// fault of the service); a health alert keeps its severity's level.
func TestLogChannelLevels(t *testing.T) {
	for _, tc := range []struct {
		category string
		severity eventmodels.Severity
		want     string
	}{
		{"job.failed", eventmodels.SeverityError, "level=INFO"},
		{"job.completed", eventmodels.SeverityInfo, "level=INFO"},
		{"alert.consumer_lag", eventmodels.SeverityWarning, "level=WARN"},
		{"alert.broker_down", eventmodels.SeverityCritical, "level=ERROR"},
		{"alert.broker_down.resolved", eventmodels.SeverityInfo, "level=INFO"},
	} {
		var buf bytes.Buffer
		ch := notifysvc.NewLogChannel(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
		n := &eventmodels.Notification{Category: tc.category, Severity: tc.severity, Title: "t"}
		if err := ch.Deliver(context.Background(), n); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), tc.want) {
			t.Errorf("%s (%s) logged %q, want %s", tc.category, tc.severity, buf.String(), tc.want)
		}
	}
}
