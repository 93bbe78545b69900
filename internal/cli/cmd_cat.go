package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/spf13/cobra"
)

func (a *App) catCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "cat config|snapshot ID|index ID|pack ID|blob ID|tree ID|keys",
		Short:             "Print repository objects as JSON (for debugging)",
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: a.completeCat,
		RunE: a.repoRun(func(ctx context.Context, c *app.App, r *repository.Repository, args []string) error {
			if args[0] == "snapshot" {
				if len(args) < 2 {
					return fmt.Errorf("cat snapshot needs an ID")
				}
				sn, err := a.findSnapshot(ctx, r, args[1], snapshot.Filter{})
				if err != nil {
					return err
				}
				return a.emitJSON(snapshotJSON{sn, sn.ID.String(), sn.ShortID()})
			}
			req := app.CatRequest{Opened: r, Kind: args[0]}
			if len(args) == 2 {
				req.ID = args[1]
			}
			res, err := c.Cat(ctx, req)
			if err != nil {
				return err
			}
			if res.Value == nil {
				_, err = a.Stdout.Write(res.Plain)
				return err
			}
			return a.emitJSON(res.Value)
		}),
	}
}

// emitJSON prints v as indented JSON.
func (a *App) emitJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintln(a.Stdout, string(b))
	return nil
}
