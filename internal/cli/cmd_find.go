package cli

import (
	"context"
	"fmt"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/spf13/cobra"
)

func (a *App) findCommand() *cobra.Command {
	var ff snapshotFilterFlags
	var ignoreCase bool
	var snaps []string
	cmd := &cobra.Command{
		Use:   "find PATTERN...",
		Short: "Find files by name pattern in snapshots",
		Args:  cobra.MinimumNArgs(1),
		RunE: a.refRun(func(ctx context.Context, c *app.App, repo app.Repo, args []string) error {
			res, err := c.Find(ctx, app.FindRequest{Repo: repo, Patterns: args, IgnoreCase: ignoreCase, Filter: ff.filter(), Snapshots: snaps,
				Match: func(sn *snapshot.Snapshot, p string, n *tree.Node) {
					a.out.item(map[string]any{"message_type": "match", "snapshot": sn.ID.String(), "node": toNodeJSON(p, n)},
						"%s  %s  %s  %d", sn.ShortID(), sn.Time.Local().Format("2006-01-02 15:04:05"), p, n.Size)
				}})
			if err != nil {
				return err
			}
			if !a.g.json && res.Matches == 0 {
				fmt.Fprintln(a.Stderr, "no matches")
			}
			return nil
		}),
	}
	addFilterFlags(cmd, &ff)
	cmd.Flags().BoolVarP(&ignoreCase, "ignore-case", "i", false, "match case-insensitively")
	cmd.Flags().StringArrayVarP(&snaps, "snapshot", "s", nil, "search only this snapshot (repeatable)")
	return cmd
}
