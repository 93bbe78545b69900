package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/checker"
	"github.com/bunkerbackup/bunker/internal/engine/maintenance"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/units"
)

// PlanRepo is the repository of plan p named name, ready to open: its
// password and the secret references among its env values resolved
// (PlanSecret), its bandwidth limits parsed. Every use case that opens a
// plan's repository gets it from here, so each sees the same
// environment and limits.
func (a *App) PlanRepo(ctx context.Context, p *plan.Plan, name string) (Repo, error) {
	r := p.Repository(name)
	if r == nil {
		return Repo{}, fmt.Errorf("the plan has no repository %q", name)
	}
	repo, err := a.planRepo(ctx, r, a.PlanSecret)
	if err != nil {
		return Repo{}, fmt.Errorf("repository %s %w", r.Name, err)
	}
	return repo, nil
}

// planRepo resolves r with secret; its errors name the key that failed
// ("password: …"), not the repository.
func (a *App) planRepo(ctx context.Context, r *plan.Repository, secret func(context.Context, string) (string, error)) (Repo, error) {
	pw, err := secret(ctx, r.Password)
	if err != nil {
		return Repo{}, fmt.Errorf("password: %w", err)
	}
	repo := Repo{Location: r.Location, Password: pw}
	if len(r.Env) > 0 {
		names := make([]string, 0, len(r.Env))
		for k := range r.Env {
			names = append(names, k)
		}
		sort.Strings(names)
		repo.Env = make(map[string]string, len(r.Env))
		for _, k := range names {
			v := r.Env[k]
			if plan.IsSecretRef(v) {
				if v, err = secret(ctx, v); err != nil {
					return Repo{}, fmt.Errorf("env %s: %w", k, err)
				}
			}
			repo.Env[k] = v
		}
	}
	if repo.UploadBytes, err = units.ParseRate(r.LimitUpload); err != nil {
		return Repo{}, fmt.Errorf("limit_upload: %w", err)
	}
	if repo.DownloadBytes, err = units.ParseRate(r.LimitDownload); err != nil {
		return Repo{}, fmt.Errorf("limit_download: %w", err)
	}
	return repo, nil
}

// aroundRepo runs do between a plan repository's hooks: its before
// hooks, then do, then its after hooks — or its on_failure hooks when a
// before hook or do failed (even when ctx has ended). vars are the run's
// variables (BUNKER_JOB, BUNKER_ACTION); the hooks get BUNKER_REPOSITORY
// too, BUNKER_RESULT, what do returns for the after hooks
// (BUNKER_SNAPSHOT), and BUNKER_ERROR in on_failure. A failed after hook
// is logged, as a job's is: the work is done.
func (a *App) aroundRepo(ctx context.Context, r *plan.Repository, vars []string, log io.Writer, do func() ([]string, error)) error {
	vars = append(slices.Clip(vars), "BUNKER_REPOSITORY="+r.Name)
	var err error
	for _, h := range r.Hooks.Before {
		if herr := a.RunHook(ctx, h, vars, log); herr != nil {
			err = fmt.Errorf("repository %s before hook: %w", r.Name, herr)
			break
		}
	}
	var more []string
	if err == nil {
		more, err = do()
	}
	if err != nil {
		env := append(slices.Clip(vars), "BUNKER_RESULT=failed", "BUNKER_ERROR="+err.Error())
		for _, h := range r.Hooks.OnFailure {
			if herr := a.RunHook(context.WithoutCancel(ctx), h, env, log); herr != nil {
				fmt.Fprintf(log, "repository %s on_failure hook: %v\n", r.Name, herr)
			}
		}
		return err
	}
	env := append(append(slices.Clip(vars), "BUNKER_RESULT=success"), more...)
	for _, h := range r.Hooks.After {
		if herr := a.RunHook(ctx, h, env, log); herr != nil {
			fmt.Fprintf(log, "repository %s after hook: %v\n", r.Name, herr)
		}
	}
	return nil
}

// RepoTaskRequest is a plan repository's check or prune: what the
// daemon runs on the repository's check and prune schedules.
type RepoTaskRequest struct {
	Plan       *plan.Plan
	Repository string
	// Log receives every step's output: the run log.
	Log io.Writer
}

func (req RepoTaskRequest) repository() (*plan.Repository, error) {
	if req.Plan == nil {
		return nil, errors.New("no plan")
	}
	r := req.Plan.Repository(req.Repository)
	if r == nil {
		return nil, fmt.Errorf("the plan has no repository %q", req.Repository)
	}
	return r, nil
}

// RunRepoCheck checks a plan repository between its hooks
// (BUNKER_ACTION=check): its structure and, with the check's
// read_data_subset, that part of its data. Without a check in the plan
// it checks the structure only.
func (a *App) RunRepoCheck(ctx context.Context, req RepoTaskRequest) (*CheckResult, error) {
	r, err := req.repository()
	if err != nil {
		return nil, err
	}
	var opts checker.Options
	what := "structure"
	if r.Check != nil && r.Check.ReadDataSubset != "" {
		if err := ParseReadDataSubset(r.Check.ReadDataSubset, &opts); err != nil {
			return nil, fmt.Errorf("repository %s: %w", r.Name, err)
		}
		what = "structure and data (" + r.Check.ReadDataSubset + ")"
	}
	log := req.Log
	var res *CheckResult
	err = a.aroundRepo(ctx, r, []string{"BUNKER_ACTION=check"}, log, func() ([]string, error) {
		repo, err := a.planRepo(ctx, r, a.PlanSecret)
		if err != nil {
			return nil, fmt.Errorf("repository %s %w", r.Name, err)
		}
		fmt.Fprintf(log, "check of %s: %s\n", r.Name, what)
		uc := a.With(&LogEvents{W: LockedWriter(log)})
		defer uc.Close()
		start := time.Now()
		res, err = uc.Check(ctx, CheckRequest{Repo: repo, Options: opts})
		if res != nil {
			fmt.Fprintf(log, "%d snapshots, %d packs, %d blobs; %d packs read (%s) in %s\n", res.Snapshots, res.Packs, res.Blobs,
				res.PacksRead, FormatBytes(res.BytesRead), time.Since(start).Round(time.Millisecond))
			for _, p := range res.Problems {
				if p.Harmless {
					fmt.Fprintf(log, "note: %v (harmless)\n", p)
				} else {
					fmt.Fprintf(log, "problem: %v\n", p)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("check of %s: %w", r.Name, err)
		}
		return nil, nil
	})
	return res, err
}

// RunRepoPrune prunes a plan repository between its hooks
// (BUNKER_ACTION=prune) with its prune's max_unused (default 5%): the
// space the forgets of the jobs' retention left behind is freed here,
// on the repository's schedule, not after every backup.
func (a *App) RunRepoPrune(ctx context.Context, req RepoTaskRequest) (*PruneResult, error) {
	r, err := req.repository()
	if err != nil {
		return nil, err
	}
	maxUnused := 0.05
	if r.Prune != nil {
		if maxUnused, err = r.Prune.MaxUnusedFraction(); err != nil {
			return nil, fmt.Errorf("repository %s: %w", r.Name, err)
		}
	}
	log := req.Log
	var res *PruneResult
	err = a.aroundRepo(ctx, r, []string{"BUNKER_ACTION=prune"}, log, func() ([]string, error) {
		repo, err := a.planRepo(ctx, r, a.PlanSecret)
		if err != nil {
			return nil, fmt.Errorf("repository %s %w", r.Name, err)
		}
		tolerated := "unlimited"
		if maxUnused >= 0 {
			tolerated = fmt.Sprintf("%g%%", maxUnused*100)
		}
		fmt.Fprintf(log, "prune of %s (unused space tolerated: %s)\n", r.Name, tolerated)
		uc := a.With(&LogEvents{W: LockedWriter(log)})
		defer uc.Close()
		res, err = uc.Prune(ctx, PruneRequest{Repo: repo, Options: maintenance.Options{MaxUnused: maxUnused}})
		if err != nil {
			return nil, fmt.Errorf("prune of %s: %w", r.Name, err)
		}
		logPrune(log, &res.Result)
		return nil, nil
	})
	return res, err
}

// logPrune writes what a prune did to a run log.
func logPrune(log io.Writer, pr *maintenance.Result) {
	fmt.Fprintf(log, "prune: deleted %d packs (%s)\n", pr.PacksDeleted, FormatBytes(pr.BytesDeleted))
	if pr.RepackFailed > 0 {
		fmt.Fprintf(log, "warning: prune: left %d packs alone: a blob a snapshot needs could not be read back from them; run 'bunker check --read-data'\n", pr.RepackFailed)
	}
	if n := len(pr.UnreadablePlans); n > 0 {
		fmt.Fprintf(log, "warning: prune: ignored %d unreadable maintenance plans (damaged or planted); 'bunker repair maint' removes them\n", n)
	}
}

// retentionSuffix is what a retention log line says about prune.
func retentionSuffix(repo *plan.Repository, r plan.Retention) string {
	switch {
	case repo.PrunesOnSchedule():
		return " (prune runs on the repository's schedule, " + strings.TrimSpace(repo.Prune.Schedule) + ")"
	case r.Prune:
		return ", then prune"
	}
	return ""
}
