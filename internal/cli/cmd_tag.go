package cli

import (
	"strings"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/spf13/cobra"
)

func (a *App) tagCommand() *cobra.Command {
	var ff snapshotFilterFlags
	var set, add, remove []string
	cmd := &cobra.Command{
		Use:               "tag [flags] [SNAPSHOT...]",
		Short:             "Add, remove or replace the tags of snapshots",
		ValidArgsFunction: a.completeSnapshots(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			req := app.TagRequest{Snapshots: args, Filter: ff.filter(), Set: splitTags(set), SetGiven: cmd.Flags().Changed("set"),
				Add: splitTags(add), Remove: splitTags(remove)}
			if err := req.Validate(); err != nil {
				return err
			}
			c, err := a.core()
			if err != nil {
				return err
			}
			if req.Repo, err = a.repoRef(ctx); err != nil {
				return err
			}
			req.Changed = func(rs app.ReplacedSnapshot) {
				a.out.result(map[string]any{"message_type": "changed_snapshot", "old_snapshot_id": rs.Old.ID.String(),
					"new_snapshot_id": rs.New.ID.String(), "tags": rs.New.Tags, "original_kept": rs.Kept != nil},
					"snapshot %s -> %s: tags %s", rs.Old.ShortID(), rs.New.ShortID(), strings.Join(rs.New.Tags, ","))
			}
			res, err := c.Tag(ctx, req)
			if res == nil {
				return err
			}
			a.out.result(map[string]any{"message_type": "summary", "snapshots_examined": res.Examined,
				"changed_snapshots": len(res.Changed), "originals_kept": len(res.Kept)},
				"changed the tags of %s of %d", plural(int64(len(res.Changed)), "snapshot"), res.Examined)
			return err
		},
	}
	addFilterFlags(cmd, &ff)
	f := cmd.Flags()
	f.StringArrayVar(&add, "add", nil, "add this `tag` (repeatable; a,b adds both)")
	f.StringArrayVar(&remove, "remove", nil, "remove this `tag` (repeatable; a,b removes both)")
	f.StringArrayVar(&set, "set", nil, "replace the tags with this `tag` (repeatable; '' removes every tag)")
	return cmd
}

// splitTags splits each "a,b" into its tags, leaving out empty ones.
func splitTags(in []string) []string {
	var out []string
	for _, s := range in {
		for t := range strings.SplitSeq(s, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}
