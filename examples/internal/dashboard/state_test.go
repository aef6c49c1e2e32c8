package dashboard

import (
	"testing"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
)

func TestJobStateApply(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) eventmodels.Option {
		return eventmodels.WithClock(func() time.Time { return t0.Add(time.Duration(s) * time.Second) })
	}
	spec := eventmodels.JobSpec{ProjectID: "p", Telescope: "vla", Queue: "gpu", JobName: "calibrate",
		Resources: eventmodels.Resources{CPUCores: 1, MemoryMB: 1, WalltimeSeconds: 1}}
	sub := eventmodels.NewJobSubmitted("ann", "j", spec, at(0))
	queued := eventmodels.NewJobQueued("ann", "j", "gpu", 1, at(1))
	run := eventmodels.NewJobStatusChanged("ann", "j", eventmodels.StatusQueued, eventmodels.StatusRunning, 0, at(2))
	run.Node = "hpc-node-01"
	p40 := eventmodels.NewJobStatusChanged("ann", "j", eventmodels.StatusRunning, eventmodels.StatusRunning, 40, at(3))
	p80 := eventmodels.NewJobStatusChanged("ann", "j", eventmodels.StatusRunning, eventmodels.StatusRunning, 80, at(4))
	done := eventmodels.NewJobCompleted("ann", "j", eventmodels.Usage{Progress: 100}, at(10))
	fail := eventmodels.NewJobFailed("ann", "j", eventmodels.StatusRunning, eventmodels.ErrorTimeout, "walltime exceeded", at(9))
	cancel := eventmodels.NewJobCancelled("bob", "j", eventmodels.StatusQueued, "wrong input", at(2))

	for _, tc := range []struct {
		name   string
		events []eventmodels.Event
		want   JobState
	}{
		{"in order", []eventmodels.Event{sub, queued, run, p40, p80, done}, JobState{
			Status: eventmodels.StatusCompleted, Progress: 100, Node: "hpc-node-01", JobName: "calibrate", ProjectID: "p", Queue: "gpu",
			SubmittedAt: t0, StartedAt: t0.Add(2 * time.Second), FinishedAt: t0.Add(10 * time.Second), UpdatedAt: t0.Add(10 * time.Second)}},
		{"reordered and redelivered", []eventmodels.Event{run, p80, queued, p40, sub, p80, done, run}, JobState{
			Status: eventmodels.StatusCompleted, Progress: 100, Node: "hpc-node-01", JobName: "calibrate", ProjectID: "p", Queue: "gpu",
			SubmittedAt: t0, StartedAt: t0.Add(2 * time.Second), FinishedAt: t0.Add(10 * time.Second), UpdatedAt: t0.Add(10 * time.Second)}},
		{"first terminal wins", []eventmodels.Event{sub, run, fail, done}, JobState{
			Status: eventmodels.StatusFailed, Node: "hpc-node-01", JobName: "calibrate", ProjectID: "p", Queue: "gpu", Detail: "timeout: walltime exceeded",
			SubmittedAt: t0, StartedAt: t0.Add(2 * time.Second), FinishedAt: t0.Add(9 * time.Second), UpdatedAt: t0.Add(9 * time.Second)}},
		{"cancelled while queued", []eventmodels.Event{sub, queued, cancel}, JobState{
			Status: eventmodels.StatusCancelled, JobName: "calibrate", ProjectID: "p", Queue: "gpu", Detail: "cancelled by bob: wrong input",
			SubmittedAt: t0, FinishedAt: t0.Add(2 * time.Second), UpdatedAt: t0.Add(2 * time.Second)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := &JobState{JobID: "j"}
			for _, e := range tc.events {
				j.apply(e)
			}
			tc.want.JobID, tc.want.UserID = "j", "ann"
			if *j != tc.want {
				t.Errorf("got  %+v\nwant %+v", *j, tc.want)
			}
		})
	}

	j := &JobState{JobID: "j"}
	j.apply(sub)
	if j.apply(sub) {
		t.Error("a redelivered event reported a change")
	}
	if d := j.Duration(t0.Add(5 * time.Second)); d != 5*time.Second {
		t.Errorf("unstarted duration %v, want 5s from submission", d)
	}
	j.apply(run)
	j.apply(done)
	if d := j.Duration(t0.Add(time.Hour)); d != 8*time.Second {
		t.Errorf("finished duration %v, want 8s", d)
	}
}
