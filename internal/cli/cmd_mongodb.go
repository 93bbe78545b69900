package cli

import (
	"context"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/source/mongodb"
	"github.com/spf13/cobra"
)

func (a *App) mongodbCommands() sourceCommands {
	top := &cobra.Command{
		Use:   "mongodb",
		Short: "MongoDB oplog archiving for point-in-time restores: oplog-archive, oplog-expire",
	}
	top.AddCommand(a.mongoOplogArchiveCommand(), a.mongoOplogExpireCommand())
	return sourceCommands{backup: a.mongoBackupCommand(), restore: a.mongoRestoreCommand(), extra: []*cobra.Command{top}}
}

// addMongoConnFlags adds how every MongoDB command reaches the server.
func addMongoConnFlags(cmd *cobra.Command, c *app.MongoConn) {
	fl := cmd.Flags()
	fl.StringVar(&c.URI, "uri", "", "MongoDB connection `URI`, mongodb:// or mongodb+srv://, with any driver option such as tls=true (default $BUNKER_MONGODB_URI)")
	fl.StringVar(&c.PasswordFile, "db-password-file", "", "read the MongoDB user's password from this `file` (default $BUNKER_MONGODB_PASSWORD_FILE; else the URI's)")
}

func (a *App) mongoBackupCommand() *cobra.Command {
	var b app.MongoBackup
	var conn app.MongoConn
	var sf sourceFlags
	var args app.MongoBackupArgs
	var oplog bool
	cmd := &cobra.Command{
		Use:     "mongodb",
		Aliases: []string{"mongo"},
		Short:   "Back up MongoDB through the Go driver (or mongodump with --tool)",
		Example: `  bunker backup mongodb --uri mongodb://backup@db1:27017,db2:27017/?replicaSet=rs0 --db-password-file /etc/bunker/mongo.pw
  bunker backup mongodb --uri mongodb://127.0.0.1/ --db shop --exclude 'shop.cache*'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			if b.Server, err = conn.Config(a.Getenv); err != nil {
				return err
			}
			b.Options.Jobs, b.Tags, b.Host = sf.jobs, sf.tags, sf.hostname()
			if err := args.Apply(&b, a.Getenv, a.toolStderr()); err != nil {
				return err
			}
			if cmd.Flags().Changed("oplog") {
				b.Oplog = &oplog
			}
			return a.dbBackup(cmd.Context(), func(c *app.App, repo app.Repo) (*app.BackupResult, error) {
				b.Repo = repo
				return c.RunMongoBackup(cmd.Context(), b)
			})
		},
	}
	addMongoConnFlags(cmd, &conn)
	sf.add(cmd, "dump at most `N` collections at once (with --tool mongodump: its --numParallelCollections)")
	fl := cmd.Flags()
	fl.StringArrayVar(&b.Options.Select.Databases, "db", nil, "back up only this `database` (repeatable; local and config only when named)")
	fl.StringArrayVar(&b.Options.Select.Collections, "collection", nil, "back up only this `DB.COLLECTION` (repeatable)")
	fl.StringArrayVar(&args.Exclude, "exclude", nil, "skip namespaces matching `GLOB` (DB.COLLECTION, * matches anything; a bare DB is DB.*)")
	fl.BoolVar(&oplog, "oplog", false, "record the oplog during the dump for a consistent point (default: on for a replica set)")
	fl.BoolVar(&b.Options.Users, "users", false, "also back up admin's users and roles (admin.system.users, system.roles) if permitted")
	fl.StringVar(&args.Tool, "tool", "", "dump with `TOOL` instead of the driver: mongodump")
	fl.StringVar(&args.ToolDir, "tool-dir", "", "`directory` of mongodump and mongorestore (default: PATH)")
	return cmd
}

func (a *App) mongoRestoreCommand() *cobra.Command {
	var req app.MongoRestore
	var conn app.MongoConn
	var args app.MongoRestoreArgs
	cmd := &cobra.Command{
		Use:     "mongodb SNAPSHOT",
		Aliases: []string{"mongo"},
		Short:   "Restore a MongoDB backup into a server (or a directory for mongorestore)",
		Example: `  bunker restore mongodb latest --uri mongodb://127.0.0.1:27017/ --drop
  bunker restore mongodb 3fa9 --uri mongodb://127.0.0.1/ --ns-from 'shop.*' --ns-to 'shop_copy.*'
  bunker restore mongodb latest --uri mongodb://127.0.0.1/ --oplog-limit 2026-05-01T10:00:00Z`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, refs []string) error {
			req.Snapshot = refs[0]
			return a.runMongoRestore(cmd.Context(), req, conn, args)
		},
	}
	addMongoConnFlags(cmd, &conn)
	fl := cmd.Flags()
	fl.StringArrayVar(&args.Include, "ns-include", nil, "restore only namespaces matching `GLOB` (repeatable)")
	fl.StringArrayVar(&args.Exclude, "ns-exclude", nil, "do not restore namespaces matching `GLOB` (repeatable)")
	fl.StringArrayVar(&args.From, "ns-from", nil, "rename namespaces matching `GLOB` (with --ns-to, repeatable in pairs)")
	fl.StringArrayVar(&args.To, "ns-to", nil, "new name `GLOB` for the --ns-from of the same position")
	fl.BoolVar(&req.Options.Drop, "drop", false, "drop each collection before restoring it")
	fl.IntVarP(&req.Options.Jobs, "jobs", "j", 2, "restore at most `N` collections at once")
	flagRange(fl, 1, 1000, "jobs")
	fl.BoolVar(&req.Options.OplogReplay, "oplog-replay", false, "apply the oplog entries recorded during the dump")
	fl.StringVar(&args.OplogLimit, "oplog-limit", "", "restore to this point: apply oplog entries (of the backup and the archive) before `TS|TIME`")
	fl.BoolVar(&req.Options.Users, "users", false, "also restore admin's users and roles, when the backup has them")
	fl.StringVar(&req.ToDir, "to-dir", "", "write the backup's files (mongodump layout) into `DIR` instead of a server")
	fl.StringVar(&req.ToolDir, "tool-dir", "", "`directory` of mongorestore, for --tool mongodump backups (default: PATH)")
	fl.StringArrayVar(&req.Filter.Hosts, "host", nil, "with \"latest\": only snapshots of this `host`")
	return cmd
}

func (a *App) runMongoRestore(ctx context.Context, req app.MongoRestore, conn app.MongoConn, args app.MongoRestoreArgs) error {
	if err := args.Apply(&req.Options); err != nil {
		return err
	}
	req.Options.Done, req.ToolStderr = a.printMongoCollection, a.toolStderr()
	if err := req.Validate(); err != nil {
		return err
	}
	if req.ToDir == "" {
		// Checked when the server is needed: after the snapshot is found.
		var err error
		if req.Server, err = conn.Server(a.Getenv); err != nil {
			return err
		}
	}
	c, repo, err := a.coreRepo(ctx)
	if err != nil {
		return err
	}
	req.Repo = repo
	res, err := c.RestoreMongo(ctx, req)
	if res == nil {
		return err
	}
	if dir := req.ToDir; dir != "" {
		a.out.result(map[string]any{"message_type": "summary", "snapshot_id": res.Snapshot.ID.String(), "files": res.Files, "bytes": res.Bytes, "target": dir},
			"Wrote %d files (%s) of snapshot %s to %s (mongorestore %s)", res.Files, formatBytes(res.Bytes), res.Snapshot.ShortID(), dir, dir)
	} else {
		a.printMongoRestoreSummary(res)
	}
	return err
}

func (a *App) printMongoCollection(r mongodb.CollectionResult) {
	if a.g.json {
		m := map[string]any{"message_type": "collection", "source": r.Source, "target": r.Target, "type": r.Type,
			"documents": r.Documents, "failed_documents": r.Failed, "indexes": r.Indexes}
		if r.Err != nil {
			m["error"] = r.Err.Error()
		}
		a.out.jsonLine(m)
		return
	}
	name := r.Source
	if r.Target != r.Source {
		name += " → " + r.Target
	}
	if r.Err != nil {
		a.out.warnf("%s: %v", name, r.Err)
		return
	}
	if r.Type == mongodb.TypeView {
		a.out.textf("restored view %s", name)
		return
	}
	a.out.textf("restored %s: %d documents, %d indexes", name, r.Documents, r.Indexes)
}

// printMongoRestoreSummary prints what a restore into a server did
// (textf prints nothing with --json).
func (a *App) printMongoRestoreSummary(r *app.MongoRestoreResult) {
	sn, res, dur := r.Snapshot, r.Restore, r.Duration
	var docs int64
	for _, c := range res.Collections {
		docs += c.Documents
	}
	m := map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(), "collections": len(res.Collections),
		"failed": res.Failed, "documents": docs, "oplog_applied": res.OplogApplied, "duration_seconds": dur.Seconds()}
	if !res.OplogPos.IsZero() {
		m["oplog_position"] = mongodb.FormatTimestamp(res.OplogPos)
	}
	if len(res.Collections) > 0 {
		a.out.result(m, "Restored %d collections (%d failed), %d documents from snapshot %s in %s",
			len(res.Collections), res.Failed, docs, sn.ShortID(), formatDuration(dur))
	} else {
		a.out.result(m, "Restored snapshot %s in %s", sn.ShortID(), formatDuration(dur))
	}
	if res.OplogApplied > 0 {
		a.out.textf("Oplog: %d entries applied, up to %s", res.OplogApplied, mongodb.FormatTimestamp(res.OplogPos))
	}
}

func (a *App) mongoOplogArchiveCommand() *cobra.Command {
	var conn app.MongoConn
	var sf sourceFlags
	var req app.OplogArchive
	cmd := &cobra.Command{
		Use:   "oplog-archive",
		Short: "Archive a replica set's oplog continuously, for point-in-time restores",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if req.Server, err = conn.Config(a.Getenv); err != nil {
				return err
			}
			req.Tags, req.Host = sf.tags, sf.hostname()
			return a.onRepo(cmd.Context(), func(c *app.App, repo app.Repo) error {
				req.Repo = repo
				return c.ArchiveMongoOplog(cmd.Context(), req)
			})
		},
	}
	addMongoConnFlags(cmd, &conn)
	sf.add(cmd, "")
	cmd.Flags().DurationVar(&req.Interval, "interval", 30*time.Second, "commit what arrived every `DURATION`")
	flagRange(cmd.Flags(), 1, unbounded, "interval")
	cmd.Flags().BoolVar(&req.Once, "once", false, "archive what the oplog has now and exit")
	return cmd
}

func (a *App) mongoOplogExpireCommand() *cobra.Command {
	return a.expireCommand("oplog-expire", "Forget archived oplog chunks that no kept backup needs", mongodb.LogArchive{})
}
