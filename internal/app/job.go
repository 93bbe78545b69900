package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/maintenance"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/redact"
)

// JobTag marks the snapshots of a plan job, in every repository.
func JobTag(job string) string { return "job=" + job }

// JobResult is the outcome of one run of a plan job.
type JobResult struct {
	Job        string            `json:"job"`
	Snapshot   string            `json:"snapshot_id,omitempty"`
	Repository string            `json:"repository"`
	BytesRead  int64             `json:"bytes_read"`
	BytesAdded int64             `json:"bytes_added"`
	Copies     map[string]string `json:"copies,omitempty"` // repository → "ok", "skipped: …" or the error
	Attempts   int               `json:"attempts"`
	Started    time.Time         `json:"started"`
	Finished   time.Time         `json:"finished"`
	Error      string            `json:"error,omitempty"`
}

// CopyFailed returns the first copy that neither succeeded nor was
// skipped (an air-gapped repository that is not attached), or "".
func (r *JobResult) CopyFailed() string {
	for repo, st := range r.Copies {
		if st != "ok" && !strings.HasPrefix(st, "skipped") {
			return repo
		}
	}
	return ""
}

// JobBackup runs the backup of a job's source into repo with tags, on
// uc (whose events go to the job's log).
type JobBackup func(ctx context.Context, uc *App, j *plan.Job, repo Repo, tags []string, log io.Writer) (*BackupResult, error)

// JobRequest runs one job of a plan.
type JobRequest struct {
	Plan *plan.Plan
	Job  *plan.Job
	// Log receives every step's output: the run log.
	Log io.Writer
	// Backup, when set, replaces SourceJobBackup (tests).
	Backup JobBackup
	// KubeConfig loads the cluster configuration of kubernetes jobs.
	KubeConfig KubeConfigFunc
}

// RunJob runs a plan job with its retries: before hooks, the backup into
// its repository, a copy to each copy repository with that repository's
// retention, retention in the main repository, then after hooks — or
// on_failure hooks when the run failed. A failed copy or retention does
// not fail the run; the result says what happened to each copy.
func (a *App) RunJob(ctx context.Context, req JobRequest) (*JobResult, error) {
	j := req.Job
	res := &JobResult{Job: j.Name, Repository: j.Repository, Started: time.Now()}
	attempts := max(j.Retries.Attempts, 0) + 1
	backoff := j.Retries.Backoff
	if backoff <= 0 {
		backoff = 30 * time.Second
	}
	var err error
	for res.Attempts = 1; ; res.Attempts++ {
		err = a.runJobOnce(ctx, req, res)
		if err == nil || res.Attempts >= attempts || ctx.Err() != nil {
			break
		}
		wait := backoff << (res.Attempts - 1)
		fmt.Fprintf(req.Log, "attempt %d failed: %v; retrying in %s\n", res.Attempts, err, wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
	res.Finished = time.Now()
	if err != nil {
		res.Error = err.Error()
	}
	return res, err
}

func (a *App) runJobOnce(ctx context.Context, req JobRequest, res *JobResult) (err error) {
	p, j, log := req.Plan, req.Job, req.Log
	if j.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, j.Timeout, fmt.Errorf("job %s: timeout %s", j.Name, j.Timeout))
		defer cancel()
	}
	hookEnv := []string{"BUNKER_JOB=" + j.Name}
	defer func() {
		if err != nil {
			a.RunFailureHooks(ctx, j, err, log)
		}
	}()
	for _, h := range j.Hooks.Before {
		if err := a.RunHook(ctx, h, hookEnv, log); err != nil {
			return fmt.Errorf("before hook: %w", err)
		}
	}
	// The main repository's hooks are around all that uses it: the
	// backup, the copies out of it, retention in it.
	main := p.Repository(j.Repository)
	var later []error // reported after the after hooks
	err = a.aroundRepo(ctx, main, append(slices.Clip(hookEnv), "BUNKER_ACTION=backup"), log, func() ([]string, error) {
		mainRepo, err := a.planRepo(ctx, main, a.PlanSecret)
		if err != nil {
			return nil, fmt.Errorf("repository %s %w", main.Name, err)
		}
		if err := a.jobBackup(ctx, req, mainRepo, res); err != nil {
			return nil, fmt.Errorf("backup into %s failed: %w", main.Name, err)
		}
		res.Copies = map[string]string{}
		for _, c := range j.Copies {
			st := a.copyJob(ctx, p, j, main, mainRepo, c, log)
			res.Copies[c.Repository] = st
			if st != "ok" && !strings.HasPrefix(st, "skipped") {
				later = append(later, fmt.Errorf("copy to %s: %s", c.Repository, st))
			}
		}
		if err := a.applyRetention(ctx, j, main, mainRepo, j.Retention, log); err != nil {
			later = append(later, err)
		}
		return []string{"BUNKER_SNAPSHOT=" + res.Snapshot}, nil
	})
	if err != nil {
		return err
	}
	for _, h := range j.Hooks.After {
		if err := a.RunHook(ctx, h, append(hookEnv, "BUNKER_RESULT=success", "BUNKER_SNAPSHOT="+res.Snapshot), log); err != nil {
			fmt.Fprintf(log, "after hook: %v\n", err)
		}
	}
	for _, e := range later {
		fmt.Fprintf(log, "%v\n", e)
	}
	return nil
}

// RunFailureHooks runs a job's on_failure hooks for a run that failed
// with err (in $BUNKER_ERROR), even when ctx has ended.
func (a *App) RunFailureHooks(ctx context.Context, j *plan.Job, err error, log io.Writer) {
	env := []string{"BUNKER_JOB=" + j.Name, "BUNKER_RESULT=failed", "BUNKER_ERROR=" + err.Error()}
	for _, h := range j.Hooks.OnFailure {
		if herr := a.RunHook(context.WithoutCancel(ctx), h, env, log); herr != nil {
			fmt.Fprintf(log, "on_failure hook: %v\n", herr)
		}
	}
}

// jobBackup runs the backup of a job into repo and records what it did in
// res. A backup that saved its snapshot without some unreadable source
// files counts as done.
func (a *App) jobBackup(ctx context.Context, req JobRequest, repo Repo, res *JobResult) error {
	j, log := req.Job, req.Log
	switch j.Source.Type {
	case "files", "stdin", "postgres", "mysql", "mongodb", "kubernetes":
	default:
		return fmt.Errorf("source type %q cannot be run", j.Source.Type)
	}
	uc := a.With(&LogEvents{W: LockedWriter(log)})
	defer func() { _ = uc.Close() }() // what it opened outside a scope
	tags := append([]string{JobTag(j.Name)}, j.Tags...)
	var out *BackupResult
	var err error
	if req.Backup != nil {
		out, err = req.Backup(ctx, uc, j, repo, tags, log)
	} else {
		out, err = uc.SourceJobBackup(ctx, j, repo, tags, log, req.KubeConfig)
	}
	var pe *PartialError
	if err != nil && !errors.As(err, &pe) {
		return err
	}
	if err != nil {
		fmt.Fprintf(log, "warning: %v\n", err)
	}
	sum := out.Snapshot.Summary
	res.Snapshot, res.BytesRead, res.BytesAdded = out.Snapshot.ID.String(), sum.BytesRead, sum.BytesAdded
	fmt.Fprintf(log, "snapshot %s saved (%s read, %s added)\n", out.Snapshot.ShortID(), FormatBytes(sum.BytesRead), FormatBytes(sum.BytesAdded))
	return nil
}

// copyJob copies the job's snapshots to one copy repository and applies
// the copy's retention there, between that repository's hooks
// (BUNKER_ACTION=copy). It returns "ok", "skipped: …" for an air-gapped
// repository that is not attached, or what failed.
func (a *App) copyJob(ctx context.Context, p *plan.Plan, j *plan.Job, main *plan.Repository, mainRepo Repo, c *plan.Copy, log io.Writer) string {
	dst := p.Repository(c.Repository)
	st := ""
	err := a.aroundRepo(ctx, dst, []string{"BUNKER_JOB=" + j.Name, "BUNKER_ACTION=copy"}, log, func() ([]string, error) {
		st = a.copyTo(ctx, j, main, mainRepo, dst, c, log)
		if st != "ok" {
			// A skipped copy did not go either: on_failure hooks hear it.
			return nil, errors.New(st)
		}
		return nil, nil
	})
	if st == "" && err != nil {
		// A before hook failed (it may attach the repository).
		if dst.Airgapped {
			return "skipped: not attached (" + err.Error() + ")"
		}
		return "failed: " + err.Error()
	}
	return st
}

// copyTo does copyJob's copy and retention.
func (a *App) copyTo(ctx context.Context, j *plan.Job, main *plan.Repository, mainRepo Repo, dst *plan.Repository, c *plan.Copy, log io.Writer) string {
	to, err := a.planRepo(ctx, dst, a.PlanSecret)
	if err != nil {
		return err.Error()
	}
	fmt.Fprintf(log, "copy of the snapshots of job %s from %s to %s\n", j.Name, redact.URLs(main.Location), redact.URLs(dst.Location))
	uc := a.With(&LogEvents{W: LockedWriter(log)})
	defer uc.Close()
	res, err := uc.Copy(ctx, CopyRequest{From: mainRepo, To: to, Filter: snapshot.Filter{Tags: []string{JobTag(j.Name)}}})
	if err != nil {
		if dst.Airgapped {
			return "skipped: not attached (" + err.Error() + ")"
		}
		return "failed: " + err.Error()
	}
	fmt.Fprintf(log, "copied %d snapshots (%d already there): %d new blobs, %s (%s stored)\n",
		res.Copied, res.Skipped, res.BlobsAdded, FormatBytes(res.BytesAdded), FormatBytes(res.BytesStored))
	if err := a.applyRetention(ctx, j, dst, to, c.Retention, log); err != nil {
		return err.Error()
	}
	return "ok"
}

// RetentionPolicy is the snapshot policy of a plan's retention.
func RetentionPolicy(r plan.Retention) snapshot.Policy {
	return snapshot.Policy{Last: r.KeepLast, Hourly: r.KeepHourly, Daily: r.KeepDaily, Weekly: r.KeepWeekly,
		Monthly: r.KeepMonthly, Yearly: r.KeepYearly, Within: r.KeepWithin,
		WithinHourly: r.KeepWithinHourly, WithinDaily: r.KeepWithinDaily, WithinWeekly: r.KeepWithinWeekly,
		WithinMonthly: r.KeepWithinMonthly, WithinYearly: r.KeepWithinYearly}
}

// applyRetention forgets the job's snapshots in one repository by its
// policy, and prunes when asked — unless the repository prunes on its
// own schedule: then the forget is all.
func (a *App) applyRetention(ctx context.Context, j *plan.Job, repo *plan.Repository, r Repo, ret plan.Retention, log io.Writer) error {
	if ret.Empty() {
		return nil
	}
	req := ForgetRequest{Repo: r, Policy: RetentionPolicy(ret),
		Filter: snapshot.Filter{Tags: []string{JobTag(j.Name)}}, GroupBy: "tags"}
	if ret.Prune && !repo.PrunesOnSchedule() {
		// The defaults of prune's flags: 5% unused space tolerated, no
		// safety window.
		req.Prune = &maintenance.Options{MaxUnused: 0.05}
	}
	fmt.Fprintf(log, "retention in %s: %s%s\n", repo.Name, req.Policy, retentionSuffix(repo, ret))
	uc := a.With(&LogEvents{W: LockedWriter(log)})
	defer uc.Close()
	res, err := uc.Forget(ctx, req)
	if res != nil {
		for _, l := range res.Locked {
			fmt.Fprintf(log, "warning: snapshot %s is under Object Lock until %s: a forget after that removes it\n", l.Snapshot.ShortID(), l.Until.Local().Format("2006-01-02 15:04"))
		}
	}
	if err != nil {
		return fmt.Errorf("retention in %s failed: %w", repo.Name, err)
	}
	fmt.Fprintf(log, "removed %s\n", plural(int64(res.Removed), "snapshot"))
	if pr := res.Prune; pr != nil {
		logPrune(log, &pr.Result)
	}
	return nil
}
