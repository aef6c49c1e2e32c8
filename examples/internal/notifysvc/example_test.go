package notifysvc_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/google/uuid"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/notifysvc"
)

// A failed job notifies its user through the log channel; handling the
// same job event again (a redelivery) notifies nobody.
func Example() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "notification_id" || a.Key == "correlation_id" {
				return slog.Attr{}
			}
			return a
		},
	}))
	prefs, err := notifysvc.ParsePreferences([]byte(`{"default": {"events": ["job.failed"], "channels": ["log"]}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	svc, err := notifysvc.New(notifysvc.Config{Preferences: prefs,
		Channels: []notifysvc.Channel{notifysvc.NewLogChannel(logger)}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Close()

	ev := eventmodels.NewJobFailed("ann", "job-000042", eventmodels.StatusRunning, eventmodels.ErrorOutOfMemory, "killed by the OOM killer",
		eventmodels.WithEventID(uuid.MustParse("0190f5a4-0000-7000-8000-000000000001")))
	ev.RuntimeMS = 90_000
	for range 2 {
		_ = svc.Notify(context.Background(), ev)
	}
	st := svc.Stats()
	fmt.Println("delivered:", st.Delivered[eventmodels.ChannelLog], "duplicates:", st.Duplicates[eventmodels.ChannelLog])
	// Output:
	// level=INFO msg="Job job-000042 failed" recipient=ann category=job.failed job_id=job-000042 severity=error message="Failed while running after 1m30s: killed by the OOM killer (out_of_memory, exit code 0)."
	// delivered: 1 duplicates: 1
}
