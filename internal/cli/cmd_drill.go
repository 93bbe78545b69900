package cli

import (
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
		Use:   "drill NAME",
		Short: "Run a restore drill now (a drill of the plan, or every drill of a job)",
		Long: `Restore into a sandbox and validate, as the daemon does on schedule: for
files and stdin jobs, the snapshot is restored into a temporary directory
with every file verified against its content hashes, then the drill's
command checks run there; for logical PostgreSQL jobs, a scratch server
is started, the dump restored and the SQL checks run. The sandbox is
removed afterwards. NAME is a drill, or a job (then all its drills run,
or a plain restore check when it has none).

Exit code 0 when every drill passed, 1 when one failed. The restore time
is printed as the measured RTO and compared with the job's objective.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeDrills(&planFile),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.loadPlan(planFile)
			if err != nil {
				return err
			}
			var drills []*plan.Drill
			for _, d := range p.Drills {
				if d.Name == args[0] || d.Job == args[0] {
					drills = append(drills, d)
				}
			}
			if len(drills) == 0 {
				if p.Job(args[0]) == nil {
					return fmt.Errorf("plan %s has no drill or job %q", p.File, args[0])
				}
				drills = []*plan.Drill{{Name: args[0] + "-check", Job: args[0]}}
			}
			var show io.Writer
			if a.g.verbose > 0 && !a.g.json {
				show = a.Stderr
			}
			failed := 0
			for _, d := range drills {
				log := a.newRunLog(cmd.Context(), p, show)
				started := time.Now()
				out, err := a.runDrill(cmd.Context(), p, d, log)
				j := p.Job(d.Job)
				run := &state.Run{Job: d.Name, Kind: state.KindDrill, Started: started, Finished: time.Now(), Result: runResult(err),
					Snapshot: out.Snapshot, RestoreSeconds: out.RestoreSeconds, Log: log.String()}
				if j != nil {
					run.Repository = j.Repository
				}
				if err != nil {
					run.Error = err.Error()
				}
				a.recordRun(cmd.Context(), p, run)
				rto := ""
				if j != nil && j.RTO > 0 {
					rto = fmt.Sprintf(" (RTO %s: %s)", j.RTO, map[bool]string{true: "met", false: "MISSED"}[out.RestoreSeconds <= j.RTO.Seconds()])
				}
				if a.g.json {
					m := map[string]any{"message_type": "drill", "drill": d.Name, "job": d.Job, "snapshot_id": out.Snapshot,
						"restore_seconds": out.RestoreSeconds, "ok": err == nil}
					if j != nil && j.RTO > 0 {
						m["rto_seconds"] = j.RTO.Seconds()
					}
					if err != nil {
						m["error"] = err.Error()
					}
					a.out.jsonLine(m)
				} else if err != nil {
					a.out.textf("drill %s FAILED: %v", d.Name, err)
				} else {
					a.out.textf("drill %s passed: snapshot %s of %s restored and verified in %.2fs%s", d.Name, short(out.Snapshot), d.Job, out.RestoreSeconds, rto)
				}
				if err != nil {
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
