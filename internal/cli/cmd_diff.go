package cli

import (
	"context"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/spf13/cobra"
)

func (a *App) diffCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "diff SNAPSHOT1 SNAPSHOT2",
		Short:             "Show what changed between two snapshots",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeSnapshots(2),
		RunE: a.refRun(func(ctx context.Context, c *app.App, repo app.Repo, args []string) error {
			res, err := c.Diff(ctx, app.DiffRequest{Repo: repo, From: args[0], To: args[1], Change: func(mark, p string) {
				a.out.item(map[string]any{"message_type": "change", "path": p, "modifier": mark}, "%s    %s", mark, p)
			}})
			if err != nil {
				return err
			}
			a.out.item(map[string]any{"message_type": "statistics", "added": res.Added, "removed": res.Removed, "changed": res.Changed},
				"\n%d added, %d removed, %d changed", res.Added, res.Removed, res.Changed)
			return nil
		}),
	}
}
