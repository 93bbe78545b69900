package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/daemon"
	"github.com/bunkerbackup/bunker/internal/monitor"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/state"
	"github.com/bunkerbackup/bunker/internal/timespec"
	"github.com/spf13/cobra"
)

func (a *App) statusCommand() *cobra.Command {
	var planFile, at, stateDir string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every job's RPO state and every dataset's 3-2-1 state, measured",
		Long: `Measure the plan against reality: open every repository, find each job's
newest snapshot (tag job=NAME), and report per job its age against the
RPO (ok, at risk past 75% of it or when its repository cannot be read,
violated past it), and per dataset how many copies exist (the live data
plus each repository holding a backup), on how many media, how many off
site and immutable — with the rule that is missing.

Drills: the last result of each and its restore time against the job's
RTO, from the running daemon's API (daemon.listen) or, when no daemon
runs, its state directory. The same history stands in for a repository
that cannot be read: its job's last known backup still ages into a
violation.

Exit code 4 when any objective is violated, a rule is missing or the
last drill failed, so it can gate a monitoring check; 0 when all is well.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.loadPlan(planFile)
			if err != nil {
				return err
			}
			now := time.Now()
			if at != "" {
				if now, err = timespec.ParseTime(at); err != nil {
					return fmt.Errorf("--at: %w", err)
				}
			}
			h := a.daemonHistory(cmd.Context(), p, stateDir)
			res, err := a.measure(cmd.Context(), app.MeasureRequest{Plan: p, Now: now, Known: h.jobs,
				JudgeDrills: true, Drills: h.drills, DrillsKnown: h.known, Secret: a.planSecret})
			if err != nil {
				return err
			}
			if a.g.json {
				a.out.jsonLine(struct {
					MessageType string `json:"message_type"`
					*monitor.Status
				}{"plan_status", res.Status})
			} else {
				a.printStatus(res.Status)
			}
			return res.Violated()
		},
	}
	cmd.Flags().StringVar(&planFile, "plan", "", "the plan `file` (default $BUNKER_PLAN, else plan.yaml in $XDG_CONFIG_HOME/bunker or /etc/bunker)")
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "the daemon's state `directory`, for drill results when no daemon API answers (default: as bunker daemon)")
	cmd.Flags().StringVar(&at, "at", "", "judge ages as of this `time` (RFC 3339, 2026-11-26 09:41:00+00, or local 2026-11-26 09:41:00; for what-if checks and tests)")
	return cmd
}

// measure measures with the use cases' App; when the global flags
// cannot make one, every repository is judged unreadable with that
// error (the run history still stands in for them).
func (a *App) measure(ctx context.Context, req app.MeasureRequest) (*app.MeasureResult, error) {
	c, err := a.core()
	if err != nil {
		return app.Unmeasured(req, err), nil
	}
	return c.Measure(ctx, req)
}

// history is what the daemon's run history says: each drill's last
// finished run and each job's last successful backup.
type history struct {
	drills map[string]monitor.DrillRun
	jobs   map[string]monitor.SnapshotRef
	known  bool // false when neither the API nor the state could be read
}

// daemonHistory reads the run history from the running daemon's API when
// the plan has daemon.listen, else from its state database when no
// daemon holds it.
func (a *App) daemonHistory(ctx context.Context, p *plan.Plan, stateDir string) history {
	h := history{drills: map[string]monitor.DrillRun{}, jobs: map[string]monitor.SnapshotRef{}}
	if addr := p.Daemon.Listen; addr != "" {
		if strings.HasPrefix(addr, ":") {
			addr = "127.0.0.1" + addr
		}
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/api/v1/status", nil)
		// A daemon with a token answers only with it: the read token
		// when the plan has one, else the run token. One this process
		// cannot resolve is left out; the state database stands in.
		for _, ref := range []string{p.Daemon.APIReadToken, p.Daemon.APIToken} {
			if ref == "" {
				continue
			}
			if tok, err := a.planSecret(ctx, ref); err == nil && tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			break
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			defer resp.Body.Close()
			var st daemon.APIStatus
			if resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&st) == nil {
				for _, d := range st.Drills {
					if r := d.LastRun; r != nil && r.Result != state.ResultRunning {
						h.drills[d.Name] = monitor.DrillRun{Result: r.Result, Time: r.Started, RestoreSeconds: r.RestoreSeconds, Error: r.Error}
					} else if r := d.LastSuccess; r != nil {
						h.drills[d.Name] = monitor.DrillRun{Result: r.Result, Time: r.Started, RestoreSeconds: r.RestoreSeconds}
					}
				}
				for _, j := range st.Jobs {
					if r := j.LastSuccess; r != nil {
						h.jobs[j.Name] = monitor.SnapshotRef{ID: r.Snapshot, Time: r.Started}
					}
				}
				h.known = true
				return h
			}
		}
	}
	path := filepath.Join(a.stateDir(p, stateDir), "state.db")
	if _, err := os.Stat(path); err != nil {
		return h
	}
	store, err := state.Open(path, state.Options{LockTimeout: 500 * time.Millisecond})
	if err != nil {
		a.out.warnf("run history: %v", err)
		return h
	}
	defer store.Close()
	h.drills = daemon.LastDrillRuns(store, p)
	for _, j := range p.Jobs {
		if r, err := store.LastSuccess(j.Name, state.KindBackup); err == nil && r != nil {
			h.jobs[j.Name] = monitor.SnapshotRef{ID: r.Snapshot, Time: r.Started}
		}
	}
	h.known = true
	return h
}

func (a *App) printStatus(st *monitor.Status) {
	rows := [][]string{{"JOB", "SOURCE", "LAST BACKUP", "AGE", "RPO", "STATE", "NEXT RUN"}}
	for _, j := range st.Jobs {
		last, age, rpo := "never", "-", "-"
		if j.LastSuccess != nil {
			last = j.LastSuccess.Local().Format("2006-01-02 15:04")
			age = monitor.FormatAge(time.Duration(j.AgeSeconds * float64(time.Second)))
		}
		if j.RPOSeconds > 0 {
			rpo = monitor.FormatAge(time.Duration(j.RPOSeconds * float64(time.Second)))
		}
		rows = append(rows, []string{j.Name, j.Source, last, age, rpo, strings.ToUpper(strings.ReplaceAll(j.RPOState, "_", " ")), j.NextRun.Local().Format("2006-01-02 15:04")})
	}
	table(a.Stdout, rows[0], rows[1:])
	a.out.textf("")
	rows = [][]string{{"DATASET", "COPIES", "MEDIA", "OFFSITE", "IMMUTABLE", "3-2-1"}}
	for _, d := range st.Datasets {
		verdict := "ok"
		if !d.OK {
			verdict = "missing " + strings.Join(d.Missing, "; ")
		}
		rows = append(rows, []string{d.Job, fmt.Sprintf("%d/%d", d.Copies, d.Rule.Copies), fmt.Sprintf("%d/%d", len(d.Media), d.Rule.Media),
			fmt.Sprintf("%d/%d", d.Offsite, d.Rule.Offsite), fmt.Sprintf("%d/%d", d.Immutable, d.Rule.Immutable), verdict})
	}
	table(a.Stdout, rows[0], rows[1:])
	if len(st.Drills) > 0 {
		a.out.textf("")
		rows = [][]string{{"DRILL", "JOB", "LAST RUN", "RESULT", "RESTORE", "RTO", "RTO STATE"}}
		for _, d := range st.Drills {
			last, restore, rto := "-", "-", "-"
			if d.LastRun != nil {
				last = d.LastRun.Local().Format("2006-01-02 15:04")
				restore = fmt.Sprintf("%.1fs", d.RestoreSeconds)
			}
			if d.RTOSeconds > 0 {
				rto = monitor.FormatAge(time.Duration(d.RTOSeconds * float64(time.Second)))
			}
			rows = append(rows, []string{d.Name, d.Job, last, strings.ToUpper(d.LastResult), restore, rto, strings.ToUpper(strings.ReplaceAll(d.RTOState, "_", " "))})
		}
		table(a.Stdout, rows[0], rows[1:])
	}
	for _, r := range st.Repositories {
		if !r.Reachable {
			a.out.textf("repository %s cannot be read: %s", r.Name, r.Error)
		}
	}
	if len(st.Violations) == 0 {
		a.out.textf("\nall objectives met")
	}
}
