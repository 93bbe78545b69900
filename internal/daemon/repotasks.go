package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/bunkerbackup/bunker/internal/notify"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/state"
)

// RepositoryRunner runs a plan repository's check and prune (its check
// and prune schedules). A Runner that implements it gets them
// scheduled; without it the daemon warns once and leaves them alone.
type RepositoryRunner interface {
	RunCheck(ctx context.Context, p *plan.Plan, repo string, log io.Writer) error
	RunPrune(ctx context.Context, p *plan.Plan, repo string, log io.Writer) error
}

// repoTaskKey names a repository's check or prune (kind) in the
// schedule state, the running set and the alerts: "check:NAME".
func repoTaskKey(kind, repo string) string { return kind + ":" + repo }

// repoRunner is the runner's RepositoryRunner, if it has one.
func (d *Daemon) repoRunner() (RepositoryRunner, bool) {
	rr, ok := d.o.Runner.(RepositoryRunner)
	return rr, ok
}

// scheduleRepos starts the repositories' checks and prunes that are due
// at now and returns when to look again (never later than next).
func (d *Daemon) scheduleRepos(ctx context.Context, p *plan.Plan, now, next time.Time) time.Time {
	if _, ok := d.repoRunner(); !ok {
		for _, r := range p.Repositories {
			if r.Check != nil || r.Prune != nil {
				d.repoTasksOnce.Do(func() {
					d.log.Warn("this daemon cannot run repository checks and prunes: their schedules are ignored", "repository", r.Name)
				})
			}
		}
		return next
	}
	for _, r := range p.Repositories {
		for _, t := range []struct {
			kind string
			s    plan.Schedule
		}{{state.KindCheck, checkSchedule(r)}, {state.KindPrune, pruneSchedule(r)}} {
			if t.s == nil {
				continue
			}
			if n := d.due(ctx, repoTaskKey(t.kind, r.Name), t.s, now, func(trigger string, slot time.Time) {
				d.startRepoTask(ctx, p, r, t.kind, trigger, slot)
			}); n.Before(next) {
				next = n
			}
		}
	}
	return next
}

func checkSchedule(r *plan.Repository) plan.Schedule {
	if r.Check == nil {
		return nil
	}
	return r.Check.ScheduleOf()
}

func pruneSchedule(r *plan.Repository) plan.Schedule {
	if r.Prune == nil {
		return nil
	}
	return r.Prune.ScheduleOf()
}

// TriggerCheck checks a repository now (the API's button).
func (d *Daemon) TriggerCheck(repo string) error { return d.triggerRepoTask(repo, state.KindCheck) }

// TriggerPrune prunes a repository now.
func (d *Daemon) TriggerPrune(repo string) error { return d.triggerRepoTask(repo, state.KindPrune) }

func (d *Daemon) triggerRepoTask(name, kind string) error {
	p := d.Plan()
	r := p.Repository(name)
	if r == nil {
		return fmt.Errorf("no repository %q", name)
	}
	if _, ok := d.repoRunner(); !ok {
		return fmt.Errorf("this daemon cannot run a repository's %s", kind)
	}
	ctx, err := d.runningContext()
	if err != nil {
		return err
	}
	if !d.startRepoTask(ctx, p, r, kind, state.TriggerAPI, time.Time{}) {
		return fmt.Errorf("the %s of %s is running already", kind, name)
	}
	return nil
}

func (d *Daemon) startRepoTask(ctx context.Context, p *plan.Plan, r *plan.Repository, kind, trigger string, slot time.Time) bool {
	rctx, end, ok := d.begin(ctx, repoTaskKey(kind, r.Name))
	if !ok {
		d.log.Warn("repository "+kind+" still running: slot skipped", "repository", r.Name, "slot", slot)
		return false
	}
	go func() {
		defer end()
		d.runRepoTask(rctx, p, r, kind, trigger, slot)
	}()
	return true
}

// runRepoTask runs a repository's check or prune in the repository's
// concurrency slot, as runJob runs a job: recorded in the run history,
// logged, counted in the metrics, and alerted on when it starts or
// stops failing.
func (d *Daemon) runRepoTask(ctx context.Context, p *plan.Plan, r *plan.Repository, kind, trigger string, slot time.Time) {
	rr, ok := d.repoRunner()
	if !ok {
		return
	}
	run := rr.RunCheck
	if kind == state.KindPrune {
		run = rr.RunPrune
	}
	rec := &state.Run{Job: r.Name, Kind: kind, Trigger: trigger, Scheduled: slot, Started: d.clock.Now(), Repository: r.Name}
	if err := d.o.Store.StartRun(rec); err != nil {
		d.log.Error("record run start", "repository", r.Name, "kind", kind, "err", err)
		return
	}
	log := d.log.With("repository", r.Name, "kind", kind, "run", rec.ID)
	log.Info("repository "+kind+" started", "trigger", trigger)
	release, err := d.acquire(ctx, r.Name)
	var buf bytes.Buffer
	if err == nil {
		err = run(ctx, p, r.Name, &buf)
		release()
	}
	rec.Finished, rec.Log = d.clock.Now(), buf.String()
	d.finishRecord(ctx, p, rec, err)
	if ferr := d.o.Store.FinishRun(rec); ferr != nil {
		log.Error("record run end", "err", ferr)
	}
	if m := d.o.Metrics; m != nil {
		m.repoRun(rec)
	}
	actx := context.WithoutCancel(ctx)
	fields := map[string]string{"repository": r.Name, "task": kind}
	if err != nil {
		log.Error("repository "+kind+" failed", "err", rec.Error)
		d.alert(actx, repoTaskKey(kind, r.Name), true, notify.Event{Kind: "failure", Severity: "critical", Job: r.Name, RunID: rec.ID,
			Title: fmt.Sprintf("%s of repository %s failed", kind, r.Name), Message: rec.Error, Fields: fields})
		return
	}
	log.Info("repository " + kind + " finished")
	d.alert(actx, repoTaskKey(kind, r.Name), false, notify.Event{Kind: "recovery", Severity: "info", Job: r.Name, RunID: rec.ID,
		Title: fmt.Sprintf("%s of repository %s succeeds again", kind, r.Name), Fields: fields})
	if kind == state.KindPrune {
		// The repository's size changed: measure soon.
		d.kickMeasure()
	}
}
