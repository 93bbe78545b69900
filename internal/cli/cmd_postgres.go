package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
)

// addPGConnFlags adds how every PostgreSQL command reaches the server.
func addPGConnFlags(cmd *cobra.Command, c *app.PostgresConn) {
	fl := cmd.Flags()
	fl.StringVar(&c.DSN, "dsn", "", "libpq connection string or URI (default $BUNKER_POSTGRES_DSN, else libpq's PG* variables)")
	fl.StringVar(&c.PasswordFile, "db-password-file", "", "read the database password from this `file` (else the DSN, PGPASSWORD or ~/.pgpass)")
	fl.StringVar(&c.BinDir, "pg-bin", "", "`directory` of pg_dump, pg_restore, pg_basebackup… (default: newest /usr/lib/postgresql/*/bin, then PATH)")
}

// pgConfig is how the flags reach the server.
func (a *App) pgConfig(c app.PostgresConn) (postgres.Config, error) {
	return c.Config(a.Getenv, a.toolStderr())
}

func (a *App) postgresCommands() sourceCommands {
	pg := &cobra.Command{
		Use:   "pg",
		Short: "PostgreSQL WAL archiving: wal-push, wal-spool, wal-fetch, wal-receive, wal-list, wal-expire",
	}
	pg.AddCommand(a.pgWALPushCommand(), a.pgWALFetchCommand(), a.pgWALReceiveCommand(), a.pgWALListCommand(), a.pgWALExpireCommand(), a.pgWALSpoolCommand())
	// pg info and pg check are pgBackRest's info and check.
	pg.AddCommand(a.pgInfoCommand(), a.pgCheckCommand())
	return sourceCommands{backup: a.pgBackupCommand(), restore: a.pgRestoreCommand(), extra: []*cobra.Command{pg}}
}

func (a *App) pgBackupCommand() *cobra.Command {
	var b app.PostgresBackup
	var conn app.PostgresConn
	var sf sourceFlags
	cmd := &cobra.Command{
		Use:     "postgres",
		Aliases: []string{"postgresql", "pg"},
		Short:   "Back up PostgreSQL: pg_dump per database, or a base backup with --physical",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPGBackup(&b); err != nil {
				return err
			}
			b.Logical.Jobs, b.Tags, b.Host = sf.jobs, sf.tags, sf.hostname()
			b.PhysicalOptions.OnArchiveWait = a.reportArchiveWait
			var err error
			if b.Server, err = a.pgConfig(conn); err != nil {
				return err
			}
			return a.dbBackup(cmd.Context(), func(c *app.App, repo app.Repo) (*app.BackupResult, error) {
				b.Repo = repo
				return c.RunPostgresBackup(cmd.Context(), b)
			})
		},
	}
	addPGConnFlags(cmd, &conn)
	sf.add(cmd, "dump at most `N` databases at once")
	f, po := cmd.Flags(), &b.PhysicalOptions
	f.StringArrayVar(&b.Logical.Databases, "database", nil, "back up only this `database` (repeatable)")
	f.BoolVar(&b.Logical.NoGlobals, "no-globals", false, "skip roles and tablespaces (pg_dumpall --globals-only)")
	f.BoolVar(&b.Physical, "physical", false, "take a base backup (pg_basebackup) instead of dumps")
	f.StringVar(&po.WALMethod, "wal-method", "fetch", "with --physical: fetch (include the WAL the backup needs) or none (rely on the WAL archive)")
	f.BoolVar(&po.FastCheckpoint, "fast-checkpoint", true, "with --physical: start with an immediate checkpoint")
	f.StringVar(&po.MaxRate, "max-rate", "", "with --physical: limit the server's transfer `rate` (pg_basebackup --max-rate, e.g. 100M)")
	f.BoolVar(&b.Full, "full", false, "with --physical: record a full backup (no parent)")
	f.BoolVar(&b.Differential, "differential", false, "with --physical: record a differential backup against the last full one")
	f.DurationVar(&po.ArchiveTimeout, "archive-timeout", postgres.DefaultArchiveTimeout, "with --physical --wal-method none: give up when the server waits longer than this for WAL archiving")
	return cmd
}

// checkPGBackup says, in terms of the flags, what in b does not go
// together.
func checkPGBackup(b *app.PostgresBackup) error {
	switch {
	case !b.Physical && (b.Full || b.Differential || b.PhysicalOptions.MaxRate != ""):
		return errors.New("--full, --differential and --max-rate go with --physical")
	case b.Full && b.Differential:
		return errors.New("--full and --differential exclude each other")
	case b.PhysicalOptions.ArchiveTimeout <= 0:
		return fmt.Errorf("--archive-timeout %v: must be positive", b.PhysicalOptions.ArchiveTimeout)
	case b.Physical && (len(b.Logical.Databases) > 0 || b.Logical.NoGlobals):
		return errors.New("--database and --no-globals are for logical backups; a base backup holds the whole cluster")
	}
	return nil
}

// reportArchiveWait says that a base backup waits for WAL archiving, and
// what the archiver last did: a failing archive_command otherwise looks
// like a hung backup.
func (a *App) reportArchiveWait(w postgres.ArchiveWait) {
	a.out.warnf("the server waits for WAL archiving (%v of --archive-timeout %v); %v", w.Waited.Round(time.Second), w.Timeout, w.Archiver)
}

func (a *App) pgRestoreCommand() *cobra.Command {
	var req app.PostgresRestore
	var conn app.PostgresConn
	var args app.PostgresRestoreArgs
	cmd := &cobra.Command{
		Use:     "postgres SNAPSHOT",
		Aliases: []string{"postgresql", "pg"},
		Short:   "Restore PostgreSQL databases, or a cluster to a point in time",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, refs []string) error {
			req.Snapshot = refs[0]
			if err := args.Apply(&req); err != nil {
				return err
			}
			if !req.Physical {
				req.Logical.Report = a.reportPGDatabase
			}
			return a.runPGRestore(cmd.Context(), req, conn)
		},
	}
	addPGConnFlags(cmd, &conn)
	f, lo, po := cmd.Flags(), &req.Logical, &req.PhysicalOptions
	f.StringArrayVar(&lo.Databases, "database", nil, "restore only this `database` (repeatable)")
	f.StringVar(&args.FromKubernetes, "from-kubernetes", "", "SNAPSHOT is a Kubernetes backup: restore the database it took of this `namespace/service` (backup kubernetes --database)")
	f.IntVarP(&lo.Jobs, "jobs", "j", 2, "restore at most `N` databases at once")
	flagRange(f, 1, 1000, "jobs")
	f.BoolVar(&lo.Clean, "clean", false, "drop each database before recreating it")
	f.BoolVar(&lo.NoGlobals, "no-globals", false, "do not restore roles and tablespaces")
	f.BoolVar(&lo.NoOwner, "no-owner", false, "do not restore object ownership (pg_restore --no-owner)")
	f.BoolVar(&req.Physical, "physical", false, "restore a base backup into --pgdata")
	f.StringVar(&po.PGData, "pgdata", "", "with --physical: the data `directory` to create")
	f.StringVar(&po.WALDir, "wal-dir", "", "with a target: where to put the archived WAL for recovery (default PGDATA.wal beside it)")
	f.StringVar(&po.Owner, "owner", "", "with --physical: make this `user` own the restored files (default: the owner the backup recorded)")
	f.BoolVar(&po.NoVerify, "no-verify", false, "with --physical: skip pg_verifybackup")
	f.BoolVar(&po.Delta, "delta", false, "with --physical: restore into an existing data directory of a stopped server, rewriting only the files that differ and deleting what the backup lacks")
	f.StringVar(&args.TargetTime, "target-time", "", "recover to this `time` (RFC 3339 or 2006-01-02 15:04:05 local)")
	f.StringVar(&po.Target.LSN, "target-lsn", "", "recover to this `LSN` (e.g. 0/3000060)")
	f.StringVar(&po.Target.XID, "target-xid", "", "recover to this transaction `ID`")
	f.StringVar(&po.Target.Name, "target-name", "", "recover to this named restore `point` (pg_create_restore_point)")
	f.BoolVar(&po.Target.Latest, "target-latest", false, "recover to the end of the archived WAL")
	f.BoolVar(&po.Target.Exclusive, "target-exclusive", false, "stop just before the target instead of just after it")
	f.StringVar(&po.Target.Action, "target-action", "promote", "after reaching the target: promote, pause or shutdown")
	return cmd
}

// reportPGDatabase prints, with --json, the outcome of one database of a
// logical restore.
func (a *App) reportPGDatabase(name string, err error) {
	res := map[string]any{"message_type": "database", "name": name, "ok": err == nil}
	if err != nil {
		res["error"] = err.Error()
	}
	if a.g.json {
		a.out.jsonLine(res)
	}
}

// runPGRestore runs the PostgreSQL restore use case on -r, with the
// server of conn unless a physical restore does not verify, and prints
// its result.
func (a *App) runPGRestore(ctx context.Context, req app.PostgresRestore, conn app.PostgresConn) error {
	if !req.Physical || !req.PhysicalOptions.NoVerify {
		var err error
		if req.Server, err = a.pgConfig(conn); err != nil {
			return err
		}
	}
	c, repo, err := a.coreRepo(ctx)
	if err != nil {
		return err
	}
	req.Repo = repo
	res, err := c.RestorePostgres(ctx, req)
	if err != nil {
		return err
	}
	if req.Physical {
		a.printPGRestorePhysical(res)
		return nil
	}
	sn := res.Snapshot
	a.out.result(map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(), "restored": res.Databases, "duration_seconds": res.Duration.Seconds()},
		"restored snapshot %s to %s in %s", sn.ShortID(), res.Server, formatDuration(res.Duration))
	return nil
}

// printPGRestorePhysical prints the restored data directory and how to
// start it (textf prints nothing with --json).
func (a *App) printPGRestorePhysical(res *app.PostgresRestoreResult) {
	sn, pgdata, ph := res.Snapshot, res.PGData, res.Physical
	if ph.Verified {
		a.out.textf("pg_verifybackup: backup successfully verified")
	}
	a.out.result(map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(), "pgdata": pgdata, "wal_dir": ph.WALDir,
		"recovery": ph.Recovery, "duration_seconds": res.Duration.Seconds(), "files_kept": ph.FilesKept, "files_written": ph.FilesWritten, "deleted": ph.Deleted},
		"restored base backup %s into %s in %s", sn.ShortID(), pgdata, formatDuration(res.Duration))
	if ph.FilesKept+ph.FilesWritten+ph.Deleted > 0 {
		a.out.textf("delta: kept %d files as they were, rewrote %d, deleted %d the backup lacks", ph.FilesKept, ph.FilesWritten, ph.Deleted)
	}
	if !ph.Replay {
		a.out.textf("start it with: pg_ctl -D %s start", pgdata)
		return
	}
	a.out.textf("recovery is configured (%s); start the server to replay WAL: pg_ctl -D %s start", recoveryText(ph.Recovery), pgdata)
	a.out.textf("remove %s once recovery has finished", ph.WALDir)
}

// recoveryText says what a restored data directory recovers to: its
// recovery target settings, or, with none (--target-latest), the end of
// the archived WAL.
func recoveryText(settings []string) string {
	if len(settings) == 0 {
		return "to the end of the archived WAL"
	}
	return strings.Join(settings, ", ")
}

// ---- WAL archive commands ----

func (a *App) pgWALPushCommand() *cobra.Command {
	var sysid string
	var spool walSpoolFlags
	cmd := &cobra.Command{
		Use:   "wal-push PATH...",
		Short: "Archive WAL files (use as archive_command = 'bunker pg wal-push %p')",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if spool.dir != "" {
				return a.spoolWAL(cmd.Context(), args, sysid, spool)
			}
			p := app.WALPush{Paths: args, SystemID: sysid}
			if err := p.Validate(); err != nil {
				return err
			}
			return a.dbBackup(cmd.Context(), func(c *app.App, repo app.Repo) (*app.BackupResult, error) {
				p.Repo = repo
				return c.PushWAL(cmd.Context(), p)
			})
		},
	}
	spool.add(cmd)
	cmd.Flags().StringVar(&sysid, "system-id", "", "the cluster's system `identifier` (default: read from the WAL or pg_control)")
	return cmd
}

func (a *App) pgWALFetchCommand() *cobra.Command {
	var sysid string
	cmd := &cobra.Command{
		Use:   "wal-fetch NAME DEST",
		Short: "Fetch an archived WAL file (use as restore_command = 'bunker pg wal-fetch %f %p')",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := app.WALFetch{Name: args[0], Dest: args[1], SystemID: sysid}
			if err := f.Validate(); err != nil {
				return err
			}
			return a.onRepo(cmd.Context(), func(c *app.App, repo app.Repo) error {
				f.Repo = repo
				return c.FetchWAL(cmd.Context(), f)
			})
		},
	}
	cmd.Flags().StringVar(&sysid, "system-id", "", "the cluster's system `identifier` (default: read from global/pg_control here)")
	return cmd
}

func (a *App) pgWALReceiveCommand() *cobra.Command {
	var conn app.PostgresConn
	var req app.WALReceive
	cmd := &cobra.Command{
		Use:   "wal-receive",
		Short: "Stream WAL from the server into the repository (RPO of seconds)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if req.Server, err = a.pgConfig(conn); err != nil {
				return err
			}
			req.CacheRoot = a.cacheRoot()
			return a.onRepo(cmd.Context(), func(c *app.App, repo app.Repo) error {
				req.Repo = repo
				return c.ReceiveWAL(cmd.Context(), req)
			})
		},
	}
	addPGConnFlags(cmd, &conn)
	f := cmd.Flags()
	f.StringVar(&req.Slot, "slot", "bunker", "replication `slot` name")
	f.StringVar(&req.Spool, "spool", "", "`directory` for WAL on its way (default: in the cache directory)")
	f.DurationVar(&req.Interval, "interval", 10*time.Second, "archive the growing segment this often")
	flagRange(f, 1, unbounded, "interval")
	return cmd
}

func (a *App) pgWALListCommand() *cobra.Command {
	var sysid string
	cmd := &cobra.Command{
		Use:   "wal-list",
		Short: "List the archived WAL files per system, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.onRepo(cmd.Context(), func(c *app.App, repo app.Repo) error {
				files, err := c.ListWAL(cmd.Context(), repo, sysid)
				for _, f := range files {
					e := map[string]any{"message_type": "wal", "system_identifier": f.System, "name": f.Name, "kind": f.Kind,
						"snapshot": f.Snapshot.ID, "time": f.Snapshot.Time.UTC().Format(time.RFC3339)}
					a.out.result(e, "%s  %-28s %-14s %s  %s", f.System, f.Name, f.Kind, f.Snapshot.ID[:8], e["time"])
				}
				return err
			})
		},
	}
	cmd.Flags().StringVar(&sysid, "system-id", "", "only this system `identifier`")
	return cmd
}

func (a *App) pgWALExpireCommand() *cobra.Command {
	return a.expireCommand("wal-expire", "Forget archived WAL that no kept base backup needs", postgres.WALArchive{})
}
