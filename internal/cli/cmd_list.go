package cli

import (
	"context"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/spf13/cobra"
)

func (a *App) listCommand() *cobra.Command {
	return &cobra.Command{
		Use:       "list TYPE",
		Short:     "List the objects of one kind in the repository",
		Args:      cobra.ExactArgs(1),
		ValidArgs: app.ListObjectTypes,
		RunE: a.refRun(func(ctx context.Context, c *app.App, repo app.Repo, args []string) error {
			typ := args[0]
			_, err := c.ListObjects(ctx, app.ListObjectsRequest{Repo: repo, Type: typ,
				Object: func(fi storage.FileInfo) {
					a.out.item(map[string]any{"message_type": "object", "type": typ, "name": fi.Name, "size": fi.Size}, "%s", fi.Name)
				},
				Blob: func(l index.Location) {
					a.out.item(map[string]any{"message_type": "blob", "type": l.Entry.Type.String(), "id": l.Entry.ID.String(), "pack": l.Pack.String()},
						"%s %s", l.Entry.Type, l.Entry.ID)
				}})
			return err
		}),
	}
}
