package cli

import (
	"context"
	"io"
	"os"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
)

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

// dbBackup runs a database backup use case on -r and prints its summary.
func (a *App) dbBackup(ctx context.Context, run func(c *app.App, repo app.Repo) (*app.BackupResult, error)) error {
	return a.onRepo(ctx, func(c *app.App, repo app.Repo) error {
		res, err := run(c, repo)
		if err != nil {
			return err
		}
		a.printSourceSummary(res.Snapshot, res.Write)
		return nil
	})
}

// toolStderr is where the database tools' standard error goes: stderr
// with -v, else nowhere.
func (a *App) toolStderr() io.Writer {
	if a.g.verbose > 0 {
		return a.Stderr
	}
	return nil
}

// kubeJobConfig loads the cluster configuration of a plan's kubernetes
// job, as --context does.
func (a *App) kubeJobConfig(kubeContext string) (*rest.Config, string, error) {
	return a.kubeConfig(&kubeConnFlags{context: kubeContext})
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

// expireCommand is the "forget what no kept backup needs" command of a
// log archive (WAL, binlogs, oplog): la chooses, from all snapshots, the
// archive snapshots to forget and says how many archive snapshots there
// are; its notes are shown with -v.
func (a *App) expireCommand(use, shortHelp string, la source.LogArchive) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   use,
		Short: shortHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.onRepo(cmd.Context(), func(c *app.App, repo app.Repo) error {
				x, err := c.ExpireLogArchive(cmd.Context(), repo, la, dryRun)
				if err != nil {
					return err
				}
				m := map[string]any{"message_type": "summary", "forgotten": x.Forgotten, "would_forget": len(x.Expired) - x.Forgotten,
					"archive_snapshots": x.Archives, "dry_run": dryRun}
				total := plural(int64(x.Archives), x.Name+" snapshot")
				if !dryRun {
					a.out.result(m, "forgot %d of %s; run prune to free the space", x.Forgotten, total)
					return nil
				}
				for _, e := range x.Expired {
					a.out.textf("would forget %s %s", e.Snapshot.ShortID(), e.Why)
				}
				a.out.result(m, "%d of %s would be forgotten", len(x.Expired), total)
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "only say what would be forgotten")
	return cmd
}
