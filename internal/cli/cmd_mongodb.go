package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
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

// mongoConnFlags are how every MongoDB command reaches the server.
type mongoConnFlags struct {
	uri          string
	passwordFile string
}

func (f *mongoConnFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.uri, "uri", "", "MongoDB connection `URI`, mongodb:// or mongodb+srv://, with any driver option such as tls=true (default $BUNKER_MONGODB_URI)")
	fl.StringVar(&f.passwordFile, "db-password-file", "", "read the MongoDB user's password from this `file` (default $BUNKER_MONGODB_PASSWORD_FILE; else the URI's)")
}

// mongoConfig builds the connection configuration and checks it.
func (a *App) mongoConfig(f *mongoConnFlags) (mongodb.Config, error) {
	cfg, err := a.mongoServer(f)
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// mongoServer builds the connection configuration (unchecked); the
// password file's content replaces the URI's password.
func (a *App) mongoServer(f *mongoConnFlags) (mongodb.Config, error) {
	cfg := mongodb.Config{URI: f.uri}
	if cfg.URI == "" {
		cfg.URI = a.Getenv("BUNKER_MONGODB_URI")
	}
	pf := f.passwordFile
	if pf == "" {
		pf = a.Getenv("BUNKER_MONGODB_PASSWORD_FILE")
	}
	if pf != "" {
		pw, err := readSecretFile(pf)
		if err != nil {
			return cfg, fmt.Errorf("--db-password-file: %w", err)
		}
		cfg.Password, cfg.PasswordSet = pw, true
	}
	return cfg, nil
}

// mongoConnect connects; the connection is closed when the command ends.
func (a *App) mongoConnect(ctx context.Context, cfg mongodb.Config) (*mongodb.Client, error) {
	c, err := mongodb.Connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.addCloser(mongoCloser(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.Close(ctx)
	}))
	return c, nil
}

type mongoCloser func() error

func (f mongoCloser) Close() error { return f() }

// mongoTools finds mongodump in dir or on the PATH of this command's
// environment, which the program also gets.
func (a *App) mongoTools(dir string) (mongodb.Tools, error) {
	path := a.Getenv("PATH")
	t := mongodb.Tools{Env: []string{"PATH=" + path}}
	if a.g.verbose > 0 {
		t.Stderr = a.Stderr
	}
	var err error
	t.Mongodump, err = mongodb.LookPath("mongodump", dir, path)
	return t, err
}

func mongoPatterns(flag string, in []string) ([]*mongodb.Pattern, error) {
	var out []*mongodb.Pattern
	for _, s := range in {
		p, err := mongodb.ParsePattern(s)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
		out = append(out, p)
	}
	return out, nil
}

type mongoBackupOptions struct {
	conn        mongoConnFlags
	src         sourceFlags
	databases   []string
	collections []string
	excludes    []string
	oplog       bool
	users       bool
	tool        string
	toolDir     string
}

func (a *App) mongoBackupCommand() *cobra.Command {
	var o mongoBackupOptions
	cmd := &cobra.Command{
		Use:     "mongodb",
		Aliases: []string{"mongo"},
		Short:   "Back up MongoDB through the Go driver (or mongodump with --tool)",
		Long: `Back up a MongoDB server, replica set or cluster into the repository,
streamed: nothing is written to local disk.

Every collection is read with the Go driver and stored as mongodump
writes it (mongodb/<db>/<collection>.bson with its .metadata.json, plus
mongodb/backup.json), at most --jobs collections at once, so a restored
copy of the files also suits mongorestore. Documents are stored as the
server sent them, never re-encoded: unchanged data deduplicates between
backups. Views are recorded (definition only); system collections are
skipped, except admin's users and roles with --users.

On a replica set, --oplog (on by default there) records the oplog from
the start of the dump to its end in mongodb/oplog.bson, for a consistent
point (restore mongodb --oplog-replay), like mongodump --oplog.

--tool mongodump runs mongodump --archive instead and stores its archive;
restoring it needs mongorestore.

The password (in the URI or from --db-password-file) never appears on a
command line or in the snapshot: tools get it through a temporary 0600
configuration file. Nothing is saved unless every collection is dumped.`,
		Example: `  bunker backup mongodb --uri mongodb://backup@db1:27017,db2:27017/?replicaSet=rs0 --db-password-file /etc/bunker/mongo.pw
  bunker backup mongodb --uri mongodb://127.0.0.1/ --db shop --exclude 'shop.cache*'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runMongoBackup(cmd.Context(), cmd, o)
		},
	}
	o.conn.add(cmd)
	o.src.add(cmd, "dump at most `N` collections at once (with --tool mongodump: its --numParallelCollections)")
	fl := cmd.Flags()
	fl.StringArrayVar(&o.databases, "db", nil, "back up only this `database` (repeatable; local and config only when named)")
	fl.StringArrayVar(&o.collections, "collection", nil, "back up only this `DB.COLLECTION` (repeatable)")
	fl.StringArrayVar(&o.excludes, "exclude", nil, "skip namespaces matching `GLOB` (DB.COLLECTION, * matches anything; a bare DB is DB.*)")
	fl.BoolVar(&o.oplog, "oplog", false, "record the oplog during the dump for a consistent point (default: on for a replica set)")
	fl.BoolVar(&o.users, "users", false, "also back up admin's users and roles (admin.system.users, system.roles) if permitted")
	fl.StringVar(&o.tool, "tool", "", "dump with `TOOL` instead of the driver: mongodump")
	fl.StringVar(&o.toolDir, "tool-dir", "", "`directory` of mongodump and mongorestore (default: PATH)")
	return cmd
}

func (a *App) runMongoBackup(ctx context.Context, cmd *cobra.Command, o mongoBackupOptions) error {
	cfg, err := a.mongoConfig(&o.conn)
	if err != nil {
		return err
	}
	excl, err := mongoPatterns("exclude", o.excludes)
	if err != nil {
		return err
	}
	b := app.MongoBackup{Server: cfg, Tags: o.src.tags, Host: o.src.hostname(), Options: mongodb.DumpOptions{
		Select: mongodb.Selector{Databases: o.databases, Collections: o.collections, Exclude: excl},
		Jobs:   o.src.jobs, Users: o.users,
	}}
	// Checked before the repository is opened: a bad flag fails at once.
	check := b.Options
	if err := check.Validate(); err != nil {
		return err
	}
	switch o.tool {
	case "", "driver":
	case "mongodump":
		if b.Tools, err = a.mongoTools(o.toolDir); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--tool %q: the only tool is mongodump", o.tool)
	}
	if cmd.Flags().Changed("oplog") {
		b.Oplog = &o.oplog
	}
	c, err := a.core()
	if err != nil {
		return err
	}
	if b.Repo, err = a.repoRef(ctx); err != nil {
		return err
	}
	res, err := c.RunMongoBackup(ctx, b)
	if err != nil {
		return err
	}
	a.printSourceSummary(res.Snapshot, res.Write)
	return nil
}

type mongoRestoreOptions struct {
	conn        mongoConnFlags
	includes    []string
	excludes    []string
	from, to    []string
	drop        bool
	jobs        int
	oplogReplay bool
	oplogLimit  string
	users       bool
	toDir       string
	toolDir     string
	hosts       []string
}

func (a *App) mongoRestoreCommand() *cobra.Command {
	var o mongoRestoreOptions
	cmd := &cobra.Command{
		Use:     "mongodb SNAPSHOT",
		Aliases: []string{"mongo"},
		Short:   "Restore a MongoDB backup into a server (or a directory for mongorestore)",
		Long: `Restore a MongoDB backup ("latest" is the newest MongoDB backup) into the
server of --uri: each collection is created with its options, its
documents inserted in unordered batches (1000 documents or 16 MiB), its
indexes built after the data; views come last. Each collection is
reported; one that fails does not stop the others, and the exit code is
then 3.

Namespaces are chosen and renamed as with mongorestore: --ns-include and
--ns-exclude take DB.COLLECTION patterns where * matches anything (a bare
DB means DB.*), --ns-from/--ns-to pairs rename ('shop.*' to
'shop_copy.*'). --drop drops each collection first.

--oplog-replay applies the oplog entries recorded during the dump
(consistent as of its end). --oplog-limit TS|TIME restores to a point in
time: the entries of the backup and then those archived by
"bunker mongodb oplog-archive" before TS (SECONDS[:ORDINAL]) or TIME
(RFC 3339) are applied, the target excluded.

A backup made with --tool mongodump is piped to mongorestore --archive.
--to-dir writes the backup's files into a directory instead, in
mongodump's layout, for mongorestore or inspection.`,
		Example: `  bunker restore mongodb latest --uri mongodb://127.0.0.1:27017/ --drop
  bunker restore mongodb 3fa9 --uri mongodb://127.0.0.1/ --ns-from 'shop.*' --ns-to 'shop_copy.*'
  bunker restore mongodb latest --uri mongodb://127.0.0.1/ --oplog-limit 2026-05-01T10:00:00Z`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runMongoRestore(cmd.Context(), args[0], o)
		},
	}
	o.conn.add(cmd)
	fl := cmd.Flags()
	fl.StringArrayVar(&o.includes, "ns-include", nil, "restore only namespaces matching `GLOB` (repeatable)")
	fl.StringArrayVar(&o.excludes, "ns-exclude", nil, "do not restore namespaces matching `GLOB` (repeatable)")
	fl.StringArrayVar(&o.from, "ns-from", nil, "rename namespaces matching `GLOB` (with --ns-to, repeatable in pairs)")
	fl.StringArrayVar(&o.to, "ns-to", nil, "new name `GLOB` for the --ns-from of the same position")
	fl.BoolVar(&o.drop, "drop", false, "drop each collection before restoring it")
	fl.IntVarP(&o.jobs, "jobs", "j", 2, "restore at most `N` collections at once")
	flagRange(fl, 1, 1000, "jobs")
	fl.BoolVar(&o.oplogReplay, "oplog-replay", false, "apply the oplog entries recorded during the dump")
	fl.StringVar(&o.oplogLimit, "oplog-limit", "", "restore to this point: apply oplog entries (of the backup and the archive) before `TS|TIME`")
	fl.BoolVar(&o.users, "users", false, "also restore admin's users and roles, when the backup has them")
	fl.StringVar(&o.toDir, "to-dir", "", "write the backup's files (mongodump layout) into `DIR` instead of a server")
	fl.StringVar(&o.toolDir, "tool-dir", "", "`directory` of mongorestore, for --tool mongodump backups (default: PATH)")
	fl.StringArrayVar(&o.hosts, "host", nil, "with \"latest\": only snapshots of this `host`")
	return cmd
}

func (a *App) runMongoRestore(ctx context.Context, ref string, o mongoRestoreOptions) error {
	if len(o.from) != len(o.to) {
		return errors.New("--ns-from and --ns-to must come in pairs")
	}
	incl, err := mongoPatterns("ns-include", o.includes)
	if err != nil {
		return err
	}
	excl, err := mongoPatterns("ns-exclude", o.excludes)
	if err != nil {
		return err
	}
	var renames []*mongodb.Rename
	for i := range o.from {
		rn, err := mongodb.ParseRename(o.from[i], o.to[i])
		if err != nil {
			return fmt.Errorf("--ns-from/--ns-to: %w", err)
		}
		renames = append(renames, rn)
	}
	var limit *mongodb.Timestamp
	if o.oplogLimit != "" {
		ts, err := mongodb.ParseLimit(o.oplogLimit)
		if err != nil {
			return fmt.Errorf("--oplog-limit: %w", err)
		}
		limit = &ts
	}
	req := app.MongoRestore{Snapshot: ref, Filter: snapshot.Filter{Hosts: o.hosts}, ToDir: o.toDir, ToolDir: o.toolDir,
		Options: mongodb.RestoreOptions{
			Select:  mongodb.Selector{Include: incl, Exclude: excl},
			Renames: renames, Drop: o.drop, Jobs: o.jobs, Users: o.users,
			OplogReplay: o.oplogReplay || limit != nil, OplogLimit: limit,
			Done: a.printMongoCollection,
		}}
	if err := req.Validate(); err != nil {
		return err
	}
	if a.g.verbose > 0 {
		req.ToolStderr = a.Stderr
	}
	if o.toDir == "" {
		// Checked when the server is needed: after the snapshot is found.
		if req.Server, err = a.mongoServer(&o.conn); err != nil {
			return err
		}
	}
	c, err := a.core()
	if err != nil {
		return err
	}
	if req.Repo, err = a.repoRef(ctx); err != nil {
		return err
	}
	res, err := c.RestoreMongo(ctx, req)
	if res == nil {
		return err
	}
	if o.toDir != "" {
		a.printMongoToDir(res, o.toDir)
	} else {
		a.printMongoRestoreSummary(res)
	}
	return err
}

func (a *App) printMongoToDir(res *app.MongoRestoreResult, dir string) {
	if a.g.json {
		a.out.jsonLine(map[string]any{"message_type": "summary", "snapshot_id": res.Snapshot.ID.String(), "files": res.Files, "bytes": res.Bytes, "target": dir})
		return
	}
	a.out.textf("Wrote %d files (%s) of snapshot %s to %s (mongorestore %s)", res.Files, formatBytes(res.Bytes), res.Snapshot.ShortID(), dir, dir)
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

func (a *App) printMongoRestoreSummary(r *app.MongoRestoreResult) {
	sn, res, dur := r.Snapshot, r.Restore, r.Duration
	var docs int64
	for _, c := range res.Collections {
		docs += c.Documents
	}
	if a.g.json {
		m := map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(), "collections": len(res.Collections),
			"failed": res.Failed, "documents": docs, "oplog_applied": res.OplogApplied, "duration_seconds": dur.Seconds()}
		if !res.OplogPos.IsZero() {
			m["oplog_position"] = mongodb.FormatTimestamp(res.OplogPos)
		}
		a.out.jsonLine(m)
		return
	}
	if len(res.Collections) > 0 {
		a.out.textf("Restored %d collections (%d failed), %d documents from snapshot %s in %s",
			len(res.Collections), res.Failed, docs, sn.ShortID(), formatDuration(dur))
	} else {
		a.out.textf("Restored snapshot %s in %s", sn.ShortID(), formatDuration(dur))
	}
	if res.OplogApplied > 0 {
		a.out.textf("Oplog: %d entries applied, up to %s", res.OplogApplied, mongodb.FormatTimestamp(res.OplogPos))
	}
}

type mongoArchiveOptions struct {
	conn     mongoConnFlags
	src      sourceFlags
	interval time.Duration
	once     bool
}

func (a *App) mongoOplogArchiveCommand() *cobra.Command {
	var o mongoArchiveOptions
	cmd := &cobra.Command{
		Use:   "oplog-archive",
		Short: "Archive a replica set's oplog continuously, for point-in-time restores",
		Long: `Tail the oplog (local.oplog.rs) of a replica set and commit what it
brings every --interval as a snapshot of kind "continuous" holding
oplog/<ts>.bson, from where the last archive stopped (or from the end of
the newest MongoDB backup of the same hosts, or else the oldest entry the
oplog has). A gap (the oplog rolled over since) is an error: take a new
backup. "bunker restore mongodb SNAPSHOT --oplog-limit TS|TIME" replays
the archive after restoring a backup.

Runs until interrupted; --once archives what the oplog has now and exits.

Not tested against a real replica set (the test server has no oplog).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runMongoOplogArchive(cmd.Context(), o)
		},
	}
	o.conn.add(cmd)
	o.src.add(cmd, "")
	cmd.Flags().DurationVar(&o.interval, "interval", 30*time.Second, "commit what arrived every `DURATION`")
	flagRange(cmd.Flags(), 1, unbounded, "interval")
	cmd.Flags().BoolVar(&o.once, "once", false, "archive what the oplog has now and exit")
	return cmd
}

func (a *App) runMongoOplogArchive(ctx context.Context, o mongoArchiveOptions) error {
	cfg, err := a.mongoConfig(&o.conn)
	if err != nil {
		return err
	}
	c, err := a.mongoConnect(ctx, cfg)
	if err != nil {
		return err
	}
	paths, host := cfg.SnapshotPaths(), o.src.hostname()
	// The repository is opened once: the archiver commits many times.
	r, err := a.openRepo(ctx)
	if err != nil {
		return err
	}
	all, _, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return err
	}
	ao := mongodb.ArchiveOptions{Interval: o.interval, Once: o.once, Log: a.out.infof, Warn: a.out.warnf,
		Commit: func(ctx context.Context, data []byte, ci mongodb.ChunkInfo) error {
			_, err := a.runSourceBackup(ctx, sourceBackup{
				source: mongodb.OplogSourceName, paths: paths, tags: o.src.tags, host: host, kind: kindContinuous, repo: r, quiet: true,
				write: func(ctx context.Context, w source.Sink) (map[string]string, error) {
					return mongodb.WriteChunk(ctx, w, data, ci)
				},
			})
			return err
		}}
	ao.ChunkEnd, ao.BackupEnd = mongodb.ArchiveResume(snapshotInfos(all), paths)
	return c.ArchiveOplog(ctx, ao)
}

func (a *App) mongoOplogExpireCommand() *cobra.Command {
	return a.expireCommand("oplog-expire", "Forget archived oplog chunks that no kept backup needs",
		`Forget the oplog archive snapshots that only hold entries up to the end
of the oldest MongoDB backup (taken with --oplog) still in the repository,
per deployment (snapshot path). Run it after forget (prune then reclaims
the space). A deployment without such a backup keeps its whole archive.`, mongodb.LogArchive{})
}
