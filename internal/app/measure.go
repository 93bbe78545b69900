package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/monitor"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// MeasureRequest is a measurement of a plan against its repositories:
// each job's RPO, each dataset's 3-2-1 rule and, when asked, each
// drill's RTO.
type MeasureRequest struct {
	Plan *plan.Plan
	// Now is when ages are judged (zero: now).
	Now time.Time
	// Known is each job's last successful backup as the run history
	// knows it: it stands in for a repository that cannot be read.
	Known map[string]monitor.SnapshotRef
	// JudgeDrills judges the plan's drills from Drills, each drill's
	// last finished run in the run history; DrillsKnown says whether
	// that history could be read at all.
	JudgeDrills bool
	Drills      map[string]monitor.DrillRun
	DrillsKnown bool
	// Secret resolves the plan's secret references (the repositories'
	// passwords); nil resolves env: and file: references only.
	Secret func(ctx context.Context, ref string) (string, error)
}

// MeasureResult is the judgement.
type MeasureResult struct {
	Status *monitor.Status
}

// Violated is an error with exit code ExitViolation naming the
// violations when an objective is violated or a rule missing, else nil.
func (r *MeasureResult) Violated() error {
	v := r.Status.Violations
	if len(v) == 0 {
		return nil
	}
	return &CodeError{Code: ExitViolation, Err: fmt.Errorf("%d objective(s) violated: %s", len(v), strings.Join(v, "; "))}
}

// Measure reads every repository of the plan (at once) and judges the
// plan. A repository that cannot be read is not an error: it is in the
// status, unreachable, with its error.
func (a *App) Measure(ctx context.Context, req MeasureRequest) (*MeasureResult, error) {
	if req.Plan == nil {
		return nil, errors.New("measure: no plan")
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	views := repoStates(req.Plan, now)
	var wg sync.WaitGroup
	for i, r := range req.Plan.Repositories {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.readRepoState(ctx, r, req.Secret, views[i])
		}()
	}
	wg.Wait()
	return judge(req, views, now), nil
}

// Unmeasured is the judgement Measure gives when no repository can be
// opened at all (a front end whose storage settings are wrong): each is
// unreachable with err, and req.Known stands in for them.
func Unmeasured(req MeasureRequest, err error) *MeasureResult {
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	views := repoStates(req.Plan, now)
	for _, v := range views {
		v.Error = err.Error()
	}
	return judge(req, views, now)
}

// repoStates is a state for each repository of p, not read yet.
func repoStates(p *plan.Plan, now time.Time) []*monitor.RepoState {
	views := make([]*monitor.RepoState, len(p.Repositories))
	for i, r := range p.Repositories {
		views[i] = &monitor.RepoState{Name: r.Name, Site: r.Site, Medium: r.Medium, Immutable: r.Immutable, Airgapped: r.Airgapped, Checked: now,
			Newest: map[string]monitor.SnapshotRef{}}
	}
	return views
}

// judge judges req's plan at now from the repositories' states.
func judge(req MeasureRequest, views []*monitor.RepoState, now time.Time) *MeasureResult {
	st := monitor.Evaluate(req.Plan, views, now, req.Known)
	if req.JudgeDrills {
		monitor.JudgeDrills(st, req.Plan, req.Drills, req.DrillsKnown)
	}
	return &MeasureResult{Status: st}
}

// readRepoState opens one repository and finds its size and each job's
// newest snapshot (tag job=NAME); what fails goes to v.Error.
func (a *App) readRepoState(ctx context.Context, r *plan.Repository, secret func(context.Context, string) (string, error), v *monitor.RepoState) {
	repo, err := a.planRepo(ctx, r, func(ctx context.Context, ref string) (string, error) { return a.planSecret(ctx, secret, ref) })
	if err != nil {
		v.Error = err.Error()
		return
	}
	rp, err := a.Open(ctx, repo)
	if err != nil {
		v.Error = err.Error()
		return
	}
	all, _, err := snapshot.LoadAll(ctx, rp)
	if err != nil {
		v.Error = err.Error()
		return
	}
	v.Reachable = true
	v.Snapshots = len(all)
	for _, t := range []storage.FileType{storage.PackFile, storage.IndexFile, storage.SnapshotFile} {
		infos, err := rp.List(ctx, t)
		if err != nil {
			break
		}
		for _, fi := range infos {
			v.SizeBytes += fi.Size
		}
	}
	for _, sn := range all {
		for _, t := range sn.Tags {
			job, ok := strings.CutPrefix(t, "job=")
			if !ok {
				continue
			}
			if cur, ok := v.Newest[job]; !ok || sn.Time.After(cur.Time) {
				v.Newest[job] = monitor.SnapshotRef{ID: sn.ID.String(), Time: sn.Time}
			}
		}
	}
}

// planSecret resolves a plan's secret reference with secret, else
// (nil) env: and file: references only.
func (a *App) planSecret(ctx context.Context, secret func(context.Context, string) (string, error), ref string) (string, error) {
	if secret != nil {
		return secret(ctx, ref)
	}
	return plan.ResolveSecret(ref, a.getenv, func(string) (string, error) {
		return "", errors.New("command secrets are not resolved here")
	})
}
