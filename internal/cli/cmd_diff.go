package cli

import (
	"fmt"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/spf13/cobra"
)

func (a *App) diffCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "diff SNAPSHOT1 SNAPSHOT2",
		Short:             "Show what changed between two snapshots",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeSnapshots(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, repo, err := a.coreRepo(ctx)
			if err != nil {
				return err
			}
			res, err := c.Diff(ctx, app.DiffRequest{Repo: repo, From: args[0], To: args[1], Change: func(mark, p string) {
				if a.g.json {
					a.out.jsonLine(map[string]any{"message_type": "change", "path": p, "modifier": mark})
				} else {
					fmt.Fprintf(a.Stdout, "%s    %s\n", mark, p)
				}
			}})
			if err != nil {
				return err
			}
			if a.g.json {
				a.out.jsonLine(map[string]any{"message_type": "statistics", "added": res.Added, "removed": res.Removed, "changed": res.Changed})
			} else {
				fmt.Fprintf(a.Stdout, "\n%d added, %d removed, %d changed\n", res.Added, res.Removed, res.Changed)
			}
			return nil
		},
	}
}
