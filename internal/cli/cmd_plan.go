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
		return nil, errors.New("no plan file: give --plan FILE or set BUNKER_PLAN")
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

func (a *App) planValidateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a plan file: syntax, keys, references, schedules, secrets",
		Long: `Check a plan file and print every problem as FILE:LINE:COLUMN: message
(hint). Exit code 0 when the plan is valid, 1 otherwise. It does not
contact repositories or databases.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.loadPlan(args[0])
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
			a.out.textf("%s is valid: %d repositories, %d jobs, %d drills", args[0], len(p.Repositories), len(p.Jobs), len(p.Drills))
			if len(jobs) > 0 {
				a.out.textf("jobs: %s", strings.Join(jobs, "; "))
			}
			return nil
		},
	}
}
