package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/maintenance"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/redact"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/state"
	"github.com/spf13/cobra"
)

// jobTag marks the snapshots of a plan job, in every repository.
func jobTag(job string) string { return "job=" + job }

// jobResult is the outcome of one run of a plan job.
type jobResult struct {
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

func (a *App) runCommand() *cobra.Command {
	var planFile string
	cmd := &cobra.Command{
		Use:   "run JOB",
		Short: "Run a plan's job now: hooks, backup, copies, retention",
		Long: `Run one job of a plan file now: its before hooks, the backup into its
repository, a copy to each of its copy repositories, retention (forget,
and prune when the policy says so) in each, then its after hooks — or its
on_failure hooks when anything failed. A failed run is retried as the
job's retries say. Snapshots get the tag job=JOB, which status and
retention use.

Exit code 0 when everything succeeded, 3 when the backup succeeded but a
copy or retention did not; when the backup failed, the exit code of its
cause (10 no repository, 11 wrong password, …; see bunker --help), else 1.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.loadPlan(planFile)
			if err != nil {
				return err
			}
			j := p.Job(args[0])
			if j == nil {
				var names []string
				for _, j := range p.Jobs {
					names = append(names, j.Name)
				}
				return fmt.Errorf("plan %s has no job %q (jobs: %s)", p.File, args[0], strings.Join(names, ", "))
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
			for repo, st := range res.Copies {
				if st != "ok" && !strings.HasPrefix(st, "skipped") {
					return &app.PartialError{Msg: fmt.Sprintf("job %s: backup %s saved, but the copy to %s failed", j.Name, short(res.Snapshot), repo)}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&planFile, "plan", "", "the plan `file` (default $BUNKER_PLAN)")
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

func (a *App) printJobResult(r *jobResult) {
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

// runJob runs a job with its retries; the log receives every step's
// output.
func (a *App) runJob(ctx context.Context, p *plan.Plan, j *plan.Job, log io.Writer) (*jobResult, error) {
	res := &jobResult{Job: j.Name, Repository: j.Repository, Started: time.Now()}
	attempts := max(j.Retries.Attempts, 0) + 1
	backoff := j.Retries.Backoff
	if backoff <= 0 {
		backoff = 30 * time.Second
	}
	var err error
	for res.Attempts = 1; ; res.Attempts++ {
		err = a.runJobOnce(ctx, p, j, res, log)
		if err == nil || res.Attempts >= attempts || ctx.Err() != nil {
			break
		}
		wait := backoff << (res.Attempts - 1)
		fmt.Fprintf(log, "attempt %d failed: %v; retrying in %s\n", res.Attempts, err, wait)
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

func (a *App) runJobOnce(ctx context.Context, p *plan.Plan, j *plan.Job, res *jobResult, log io.Writer) (err error) {
	if j.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, j.Timeout, fmt.Errorf("job %s: timeout %s", j.Name, j.Timeout))
		defer cancel()
	}
	hookEnv := []string{"BUNKER_JOB=" + j.Name}
	defer func() {
		if err != nil {
			env := append(hookEnv, "BUNKER_RESULT=failed", "BUNKER_ERROR="+err.Error())
			for _, h := range j.Hooks.OnFailure {
				if herr := a.runHook(context.WithoutCancel(ctx), h, env, log); herr != nil {
					fmt.Fprintf(log, "on_failure hook: %v\n", herr)
				}
			}
		}
	}()
	for _, h := range j.Hooks.Before {
		if err := a.runHook(ctx, h, hookEnv, log); err != nil {
			return fmt.Errorf("before hook: %w", err)
		}
	}
	main := p.Repository(j.Repository)
	mainPw, err := a.planSecret(ctx, main.Password)
	if err != nil {
		return fmt.Errorf("repository %s password: %w", main.Name, err)
	}
	if err := a.jobBackup(ctx, j, app.Repo{Location: main.Location, Password: mainPw}, res, log); err != nil {
		return fmt.Errorf("backup into %s failed: %w", main.Name, err)
	}

	res.Copies = map[string]string{}
	var copyErrs []error
	for _, c := range j.Copies {
		st := a.copyJob(ctx, p, j, main, mainPw, c, log)
		res.Copies[c.Repository] = st
		if st != "ok" && !strings.HasPrefix(st, "skipped") {
			copyErrs = append(copyErrs, fmt.Errorf("copy to %s: %s", c.Repository, st))
		}
	}
	if err := a.applyRetention(ctx, j, main, mainPw, j.Retention, log); err != nil {
		copyErrs = append(copyErrs, err)
	}
	for _, h := range j.Hooks.After {
		if err := a.runHook(ctx, h, append(hookEnv, "BUNKER_RESULT=success", "BUNKER_SNAPSHOT="+res.Snapshot), log); err != nil {
			fmt.Fprintf(log, "after hook: %v\n", err)
		}
	}
	for _, e := range copyErrs {
		fmt.Fprintf(log, "%v\n", e)
	}
	return nil
}

// jobBackup runs the backup of a job into repo and records what it did in
// res. A backup that saved its snapshot without some unreadable source
// files counts as done.
func (a *App) jobBackup(ctx context.Context, j *plan.Job, repo app.Repo, res *jobResult, log io.Writer) error {
	s := j.Source
	switch s.Type {
	case "files", "stdin", "postgres", "mysql", "mongodb", "kubernetes":
	default:
		return fmt.Errorf("source type %q cannot be run", s.Type)
	}
	c, err := a.core()
	if err != nil {
		return err
	}
	c = c.With(&app.LogEvents{W: lockedWriter(log)})
	defer func() { _ = c.Close() }() // what it opened outside a scope (bunker run)
	tags := append([]string{jobTag(j.Name)}, j.Tags...)
	var out *app.BackupResult
	switch s.Type {
	case "postgres":
		b, berr := a.jobPostgresBackup(ctx, j, repo, tags)
		if berr != nil {
			return berr
		}
		fmt.Fprintf(log, "backup postgres (%s) into %s\n", backupKind(b.Physical), redact.URLs(repo.Location))
		out, err = c.RunPostgresBackup(ctx, b)
	case "mysql":
		b, berr := a.jobMySQLBackup(ctx, j, repo, tags)
		if berr != nil {
			return berr
		}
		fmt.Fprintf(log, "backup mysql (%s) into %s\n", backupKind(b.Options.Physical), redact.URLs(repo.Location))
		out, err = c.RunMySQLBackup(ctx, b)
	case "mongodb":
		b, berr := a.jobMongoBackup(ctx, j, repo, tags)
		if berr != nil {
			return berr
		}
		fmt.Fprintf(log, "backup mongodb into %s\n", redact.URLs(repo.Location))
		out, err = c.RunMongoBackup(ctx, b)
	case "kubernetes":
		b, berr := a.jobKubeBackup(j, repo, tags)
		if berr != nil {
			return berr
		}
		fmt.Fprintf(log, "backup kubernetes (cluster %s) into %s\n", b.Cluster, redact.URLs(repo.Location))
		out, err = c.RunKubernetesBackup(ctx, b)
	default:
		b := app.Backup{Repo: repo, Tags: tags}
		if s.Type == "files" {
			b.Paths, b.Exclude.Patterns = s.Paths, s.Exclude
			fmt.Fprintf(log, "backup of %s into %s\n", strings.Join(s.Paths, ", "), redact.URLs(repo.Location))
		} else {
			b.StreamCommand, b.StreamName, b.StreamStderr = s.Command, s.Filename, log
			if b.StreamName == "" {
				b.StreamName = j.Name
			}
			fmt.Fprintf(log, "backup of the output of %s as %s into %s\n", strings.Join(redactArgs(s.Command), " "), b.StreamName, redact.URLs(repo.Location))
		}
		if len(b.StreamCommand) == 0 && s.Type == "stdin" {
			return errors.New("a stdin job needs a command")
		}
		out, err = c.RunBackup(ctx, b)
	}
	var pe *app.PartialError
	if err != nil && !errors.As(err, &pe) {
		return err
	}
	if err != nil {
		fmt.Fprintf(log, "warning: %v\n", err)
	}
	sum := out.Snapshot.Summary
	res.Snapshot, res.BytesRead, res.BytesAdded = out.Snapshot.ID.String(), sum.BytesRead, sum.BytesAdded
	fmt.Fprintf(log, "snapshot %s saved (%s read, %s added)\n", out.Snapshot.ShortID(), formatBytes(sum.BytesRead), formatBytes(sum.BytesAdded))
	return nil
}

// copyJob copies the job's snapshots to one copy repository and applies
// the copy's retention there. It returns "ok", "skipped: …" for an
// air-gapped repository that is not attached, or what failed.
func (a *App) copyJob(ctx context.Context, p *plan.Plan, j *plan.Job, main *plan.Repository, mainPw string, c *plan.Copy, log io.Writer) string {
	dst := p.Repository(c.Repository)
	pw, err := a.planSecret(ctx, dst.Password)
	if err != nil {
		return fmt.Sprintf("password: %v", err)
	}
	core, err := a.core()
	if err != nil {
		return "failed: " + err.Error()
	}
	fmt.Fprintf(log, "copy of the snapshots of job %s from %s to %s\n", j.Name, redact.URLs(main.Location), redact.URLs(dst.Location))
	uc := core.With(&app.LogEvents{W: lockedWriter(log)})
	defer uc.Close()
	res, err := uc.Copy(ctx, app.CopyRequest{From: app.Repo{Location: main.Location, Password: mainPw},
		To: app.Repo{Location: dst.Location, Password: pw}, Filter: snapshot.Filter{Tags: []string{jobTag(j.Name)}}})
	if err != nil {
		if dst.Airgapped {
			return "skipped: not attached (" + err.Error() + ")"
		}
		return "failed: " + err.Error()
	}
	fmt.Fprintf(log, "copied %d snapshots (%d already there): %d new blobs, %s (%s stored)\n",
		res.Copied, res.Skipped, res.BlobsAdded, formatBytes(res.BytesAdded), formatBytes(res.BytesStored))
	if err := a.applyRetention(ctx, j, dst, pw, c.Retention, log); err != nil {
		return err.Error()
	}
	return "ok"
}

// applyRetention forgets the job's snapshots in one repository by its
// policy (and prunes when asked).
func (a *App) applyRetention(ctx context.Context, j *plan.Job, repo *plan.Repository, pw string, r plan.Retention, log io.Writer) error {
	if r.Empty() {
		return nil
	}
	core, err := a.core()
	if err != nil {
		return fmt.Errorf("retention in %s failed: %w", repo.Name, err)
	}
	req := app.ForgetRequest{Repo: app.Repo{Location: repo.Location, Password: pw},
		Policy: snapshot.Policy{Last: r.KeepLast, Hourly: r.KeepHourly, Daily: r.KeepDaily, Weekly: r.KeepWeekly,
			Monthly: r.KeepMonthly, Yearly: r.KeepYearly, Within: r.KeepWithin,
			WithinHourly: r.KeepWithinHourly, WithinDaily: r.KeepWithinDaily, WithinWeekly: r.KeepWithinWeekly,
			WithinMonthly: r.KeepWithinMonthly, WithinYearly: r.KeepWithinYearly},
		Filter: snapshot.Filter{Tags: []string{jobTag(j.Name)}}, GroupBy: "tags"}
	then := ""
	if r.Prune {
		// The defaults of prune's flags: 5% unused space tolerated, no
		// safety window.
		req.Prune = &maintenance.Options{MaxUnused: 0.05}
		then = ", then prune"
	}
	fmt.Fprintf(log, "retention in %s: %s%s\n", repo.Name, req.Policy, then)
	uc := core.With(&app.LogEvents{W: lockedWriter(log)})
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
		fmt.Fprintf(log, "prune: deleted %d packs (%s)\n", pr.PacksDeleted, formatBytes(pr.BytesDeleted))
		if pr.RepackFailed > 0 {
			fmt.Fprintf(log, "warning: prune: left %d packs alone: a blob a snapshot needs could not be read back from them; run 'bunker check --read-data'\n", pr.RepackFailed)
		}
		if n := len(pr.UnreadablePlans); n > 0 {
			fmt.Fprintf(log, "warning: prune: ignored %d unreadable maintenance plans (damaged or planted); 'bunker repair maint' removes them\n", n)
		}
	}
	return nil
}

// planSecret resolves a plan's secret reference.
func (a *App) planSecret(ctx context.Context, ref string) (string, error) {
	return plan.ResolveSecret(ref, a.Getenv, func(c string) (string, error) {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", c)
		cmd.Env = source.ChildEnv() // one secret's command sees no other
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("secret command failed: %v: %s", err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimRight(string(out), "\r\n"), nil
	})
}

// redactArgs keeps the user information and secret query values of
// locations and DSNs out of logs (redact.URLs: parsed the way net/url
// parses, so a password holding '@' is hidden whole).
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, s := range args {
		out[i] = redact.URLs(s)
	}
	return out
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func lockedWriter(w io.Writer) io.Writer {
	if _, ok := w.(*syncWriter); ok {
		return w
	}
	return &syncWriter{w: w}
}

// runHook runs a hook command with its timeout (default 5 minutes),
// killing its process group when the time is up. The hook's environment
// is hookEnv's: the basics, what the plan passes, and vars.
func (a *App) runHook(ctx context.Context, h *plan.Hook, vars []string, log io.Writer) error {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", h.Command)
	cmd.Env = a.hookEnv(h.Env, vars...)
	w := lockedWriter(log)
	cmd.Stdout, cmd.Stderr = w, w
	hookProcessGroup(cmd)
	cmd.WaitDelay = 2 * time.Second
	fmt.Fprintf(log, "$ %s\n", h.Command)
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%q killed after its timeout of %s", h.Command, timeout)
	}
	if err != nil {
		return fmt.Errorf("%q: %w", h.Command, err)
	}
	return nil
}
