package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/repair"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/timespec"
	"github.com/spf13/cobra"
)

func (a *App) repairCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "repair", Short: "Repair the index, snapshots or maintenance objects, or roll the repository back"}
	idx := &cobra.Command{
		Use:   "index",
		Short: "Rebuild the index from the packs",
		Args:  cobra.NoArgs,
		RunE:  a.refRun(a.repairIndex),
	}
	var dryRun, keep, readData bool
	snaps := &cobra.Command{
		Use:   "snapshots [SNAPSHOT...]",
		Short: "Drop references to lost data from snapshots",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.repairSnapshots(cmd.Context(), args, dryRun, keep, readData)
		},
	}
	snaps.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "only report what would change")
	snaps.Flags().BoolVar(&keep, "keep-original", false, "keep the damaged original snapshots")
	snaps.Flags().BoolVar(&readData, "read-data", false, "also read every data blob and treat damaged ones as lost")
	var maintDry bool
	maint := &cobra.Command{
		Use:   "maint",
		Short: "Remove unreadable maintenance and session objects",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.repairMaint(cmd.Context(), maintDry)
		},
	}
	maint.Flags().BoolVarP(&maintDry, "dry-run", "n", false, "only list what would be removed")
	cmd.AddCommand(idx, snaps, maint, a.rollbackCommand())
	return cmd
}

func (a *App) repairMaint(ctx context.Context, dryRun bool) error {
	c, repo, err := a.coreRepo(ctx)
	if err != nil {
		return err
	}
	verb := "removed"
	if dryRun {
		verb = "would remove"
	}
	bad, err := c.RepairMaint(ctx, repo, dryRun, func(u repository.Unreadable, removed bool) {
		a.out.result(map[string]any{"message_type": "object", "type": u.Type, "name": u.Name, "reason": u.Reason, "removed": removed},
			"%s %s/%s: %s", verb, u.Type, u.Name, u.Reason)
	})
	if err != nil {
		return err
	}
	removed := len(bad)
	if dryRun {
		removed = 0
	}
	a.out.result(map[string]any{"message_type": "summary", "found": len(bad), "removed": removed, "dry_run": dryRun},
		"%d unreadable objects found, %d removed", len(bad), removed)
	return nil
}

func (a *App) repairIndex(ctx context.Context, c *app.App, repo app.Repo, _ []string) error {
	res, err := c.RepairIndex(ctx, repo, repair.IndexOptions{
		Skipped: func(pk format.ID, err error) { a.out.warnf("pack %s: %v (left out of the index)", pk.Short(), err) },
		Progress: func(done, total int) {
			if a.out.progress {
				a.out.status(fmt.Sprintf("read %d / %d pack trailers", done, total))
			}
		},
	})
	a.out.doneStatus()
	if err != nil {
		return err
	}
	a.out.result(map[string]any{"message_type": "summary", "packs": res.Packs, "blobs": res.Blobs, "damaged_packs": res.Damaged, "index": res.Index.String()},
		"rebuilt the index from %d packs (%d blobs); %d unreadable packs left out", res.Packs, res.Blobs, res.Damaged)
	return nil
}

func (a *App) repairSnapshots(ctx context.Context, refs []string, dryRun, keep, readData bool) error {
	c, repo, err := a.coreRepo(ctx)
	if err != nil {
		return err
	}
	res, err := c.RepairSnapshots(ctx, repo, repair.Options{
		Refs: refs, DryRun: dryRun, KeepOriginal: keep, ReadData: readData,
		Report: func(ev repair.Event) {
			switch ev.Kind {
			case repair.UnreadableSnapshot:
				verb := "removed"
				if dryRun {
					verb = "would remove"
				}
				a.out.textf("snapshot object %s is unreadable (%v): %s", short(ev.Name), ev.Err, verb)
			case repair.DirEmptied:
				a.out.textf("%s: directory unreadable, emptied (%v)", ev.Path, ev.Err)
			case repair.FileLost:
				a.out.textf("%s: content lost, file removed from the snapshot", ev.Path)
			case repair.Repaired:
				if ev.New == nil {
					a.out.textf("snapshot %s would be repaired", ev.Snapshot.ShortID())
				} else {
					a.out.textf("snapshot %s repaired as %s", ev.Snapshot.ShortID(), ev.New.ShortID())
				}
			}
		},
	})
	if err != nil {
		return err
	}
	a.out.result(map[string]any{"message_type": "summary", "snapshots_examined": res.Examined, "snapshots_repaired": res.Repaired, "dry_run": dryRun},
		"%d of %d snapshots needed repair", res.Repaired, res.Examined)
	return nil
}

func (a *App) rollbackCommand() *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "rollback --to TIME",
		Short: "Roll a vandalised repository on a versioned store back to a moment",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if to == "" {
				return errors.New("rollback needs --to TIME")
			}
			if a.g.s.RepoAsOf != "" {
				return errors.New("rollback changes the repository; use --to instead of --repo-as-of")
			}
			t, err := timespec.ParseTime(to)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			c, repo, err := a.coreRepo(ctx)
			if err != nil {
				return err
			}
			res, err := c.Rollback(ctx, app.RollbackRequest{Repo: repo, To: t, Object: func(h storage.Handle, action string) {
				if a.g.json {
					a.out.jsonLine(map[string]any{"message_type": "rollback_object", "object": h.String(), "action": action})
				} else {
					a.out.infof("%s %s", action, h)
				}
			}})
			if err != nil {
				return err
			}
			if a.g.json {
				a.out.jsonLine(map[string]any{"message_type": "rollback", "to": t, "snapshots": res.Snapshots, "actions": res.Actions})
				return nil
			}
			a.out.textf("rolled %s back to %s: %d snapshots; %v", res.Location, t.Local().Format("2006-01-02 15:04:05"), res.Snapshots, res.Actions)
			a.out.textf("run 'bunker check --read-data' to verify")
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the moment to roll back to (RFC 3339, 2026-11-26 09:41:00+00, or local 2026-11-26 09:41:00; see docs/TIME.md)")
	return cmd
}
