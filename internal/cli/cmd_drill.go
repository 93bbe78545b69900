package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/state"
	"github.com/spf13/cobra"
)

func (a *App) drillCommand() *cobra.Command {
	var planFile string
	cmd := &cobra.Command{
		Use:               "drill NAME",
		Short:             "Run a restore drill now (a drill of the plan, or every drill of a job)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeDrills(&planFile),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.loadPlan(planFile)
			if err != nil {
				return err
			}
			drills, err := p.DrillsFor(args[0])
			if err != nil {
				return err
			}
			failed := 0
			for _, d := range drills {
				if err := a.drill(cmd.Context(), p, d); err != nil {
					failed++
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d drill(s) failed", failed, len(drills))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&planFile, "plan", "", "the plan `file` (default $BUNKER_PLAN, else plan.yaml in $XDG_CONFIG_HOME/bunker or /etc/bunker)")
	return cmd
}

// drill runs one drill, records it in the history and prints its
// outcome; it returns the drill's error.
func (a *App) drill(ctx context.Context, p *plan.Plan, d *plan.Drill) error {
	var show io.Writer
	if a.g.verbose > 0 && !a.g.json {
		show = a.Stderr
	}
	log := a.newRunLog(ctx, p, show)
	started := time.Now()
	out, err := a.runDrill(ctx, p, d, log)
	run := &state.Run{Job: d.Name, Kind: state.KindDrill, Started: started, Finished: time.Now(), Result: runResult(err),
		Snapshot: out.Snapshot, RestoreSeconds: out.RestoreSeconds, Log: log.String()}
	j := p.Job(d.Job)
	if j != nil {
		run.Repository = j.Repository
	}
	if err != nil {
		run.Error = err.Error()
	}
	a.recordRun(ctx, p, run)
	m := map[string]any{"message_type": "drill", "drill": d.Name, "job": d.Job, "snapshot_id": out.Snapshot,
		"restore_seconds": out.RestoreSeconds, "ok": err == nil}
	rto := ""
	if j != nil && j.RTO > 0 {
		m["rto_seconds"] = j.RTO.Seconds()
		rto = fmt.Sprintf(" (RTO %s: %s)", j.RTO, map[bool]string{true: "met", false: "MISSED"}[out.RestoreSeconds <= j.RTO.Seconds()])
	}
	if err != nil {
		m["error"] = err.Error()
		a.out.result(m, "drill %s FAILED: %v", d.Name, err)
		return err
	}
	a.out.result(m, "drill %s passed: snapshot %s of %s restored and verified in %.2fs%s", d.Name, short(out.Snapshot), d.Job, out.RestoreSeconds, rto)
	return nil
}
