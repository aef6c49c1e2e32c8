// Package dashboard is the live job dashboard of the reference system: an
// HTML page that shows every job's state, progress and duration and updates
// in real time over a WebSocket, with a form that submits jobs to the
// orchestrator and toasts for the notifications pushed to browsers.
//
// The Dashboard keeps the state of every job it has seen, built from the
// lifecycle events of the real-time path (Subscribe: an ephemeral
// subscription on RabbitMQ or the in-memory bus; or Observe, fed directly).
// Handler serves:
//
//	GET  /            the page (HTML, CSS and JavaScript embedded with go:embed; no build step)
//	GET  /ws          the WebSocket: a snapshot of every job, then coalesced updates
//	     /api/...     the orchestrator's API (Config.JobsAPI), for the form and re-syncs
//	GET  /healthz     200 "ok"
//
// The page reconnects by itself with backoff when the connection drops, and
// re-syncs on every connect: the server's snapshot replaces its state, and
// GET /api/jobs fills in jobs the dashboard did not see (it started late).
//
// The WebSocket accepts only pages of its own origin. The /api/ routes are
// the orchestrator's, unauthenticated as that API is: put the dashboard
// behind the same access control as the orchestrator.
//
// State is monotonic per job: a status never moves back (submitted, queued,
// running, then a terminal one, which is final), progress only grows, so
// redelivered or reordered events cannot make the view regress.
package dashboard
