package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/state"
	"github.com/spf13/cobra"
)

func (a *App) runCommand() *cobra.Command {
	var planFile string
	cmd := &cobra.Command{
		Use:               "run JOB",
		Short:             "Run a plan's job now: hooks, backup, copies, retention",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeJobs(&planFile),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.loadPlan(planFile)
			if err != nil {
				return err
			}
			j, err := p.FindJob(args[0])
			if err != nil {
				return err
			}
			var show io.Writer
			if a.g.verbose > 0 && !a.g.json {
				show = a.Stderr
			}
			// Hooks and tools may print secrets; the log may be a
			// journal or a cron mail, and goes to the run history.
			log := a.newRunLog(cmd.Context(), p, show)
			res, err := a.runJob(cmd.Context(), p, j, log)
			a.recordRun(cmd.Context(), p, &state.Run{Job: j.Name, Kind: state.KindBackup, Repository: j.Repository,
				Started: res.Started, Finished: res.Finished, Result: runResult(err), Error: res.Error, Attempt: res.Attempts,
				Snapshot: res.Snapshot, BytesRead: res.BytesRead, BytesAdded: res.BytesAdded, Log: log.String()})
			if a.g.json {
				m := map[string]any{"message_type": "summary"}
				b, _ := json.Marshal(res)
				_ = json.Unmarshal(b, &m)
				a.out.jsonLine(m)
			} else {
				a.printJobResult(res)
			}
			if err != nil {
				return err
			}
			if repo := res.CopyFailed(); repo != "" {
				return &app.PartialError{Msg: fmt.Sprintf("job %s: backup %s saved, but the copy to %s failed", j.Name, short(res.Snapshot), repo)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&planFile, "plan", "", "the plan `file` (default $BUNKER_PLAN, else plan.yaml in $XDG_CONFIG_HOME/bunker or /etc/bunker)")
	return cmd
}

// runResult is the history's result of a run that returned err.
func runResult(err error) string {
	switch {
	case err == nil:
		return state.ResultSuccess
	case errors.Is(err, context.Canceled):
		return state.ResultCancelled
	}
	return state.ResultFailed
}

func (a *App) printJobResult(r *app.JobResult) {
	if r.Error != "" {
		a.out.textf("job %s failed after %d attempt(s): %s", r.Job, r.Attempts, r.Error)
		return
	}
	a.out.textf("job %s: snapshot %s in %s (%s read, %s added) in %s", r.Job, short(r.Snapshot), r.Repository,
		formatBytes(r.BytesRead), formatBytes(r.BytesAdded), formatDuration(r.Finished.Sub(r.Started)))
	for repo, st := range r.Copies {
		a.out.textf("  copy to %s: %s", repo, st)
	}
}

// runJob runs a job with its retries (app.RunJob); the log receives
// every step's output.
func (a *App) runJob(ctx context.Context, p *plan.Plan, j *plan.Job, log io.Writer) (*app.JobResult, error) {
	c, err := a.core()
	if err != nil {
		// The global flags are wrong: the run fails before it starts,
		// and its on_failure hooks still hear why.
		now := time.Now()
		(&app.App{Getenv: a.Getenv}).RunFailureHooks(ctx, j, err, log)
		return &app.JobResult{Job: j.Name, Repository: j.Repository, Started: now, Finished: now, Attempts: 1, Error: err.Error()}, err
	}
	defer func() { _ = c.Close() }()
	return c.RunJob(ctx, app.JobRequest{Plan: p, Job: j, Log: log, KubeConfig: a.kubeJobConfig})
}

// planSecret resolves a plan's secret reference.
func (a *App) planSecret(ctx context.Context, ref string) (string, error) {
	return (&app.App{Getenv: a.Getenv}).PlanSecret(ctx, ref)
}
