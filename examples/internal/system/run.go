package system

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
)

// ServiceCount is what one service published or consumed.
type ServiceCount struct {
	Service   string
	Published int64 // durable events it published (-1: publishes none)
	Consumed  int64 // distinct durable events it consumed (-1: consumes none)
	Expected  int64 // what it should have consumed
}

// Lost is Expected − Consumed for a consumer, else 0.
func (c ServiceCount) Lost() int64 {
	if c.Consumed < 0 {
		return 0
	}
	return max(c.Expected-c.Consumed, 0)
}

// Summary is the outcome of a run.
type Summary struct {
	Jobs        int
	JobsByState map[eventmodels.JobStatus]int
	Elapsed     time.Duration
	Published   int64 // durable events published by every service
	// Unconfirmed durable events were published without a confirmation in
	// time and not sent again: they may or may not have arrived.
	Unconfirmed int64
	Services    []ServiceCount
	Lost        int64 // sum of Lost over the services
	Duplicates  int64 // redeliveries the probe ignored
	Order       []string
	Probe       ProbeReport
	// AuditVerified is nil when the audit chain verified, else why not;
	// AuditRecords is the number of records verified.
	AuditVerified error
	AuditRecords  int
	// NotificationsEmitted to the notifications topic, NotificationsDelivered
	// per channel, NotificationDuplicates ignored under redelivery.
	NotificationsEmitted   int64
	NotificationsDelivered map[string]int64
	NotificationDuplicates int64
	// AlertsRaised and AlertsCleared by the health service.
	AlertsRaised, AlertsCleared int64
	Notes                       []string
}

// OK reports whether the run lost nothing and found nothing out of order.
func (s Summary) OK() bool {
	return s.Lost == 0 && len(s.Order) == 0 && s.AuditVerified == nil && s.Probe.Terminal == s.Jobs
}

// Run submits cfg.Jobs jobs, waits until every job is terminal and every
// consumer has caught up, and returns the summary. Progress goes to
// cfg.Progress while it runs.
func (s *System) Run(ctx context.Context) (Summary, error) {
	start := time.Now()
	stopProgress := s.progress(ctx, start)
	defer stopProgress()
	if err := s.SubmitJobs(ctx, s.cfg.Jobs, s.cfg.Rate, s.cfg.Sim.Seed); err != nil {
		return Summary{}, err
	}
	if err := s.Services.Orchestrator.Wait(ctx); err != nil {
		return Summary{}, fmt.Errorf("system: waiting for the jobs: %w", err)
	}
	// The health service publishes every round: stop it so that the
	// published totals are final before checking the consumers (and start
	// it again afterwards if Serve serves).
	s.beginCounting()
	defer s.endCounting()
	settle, cancel := context.WithTimeout(ctx, s.cfg.Settle)
	defer cancel()
	if err := s.waitCaughtUp(settle); err != nil {
		// Report what was seen: the summary shows what is missing.
		sum := s.summary(start)
		sum.Notes = append(sum.Notes, "consumers had not caught up after "+s.cfg.Settle.String())
		return sum, nil
	}
	stopProgress()
	sum := s.summary(start)
	rep, err := s.Services.Audit.Verify(ctx)
	switch {
	case err != nil:
		sum.AuditVerified = err
	case !rep.OK():
		sum.AuditVerified = fmt.Errorf("chain broken at %v", rep.Broken)
	default:
		sum.AuditRecords = rep.Records
	}
	return sum, nil
}

// counts returns every service's figures now.
func (s *System) counts() []ServiceCount {
	o := s.Services.Orchestrator.Stats()
	published := o.Published.Load()
	p := s.Services.Probe.Report()
	m := s.Services.Metrics.Summary()
	h := s.Services.Health.Stats()
	healthPub := h.HealthEventsPublished + h.NotificationsPublished
	ns := s.Services.Notify.Stats()
	all := published + healthPub + ns.Emitted // every durable event of every service
	terminal := int64(0)
	for _, j := range s.Services.Orchestrator.List() {
		if j.Status.Terminal() {
			terminal++
		}
	}
	return []ServiceCount{
		{Service: "orchestrator", Published: published, Consumed: -1},
		{Service: "health", Published: healthPub, Consumed: -1},
		{Service: "notifications (terminal job events)", Published: ns.Emitted, Consumed: ns.Handled, Expected: terminal},
		{Service: "audit", Published: -1, Consumed: s.Services.Audit.Consumed(), Expected: all},
		{Service: "metrics", Published: -1, Consumed: m.Events, Expected: published},
		{Service: "order probe", Published: -1, Consumed: p.Events, Expected: published},
		{Service: "live view (real-time path)", Published: -1, Consumed: p.Realtime, Expected: o.RealtimeSent.Load()},
	}
}

func (s *System) caughtUp() bool {
	for _, c := range s.counts() {
		if c.Consumed >= 0 && c.Consumed < c.Expected {
			return false
		}
	}
	return true
}

// waitCaughtUp polls the consumers' counts until each has everything.
func (s *System) waitCaughtUp(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !s.caughtUp() {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *System) summary(start time.Time) Summary {
	sum := Summary{Jobs: s.cfg.Jobs, JobsByState: map[eventmodels.JobStatus]int{}, Elapsed: time.Since(start)}
	for _, j := range s.Services.Orchestrator.List() {
		sum.JobsByState[j.Status]++
	}
	sum.Services = s.counts()
	for _, c := range sum.Services {
		if c.Published > 0 {
			sum.Published += c.Published
		}
		sum.Lost += c.Lost()
	}
	sum.Probe = s.Services.Probe.Report()
	h := s.Services.Health.Stats()
	sum.AlertsRaised, sum.AlertsCleared = h.AlertsRaised, h.AlertsCleared
	sum.Unconfirmed = h.HealthEventsUnconfirmed
	ns := s.Services.Notify.Stats()
	sum.NotificationsEmitted = ns.Emitted
	sum.NotificationsDelivered = map[string]int64{}
	for ch, n := range ns.Delivered {
		sum.NotificationsDelivered[string(ch)] = n
	}
	sum.NotificationDuplicates = 0
	for _, n := range ns.Duplicates {
		sum.NotificationDuplicates += n
	}
	sum.Duplicates = sum.Probe.Duplicates
	sum.Order = sum.Probe.Violations
	return sum
}

// progress writes a status line to cfg.Progress until the returned stop
// is called (idempotent): on a terminal, one line rewritten in place every
// 250ms; with ProgressLines, a plain line every ProgressEvery.
func (s *System) progress(ctx context.Context, start time.Time) (stop func()) {
	if s.cfg.Progress == nil {
		return func() {}
	}
	every, prefix, suffix := 250*time.Millisecond, "\r\033[K", ""
	if s.cfg.ProgressLines {
		every, prefix, suffix = s.cfg.ProgressEvery, "", "\n"
		if every <= 0 {
			every = 2 * time.Second
		}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		var lastEvents int64
		last := start
		for {
			select {
			case <-done:
				if !s.cfg.ProgressLines {
					fmt.Fprint(s.cfg.Progress, "\r\033[K")
				}
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				p := s.Services.Probe.Report()
				rate := float64(p.Events-lastEvents) / now.Sub(last).Seconds()
				lastEvents, last = p.Events, now
				fmt.Fprint(s.cfg.Progress, prefix+s.statusLine(p, rate, now.Sub(start))+suffix)
			}
		}
	}()
	var stopped bool
	return func() {
		if !stopped {
			stopped = true
			close(done)
			<-finished
		}
	}
}

// statusLine is one progress report: jobs by state, consumption rate,
// latency.
func (s *System) statusLine(p ProbeReport, rate float64, elapsed time.Duration) string {
	states := map[eventmodels.JobStatus]int{}
	for _, j := range s.Services.Orchestrator.List() {
		states[j.Status]++
	}
	terminal := states[eventmodels.StatusCompleted] + states[eventmodels.StatusFailed] + states[eventmodels.StatusCancelled]
	line := fmt.Sprintf("%s %d/%d jobs | queued %d running %d done %d failed %d | %.0f ev/s | p99 %v",
		bar(terminal, s.cfg.Jobs, 24), terminal, s.cfg.Jobs,
		states[eventmodels.StatusSubmitted]+states[eventmodels.StatusQueued], states[eventmodels.StatusRunning],
		states[eventmodels.StatusCompleted], states[eventmodels.StatusFailed]+states[eventmodels.StatusCancelled],
		rate, p.LatencyP99.Round(100*time.Microsecond))
	if s.cfg.ProgressLines {
		line = fmt.Sprintf("%6.1fs %s", elapsed.Seconds(), line)
	}
	return line
}

func bar(n, of, width int) string {
	if of <= 0 {
		of = 1
	}
	full := min(n*width/of, width)
	return "[" + strings.Repeat("#", full) + strings.Repeat(".", width-full) + "]"
}

// Print writes the summary as tables.
func (s Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "\n%d jobs in %v:", s.Jobs, s.Elapsed.Round(time.Millisecond))
	for _, st := range []eventmodels.JobStatus{eventmodels.StatusCompleted, eventmodels.StatusFailed, eventmodels.StatusCancelled, eventmodels.StatusRunning, eventmodels.StatusQueued, eventmodels.StatusSubmitted} {
		if n := s.JobsByState[st]; n > 0 {
			fmt.Fprintf(w, " %d %s", n, st)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "service\tpublished\tconsumed\texpected\tlost\t")
	for _, c := range s.Services {
		pub, con, exp, lost := "-", "-", "-", "-"
		if c.Published >= 0 {
			pub = fmt.Sprint(c.Published)
		}
		if c.Consumed >= 0 {
			con, exp, lost = fmt.Sprint(c.Consumed), fmt.Sprint(c.Expected), fmt.Sprint(c.Lost())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", c.Service, pub, con, exp, lost)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	check := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "FAILED"
	}
	fmt.Fprintf(w, "events lost:            %d (%s)\n", s.Lost, check(s.Lost == 0))
	fmt.Fprintf(w, "per-job order:          %s (%d jobs, %d redeliveries ignored)\n", check(len(s.Order) == 0), s.Probe.Jobs, s.Duplicates)
	for i, v := range s.Order {
		if i == 5 {
			fmt.Fprintf(w, "  … %d more\n", len(s.Order)-5)
			break
		}
		fmt.Fprintln(w, "  "+v)
	}
	if s.AuditVerified != nil {
		fmt.Fprintf(w, "audit chain:            FAILED: %v\n", s.AuditVerified)
	} else {
		fmt.Fprintf(w, "audit chain:            ok (%d records verified, SHA-256 chain)\n", s.AuditRecords)
	}
	fmt.Fprintf(w, "notifications:          %d emitted; delivered", s.NotificationsEmitted)
	for _, ch := range sortedKeys(s.NotificationsDelivered) {
		fmt.Fprintf(w, " %s %d", ch, s.NotificationsDelivered[ch])
	}
	fmt.Fprintf(w, " (%d duplicates ignored)\n", s.NotificationDuplicates)
	fmt.Fprintf(w, "health alerts:          %d raised, %d cleared\n", s.AlertsRaised, s.AlertsCleared)
	fmt.Fprintf(w, "publish→consume:        p50 %v  p95 %v  p99 %v  max %v\n", s.Probe.LatencyP50, s.Probe.LatencyP95, s.Probe.LatencyP99, s.Probe.LatencyMax)
	for _, n := range s.Notes {
		fmt.Fprintln(w, "note: "+n)
	}
	fmt.Fprintf(w, "result:                 %s\n", check(s.OK()))
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
