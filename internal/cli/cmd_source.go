package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/spf13/cobra"
)

// kindContinuous marks snapshots of a log archive (WAL, binlog, oplog).
const kindContinuous = app.KindContinuous

// sourceCommands are the commands one database source adds.
type sourceCommands struct {
	backup  *cobra.Command   // "backup NAME"
	restore *cobra.Command   // "restore NAME"
	extra   []*cobra.Command // top-level commands, e.g. "pg"
}

// addSourceCommands adds every source's commands under backup, restore
// and the root.
func (a *App) addSourceCommands(root *cobra.Command) {
	var backup, restore *cobra.Command
	for _, c := range root.Commands() {
		switch c.Name() {
		case "backup":
			backup = c
		case "restore":
			restore = c
		}
	}
	for _, sc := range []sourceCommands{a.postgresCommands(), a.mysqlCommands(), a.mongodbCommands(), a.kubernetesCommands()} {
		if sc.backup != nil {
			backup.AddCommand(sc.backup)
		}
		if sc.restore != nil {
			restore.AddCommand(sc.restore)
		}
		root.AddCommand(sc.extra...)
	}
}

// sourceBackup describes one backup of a database (or any source that
// produces named streams rather than reading a file tree).
type sourceBackup struct {
	source string   // "postgres", "mysql", "mongodb"; recorded as metadata "source"
	paths  []string // the snapshot's paths, e.g. /postgres/127.0.0.1:5432
	tags   []string
	host   string
	kind   string
	// parent picks the parent, the base and the kind among the snapshots
	// of the same paths and host (newest last); nil means none. An empty
	// kind keeps kind.
	parent func(all []*snapshot.Snapshot) (parent, base *snapshot.Snapshot, kind string)
	// repo, when set, is used instead of opening -r (long-running
	// commands open it once).
	repo *repository.Repository
	// quiet prints no summary (a receiver's frequent small pushes).
	quiet bool
	// write produces the files and returns the snapshot metadata.
	write func(ctx context.Context, w source.Sink) (map[string]string, error)
}

// sourceFlags are the flags every database backup takes.
type sourceFlags struct {
	tags []string
	host string
	jobs int
}

func (f *sourceFlags) add(cmd *cobra.Command, jobsHelp string) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.tags, "tag", nil, "add a `tag` (repeatable, or comma separated)")
	fl.StringVar(&f.host, "host", "", "record this host name (default: this machine's)")
	if jobsHelp != "" {
		fl.IntVarP(&f.jobs, "jobs", "j", 2, jobsHelp)
		flagRange(fl, 1, 1000, "jobs")
	}
}

func (f *sourceFlags) hostname() string {
	if f.host != "" {
		return f.host
	}
	h, _ := os.Hostname()
	return h
}

// runSourceBackup runs the source backup use case on -r (or b.repo) and
// prints its summary.
func (a *App) runSourceBackup(ctx context.Context, b sourceBackup) (*snapshot.Snapshot, error) {
	c, err := a.core()
	if err != nil {
		return nil, err
	}
	req := app.SourceBackup{Repository: b.repo, Source: b.source, Paths: b.paths, Tags: b.tags, Host: b.host, Kind: b.kind,
		Parent: b.parent, Save: b.write, NoProgress: b.quiet}
	if b.repo == nil {
		if req.Repo, err = a.repoRef(ctx); err != nil {
			return nil, err
		}
	}
	res, err := c.RunSourceBackup(ctx, req)
	if err != nil {
		return nil, err
	}
	if !b.quiet {
		a.printSourceSummary(res.Snapshot, res.Write)
	}
	return res.Snapshot, nil
}

func (a *App) printSourceSummary(sn *snapshot.Snapshot, ws repository.WriteStats) {
	s := sn.Summary
	dur := s.End.Sub(s.Start)
	if a.g.json {
		m := backupSummaryJSON(sn, ws, false)
		m["source"], m["metadata"] = sn.Metadata["source"], sn.Metadata
		a.out.jsonLine(m)
		return
	}
	a.out.textf("Files:       %d", s.Files)
	a.out.textf("Added:       %s (%s stored)", formatBytes(s.BytesAdded), formatBytes(s.BytesStored))
	a.out.textf("Processed:   %s in %s (%s)", formatBytes(s.BytesRead), formatDuration(dur), formatRate(s.BytesRead, dur))
	a.out.textf("snapshot %s saved (%s %s)", sn.ShortID(), sn.Metadata["source"], sn.Kind)
}

// snapshotInfos describes snapshots to the sources' own logic.
func snapshotInfos(all []*snapshot.Snapshot) []source.SnapshotInfo { return app.SnapshotInfos(all) }

// expireCommand is the "forget what no kept backup needs" command of a
// log archive (WAL, binlogs, oplog): la chooses, from all snapshots, the
// archive snapshots to forget and says how many archive snapshots there
// are; its notes are shown with -v.
func (a *App) expireCommand(use, shortHelp, long string, la source.LogArchive) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   use,
		Short: shortHelp,
		Long:  long,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := a.openRepo(ctx)
			if err != nil {
				return err
			}
			all, err := a.loadSnapshots(ctx, r)
			if err != nil {
				return err
			}
			x := la.Expire(snapshotInfos(all))
			for _, n := range x.Notes {
				a.out.infof("%s", n)
			}
			byID := make(map[string]*snapshot.Snapshot, len(all))
			for _, s := range all {
				byID[s.ID.String()] = s
			}
			var list []*snapshot.Snapshot
			var why []string
			for _, e := range x.Expired {
				if sn := byID[e.ID]; sn != nil {
					list = append(list, sn)
					why = append(why, e.Why)
				}
			}
			forgotten := 0
			for i, sn := range list {
				if dryRun {
					a.out.textf("would forget %s %s", sn.ShortID(), why[i])
					continue
				}
				if err := snapshot.Remove(ctx, r, sn.ID); err != nil {
					return fmt.Errorf("forget %s: %w", sn.ShortID(), err)
				}
				forgotten++
				a.out.infof("forgot %s %s", sn.ShortID(), why[i])
			}
			total, what := x.Archives, la.Name()
			if a.g.json {
				a.out.jsonLine(map[string]any{"message_type": "summary", "forgotten": forgotten, "would_forget": len(list) - forgotten,
					"archive_snapshots": total, "dry_run": dryRun})
			} else if dryRun {
				a.out.textf("%d of %s would be forgotten", len(list), plural(int64(total), what+" snapshot"))
			} else {
				a.out.textf("forgot %d of %s; run prune to free the space", forgotten, plural(int64(total), what+" snapshot"))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "only say what would be forgotten")
	return cmd
}
