package cli

import (
	"context"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/exclude"
	"github.com/spf13/cobra"
)

func (a *App) rewriteCommand() *cobra.Command {
	var ff snapshotFilterFlags
	var ex exclude.Options
	var forget, dryRun bool
	cmd := &cobra.Command{
		Use:               "rewrite [flags] [SNAPSHOT...]",
		Short:             "Drop files backed up by mistake from snapshots",
		ValidArgsFunction: a.completeSnapshots(0),
		RunE: a.refRun(func(ctx context.Context, c *app.App, repo app.Repo, args []string) error {
			res, err := c.Rewrite(ctx, app.RewriteRequest{Repo: repo, Snapshots: args, Filter: ff.filter(), Exclude: ex,
				Forget: forget, DryRun: dryRun, Rewritten: func(rw app.RewrittenSnapshot) { a.printRewritten(rw, dryRun) }})
			if res == nil {
				return err
			}
			if a.g.json {
				a.out.jsonLine(map[string]any{"message_type": "summary", "snapshots_examined": res.Examined,
					"snapshots_rewritten": len(res.Rewritten), "originals_kept": len(res.Kept), "dry_run": dryRun})
			} else if dryRun {
				a.out.textf("dry run: would rewrite %s of %d", plural(int64(len(res.Rewritten)), "snapshot"), res.Examined)
			} else {
				a.out.textf("rewrote %s of %d; 'bunker prune' frees the data of what was dropped once no snapshot references it",
					plural(int64(len(res.Rewritten)), "snapshot"), res.Examined)
			}
			return err
		}),
	}
	addFilterFlags(cmd, &ff)
	f := cmd.Flags()
	f.StringArrayVarP(&ex.Patterns, "exclude", "e", nil, "drop paths matching this `pattern` (repeatable; backup's syntax)")
	f.StringArrayVar(&ex.IPatterns, "iexclude", nil, "like --exclude, ignoring case")
	f.StringArrayVar(&ex.PatternFiles, "exclude-file", nil, "read patterns from a `file`")
	f.StringArrayVar(&ex.IPatternFiles, "iexclude-file", nil, "like --exclude-file, ignoring case")
	f.BoolVar(&forget, "forget", false, "remove each original once its rewrite is saved")
	f.BoolVarP(&dryRun, "dry-run", "n", false, "only show what would be dropped")
	return cmd
}

// printRewritten prints one rewritten snapshot and what it lost.
func (a *App) printRewritten(rw app.RewrittenSnapshot, dryRun bool) {
	if a.g.json {
		m := map[string]any{"message_type": "rewritten_snapshot", "old_snapshot_id": rw.Old.ID.String(), "removed": rw.Removed,
			"forgotten": rw.Forgotten, "dry_run": dryRun}
		if rw.New != nil {
			m["new_snapshot_id"] = rw.New.ID.String()
		}
		a.out.jsonLine(m)
		return
	}
	if dryRun {
		a.out.textf("snapshot %s: would drop %s", rw.Old.ShortID(), plural(int64(len(rw.Removed)), "path"))
	} else {
		a.out.textf("snapshot %s -> %s: dropped %s%s", rw.Old.ShortID(), rw.New.ShortID(), plural(int64(len(rw.Removed)), "path"),
			map[bool]string{true: ", original removed", false: ""}[rw.Forgotten])
	}
	for _, p := range rw.Removed {
		a.out.textf("  %s", p)
	}
}
