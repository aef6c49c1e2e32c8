// Package notifysvc is the NotificationService of the reference system. It
// consumes job-lifecycle and, when a job completes, fails or is cancelled,
// tells the job's user through the channels the user chose: for each
// (terminal event, channel) it emits a notification event to the
// notifications topic and delivers it through that Channel.
//
// Channels are pluggable (the Channel interface). Three come with the
// package: WebhookChannel (HTTP POST with retries, exponential backoff and a
// dead letter to "notifications.dlq" after the last attempt), LogChannel
// (slog) and BrowserChannel (live push to the dashboard's browsers, in
// process or over the real-time bus). Which events reach which channels is
// set per user by Preferences, read from a small JSON file by
// LoadPreferences.
//
// Delivery is at-least-once underneath (the durable subscription may hand a
// job event over more than once: a retry, a rebalance, a restart), but each
// notification is delivered once per channel: every (channel, triggering
// event_id) pair is claimed in a broker.DedupeStore before delivery and
// recorded only after the channel succeeded or dead-lettered it, so a
// redelivered job event is skipped by every channel that already handled
// it, and a channel that failed is tried again. The notification event's
// own ID is derived from the same pair (a name-based UUID), so even a
// notification emitted twice (a crash between emitting and recording)
// carries one event_id that downstream consumers de-duplicate on.
//
// A notification is emitted to the notifications topic before it is
// delivered, and a failed emit fails the job event (retried by the
// subscription): nothing reaches a user that is not on the durable record.
package notifysvc
