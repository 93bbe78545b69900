package daemon

import (
	"context"
	"io"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/monitor"
	"github.com/bunkerbackup/bunker/internal/plan"
)

// AppRunner is the Runner that does the daemon's work with the use cases
// of package app, in this process: the same code as bunker run, bunker
// drill and bunker status.
type AppRunner struct {
	// Core is the use cases' App. Its error (the front end's settings
	// are wrong) fails each drill and leaves every repository
	// unmeasured with it.
	Core func() (*app.App, error)
	// Job runs a plan job with its retries: app.RunJob with the front
	// end's backups of each kind of source.
	Job func(ctx context.Context, p *plan.Plan, j *plan.Job, log io.Writer) (*app.JobResult, error)
	// Secret resolves the plan's secret references.
	Secret func(ctx context.Context, ref string) (string, error)
}

func (r *AppRunner) RunJob(ctx context.Context, p *plan.Plan, j *plan.Job, log io.Writer) (JobOutcome, error) {
	res, err := r.Job(ctx, p, j, log)
	if res == nil {
		return JobOutcome{}, err
	}
	return JobOutcome{Snapshot: res.Snapshot, Repository: res.Repository, BytesRead: res.BytesRead, BytesAdded: res.BytesAdded, Copies: res.Copies}, err
}

func (r *AppRunner) RunDrill(ctx context.Context, p *plan.Plan, d *plan.Drill, log io.Writer) (DrillOutcome, error) {
	ctx, done := app.WithScope(ctx)
	defer done()
	return r.Drill(ctx, p, d, log)
}

// Drill runs a drill (app.Drill), for the daemon and bunker drill.
func (r *AppRunner) Drill(ctx context.Context, p *plan.Plan, d *plan.Drill, log io.Writer) (DrillOutcome, error) {
	c, err := r.Core()
	if err != nil {
		return DrillOutcome{}, err
	}
	defer func() { _ = c.Close() }()
	res, err := c.Drill(ctx, app.DrillRequest{Plan: p, Drill: d, Log: log})
	return DrillOutcome{Snapshot: res.Snapshot, RestoreSeconds: res.RestoreSeconds}, err
}

func (r *AppRunner) Measure(ctx context.Context, p *plan.Plan, now time.Time, known map[string]monitor.SnapshotRef) *monitor.Status {
	ctx, done := app.WithScope(ctx)
	defer done()
	res, err := r.MeasurePlan(ctx, app.MeasureRequest{Plan: p, Now: now, Known: known, Secret: r.Secret})
	if err != nil {
		return nil
	}
	return res.Status
}

// MeasurePlan measures (app.Measure), for the daemon and bunker status;
// without the use cases' App, every repository is judged unreadable with
// Core's error (the run history still stands in for them).
func (r *AppRunner) MeasurePlan(ctx context.Context, req app.MeasureRequest) (*app.MeasureResult, error) {
	c, err := r.Core()
	if err != nil {
		return app.Unmeasured(req, err), nil
	}
	return c.Measure(ctx, req)
}

// RunCheck checks a plan repository (its check schedule).
func (r *AppRunner) RunCheck(ctx context.Context, p *plan.Plan, repo string, log io.Writer) error {
	return r.repoTask(ctx, func(ctx context.Context, c *app.App) error {
		_, err := c.RunRepoCheck(ctx, app.RepoTaskRequest{Plan: p, Repository: repo, Log: log})
		return err
	})
}

// RunPrune prunes a plan repository (its prune schedule).
func (r *AppRunner) RunPrune(ctx context.Context, p *plan.Plan, repo string, log io.Writer) error {
	return r.repoTask(ctx, func(ctx context.Context, c *app.App) error {
		_, err := c.RunRepoPrune(ctx, app.RepoTaskRequest{Plan: p, Repository: repo, Log: log})
		return err
	})
}

// repoTask runs a repository's scheduled task with the use cases' App;
// what it opens is closed when it ends (its scope).
func (r *AppRunner) repoTask(ctx context.Context, run func(context.Context, *app.App) error) error {
	ctx, done := app.WithScope(ctx)
	defer done()
	c, err := r.Core()
	if err != nil {
		return err
	}
	return run(ctx, c)
}

func (r *AppRunner) Snapshots(ctx context.Context, p *plan.Plan, name string) ([]SnapshotInfo, error) {
	ctx, done := app.WithScope(ctx)
	defer done()
	c, err := r.Core()
	if err != nil {
		return nil, err
	}
	repo, err := c.PlanRepo(ctx, p, name)
	if err != nil {
		return nil, err
	}
	rp, err := c.Open(ctx, repo)
	if err != nil {
		return nil, err
	}
	all, _, err := snapshot.LoadAll(ctx, rp)
	if err != nil {
		return nil, err
	}
	out := make([]SnapshotInfo, 0, len(all))
	for i := len(all) - 1; i >= 0; i-- {
		sn := all[i]
		si := SnapshotInfo{ID: sn.ID.String(), Time: sn.Time, Host: sn.Hostname, Paths: sn.Paths, Tags: sn.Tags, Kind: sn.Kind, Source: sn.Metadata["source"]}
		if si.Tags == nil {
			si.Tags = []string{}
		}
		if sn.Summary != nil {
			si.TotalBytes, si.BytesAdded = sn.Summary.TotalBytes, sn.Summary.BytesAdded
		}
		out = append(out, si)
	}
	return out, nil
}

// AppRunner runs the repositories' scheduled checks and prunes too.
var _ RepositoryRunner = (*AppRunner)(nil)
