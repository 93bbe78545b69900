package cli

import (
	"context"
	"errors"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/spf13/cobra"
)

func (a *App) restoreCommand() *cobra.Command {
	var ff snapshotFilterFlags
	var o struct {
		target    string
		includes  []string
		iincludes []string
		excludes  []string
		iexcludes []string
		overwrite string
		delete    bool
		verify    bool
		noOwner   bool
		noXattrs  bool
		sync      bool
	}
	cmd := &cobra.Command{
		Use:               "restore SNAPSHOT[:PATH] --target DIR",
		Short:             "Restore a snapshot (or a path in it) into a directory",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeSnapshots(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.target == "" {
				return errors.New("--target is required")
			}
			ref, sub := splitSnapshotPath(args[0])
			req := app.RestoreRequest{Snapshot: ref, Filter: ff.filter(), Path: sub, Target: o.target,
				Include: o.includes, IInclude: o.iincludes, Exclude: o.excludes, IExclude: o.iexcludes,
				Overwrite: o.overwrite, Delete: o.delete, Verify: o.verify, NoOwner: o.noOwner, NoXattrs: o.noXattrs, Sync: o.sync}
			return a.runRestore(cmd.Context(), req)
		},
	}
	addFilterFlags(cmd, &ff)
	f := cmd.Flags()
	f.StringVarP(&o.target, "target", "t", "", "directory to restore into")
	f.StringArrayVarP(&o.includes, "include", "i", nil, "restore only paths matching `pattern`")
	f.StringArrayVar(&o.iincludes, "iinclude", nil, "like --include, ignoring case")
	f.StringArrayVarP(&o.excludes, "exclude", "e", nil, "do not restore paths matching `pattern`")
	f.StringArrayVar(&o.iexcludes, "iexclude", nil, "like --exclude, ignoring case")
	f.StringVar(&o.overwrite, "overwrite", "always", "existing entries: always, if-changed, if-different or never")
	f.BoolVar(&o.delete, "delete", false, "delete entries the snapshot does not have")
	f.BoolVar(&o.verify, "verify", false, "read restored files back and compare with the snapshot")
	f.BoolVar(&o.noOwner, "no-owner", false, "do not restore ownership (even as root)")
	f.BoolVar(&o.noXattrs, "no-xattrs", false, "do not restore extended attributes")
	f.BoolVar(&o.sync, "sync", false, "fsync every restored file")
	return cmd
}

// runRestore runs the restore use case on -r and prints its summary.
func (a *App) runRestore(ctx context.Context, req app.RestoreRequest) error {
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
	res, err := c.Restore(ctx, req)
	if res == nil {
		return err
	}
	a.printRestoreSummary(req, res)
	return err
}

func (a *App) printRestoreSummary(req app.RestoreRequest, res *app.RestoreResult) {
	sn, el := res.Snapshot, res.Duration
	if a.g.json {
		a.out.jsonLine(map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(), "files_restored": res.FilesRestored,
			"files_skipped": res.FilesSkipped, "bytes_restored": res.BytesRestored, "dirs": res.Dirs, "deleted": res.Deleted,
			"errors": len(res.Failed), "verified": req.Verify, "verify_failures": len(res.VerifyFailures), "duration_seconds": el.Seconds()})
		return
	}
	a.out.textf("restored snapshot %s to %s: %d files, %s in %s (%s)", sn.ShortID(), res.Target, res.FilesRestored,
		formatBytes(res.BytesRestored), formatDuration(el), formatRate(res.BytesRestored, el))
	if n := res.FilesSkipped; n > 0 {
		a.out.textf("skipped %d existing files", n)
	}
	if req.Verify && len(res.VerifyFailures) == 0 {
		a.out.textf("verified %d files: content matches the snapshot", res.Verified)
	}
}
