package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/daemon"
	"github.com/bunkerbackup/bunker/internal/monitor"
	"github.com/bunkerbackup/bunker/internal/timespec"
	"github.com/spf13/cobra"
)

func (a *App) statusCommand() *cobra.Command {
	var planFile, at, stateDir string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every job's RPO state and every dataset's 3-2-1 state, measured",
		Args:  cobra.NoArgs,
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
			h, err := (daemon.HistoryClient{Getenv: a.Getenv, Secret: a.planSecret}).Read(cmd.Context(), p, stateDir)
			if err != nil {
				a.out.warnf("run history: %v", err)
			}
			res, err := a.appRunner().MeasurePlan(cmd.Context(), app.MeasureRequest{Plan: p, Now: now, Known: h.Jobs,
				JudgeDrills: true, Drills: h.Drills, DrillsKnown: h.Known, Secret: a.planSecret})
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

func (a *App) printStatus(st *monitor.Status) {
	age := func(s float64) string { return monitor.FormatAge(time.Duration(s * float64(time.Second))) }
	upper := func(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "_", " ")) }
	const stamp = "2006-01-02 15:04"
	rows := [][]string{{"JOB", "SOURCE", "LAST BACKUP", "AGE", "RPO", "STATE", "NEXT RUN"}}
	for _, j := range st.Jobs {
		last, ago, rpo := "never", "-", "-"
		if j.LastSuccess != nil {
			last, ago = j.LastSuccess.Local().Format(stamp), age(j.AgeSeconds)
		}
		if j.RPOSeconds > 0 {
			rpo = age(j.RPOSeconds)
		}
		rows = append(rows, []string{j.Name, j.Source, last, ago, rpo, upper(j.RPOState), j.NextRun.Local().Format(stamp)})
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
				last, restore = d.LastRun.Local().Format(stamp), fmt.Sprintf("%.1fs", d.RestoreSeconds)
			}
			if d.RTOSeconds > 0 {
				rto = age(d.RTOSeconds)
			}
			rows = append(rows, []string{d.Name, d.Job, last, strings.ToUpper(d.LastResult), restore, rto, upper(d.RTOState)})
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
