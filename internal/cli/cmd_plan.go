package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/spf13/cobra"
)

func (a *App) planCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Check backup plan files",
	}
	cmd.AddCommand(a.planValidateCommand())
	return cmd
}

// loadPlan reads a plan, printing every problem with its position.
func (a *App) loadPlan(path string) (*plan.Plan, error) {
	if path == "" {
		path = a.Getenv("BUNKER_PLAN")
	}
	if path == "" {
		var tried []string
		path, tried = a.findPlan()
		if path == "" {
			return nil, fmt.Errorf("no plan file: give --plan FILE, set BUNKER_PLAN, or put one at %s", strings.Join(tried, ", "))
		}
	}
	p, err := plan.Load(path, a.Getenv)
	var es plan.Errors
	if errors.As(err, &es) {
		if a.g.json {
			for _, e := range es {
				a.out.jsonLine(map[string]any{"message_type": "plan_error", "file": e.Pos.File, "line": e.Pos.Line, "column": e.Pos.Column, "message": e.Msg, "hint": e.Hint})
			}
		} else {
			for _, e := range es {
				fmt.Fprintln(a.Stderr, e.Error())
			}
		}
		return nil, fmt.Errorf("%s: %d problem(s)", path, len(es))
	}
	return p, err
}

// systemPlanDir is where a plan for the whole machine lives (tests move
// it).
var systemPlanDir = "/etc/bunker"

func (a *App) findPlan() (string, []string) { return plan.Discover(a.Getenv, systemPlanDir) }

func (a *App) planValidateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check a plan file: syntax, keys, references, schedules, secrets",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.loadPlan(strings.Join(args, ""))
			if err != nil {
				return err
			}
			if a.g.json {
				a.out.jsonLine(map[string]any{"message_type": "summary", "valid": true, "repositories": len(p.Repositories), "jobs": len(p.Jobs), "drills": len(p.Drills)})
				return nil
			}
			var jobs []string
			for _, j := range p.Jobs {
				jobs = append(jobs, fmt.Sprintf("%s (%s, %s)", j.Name, j.Source.Type, j.Schedule))
			}
			a.out.textf("%s is valid: %d repositories, %d jobs, %d drills", p.File, len(p.Repositories), len(p.Jobs), len(p.Drills))
			if len(jobs) > 0 {
				a.out.textf("jobs: %s", strings.Join(jobs, "; "))
			}
			return nil
		},
	}
}
