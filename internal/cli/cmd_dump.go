package cli

import (
	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/spf13/cobra"
)

func (a *App) dumpCommand() *cobra.Command {
	var ff snapshotFilterFlags
	cmd := &cobra.Command{
		Use:               "dump SNAPSHOT PATH",
		Short:             "Write a file from a snapshot to stdout (a directory as tar)",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeSnapshots(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := a.openRepoIndexed(ctx)
			if err != nil {
				return err
			}
			sn, err := a.findSnapshot(ctx, r, args[0], ff.filter())
			if err != nil {
				return err
			}
			c, err := a.core()
			if err != nil {
				return err
			}
			return c.Dump(ctx, app.DumpRequest{Opened: r, Snapshot: sn, Path: args[1], W: a.Stdout})
		},
	}
	addFilterFlags(cmd, &ff)
	return cmd
}
