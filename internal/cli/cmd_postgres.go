package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/source/kube"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
	"github.com/bunkerbackup/bunker/internal/timespec"
)

// pgConnFlags are how every PostgreSQL command reaches the server.
type pgConnFlags struct {
	dsn          string
	passwordFile string
	binDir       string
}

func (f *pgConnFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.dsn, "dsn", "", "libpq connection string or URI (default $BUNKER_POSTGRES_DSN, else libpq's PG* variables)")
	fl.StringVar(&f.passwordFile, "db-password-file", "", "read the database password from this `file` (else the DSN, PGPASSWORD or ~/.pgpass)")
	fl.StringVar(&f.binDir, "pg-bin", "", "`directory` of pg_dump, pg_restore, pg_basebackup… (default: newest /usr/lib/postgresql/*/bin, then PATH)")
}

// pgClient opens a client for the flags; the caller closes it.
func (a *App) pgClient(f *pgConnFlags) (*postgres.Client, error) {
	cfg, err := a.pgConfig(f)
	if err != nil {
		return nil, err
	}
	return postgres.Open(cfg)
}

// pgConfig is how the flags reach the server.
func (a *App) pgConfig(f *pgConnFlags) (postgres.Config, error) {
	dsn := f.dsn
	if dsn == "" {
		dsn = a.Getenv("BUNKER_POSTGRES_DSN")
	}
	ci, err := postgres.ParseConnInfo(dsn)
	if err != nil {
		return postgres.Config{}, err
	}
	if f.passwordFile != "" {
		pw, err := readSecretFile(f.passwordFile)
		if err != nil {
			return postgres.Config{}, fmt.Errorf("--db-password-file: %w", err)
		}
		ci = ci.With("password", pw)
	}
	var stderr io.Writer
	if a.g.verbose > 0 {
		stderr = a.Stderr
	}
	return postgres.Config{Conn: ci, BinDir: f.binDir, Stderr: stderr, Getenv: a.Getenv}, nil
}

func (a *App) postgresCommands() sourceCommands {
	pg := &cobra.Command{
		Use:   "pg",
		Short: "PostgreSQL WAL archiving: wal-push, wal-spool, wal-fetch, wal-receive, wal-list, wal-expire",
	}
	pg.AddCommand(a.pgWALPushCommand(), a.pgWALFetchCommand(), a.pgWALReceiveCommand(), a.pgWALListCommand(), a.pgWALExpireCommand(), a.pgWALSpoolCommand())
	pg.AddCommand(a.pgInfoCommands()...)
	return sourceCommands{backup: a.pgBackupCommand(), restore: a.pgRestoreCommand(), extra: []*cobra.Command{pg}}
}

type pgBackupOptions struct {
	conn      pgConnFlags
	src       sourceFlags
	databases []string
	noGlobals bool
	physical  bool
	walMethod string
	fast      bool
	maxRate   string
	full      bool
	diff      bool
	// archiveTimeout bounds the server's wait for WAL archiving.
	archiveTimeout time.Duration
}

func (a *App) pgBackupCommand() *cobra.Command {
	var o pgBackupOptions
	cmd := &cobra.Command{
		Use:     "postgres",
		Aliases: []string{"postgresql", "pg"},
		Short:   "Back up PostgreSQL: pg_dump per database, or a base backup with --physical",
		Long: `Back up a PostgreSQL server into the repository, streamed: nothing is
written to local disk.

Logical (default): pg_dump --format=custom of every database (or each
--database), at most --jobs at once, plus roles and tablespaces from
pg_dumpall --globals-only, in one snapshot with a file per database.
Dumps are uncompressed so that unchanged rows deduplicate between backups;
the repository compresses them.

Physical (--physical): a base backup by pg_basebackup, stored file by file
under pgdata/ with its backup manifest. Every physical backup is
deduplicated against the earlier ones (unchanged files cost nothing), so
each is independent for restores and incremental in storage; --full and
--differential only label the snapshot's kind and parent. With WAL
archiving (bunker pg wal-push or wal-receive) use --wal-method none: the
server then waits at the end until the WAL the backup needs is archived;
bunker reports the wait and gives up after --archive-timeout, naming
pg_stat_archiver's last failure.

The password never appears on a command line: it goes to the PostgreSQL
programs through a temporary password file. Nothing is saved unless every
dump succeeds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runPGBackup(cmd.Context(), o)
		},
	}
	o.conn.add(cmd)
	o.src.add(cmd, "dump at most `N` databases at once")
	f := cmd.Flags()
	f.StringArrayVar(&o.databases, "database", nil, "back up only this `database` (repeatable)")
	f.BoolVar(&o.noGlobals, "no-globals", false, "skip roles and tablespaces (pg_dumpall --globals-only)")
	f.BoolVar(&o.physical, "physical", false, "take a base backup (pg_basebackup) instead of dumps")
	f.StringVar(&o.walMethod, "wal-method", "fetch", "with --physical: fetch (include the WAL the backup needs) or none (rely on the WAL archive)")
	f.BoolVar(&o.fast, "fast-checkpoint", true, "with --physical: start with an immediate checkpoint")
	f.StringVar(&o.maxRate, "max-rate", "", "with --physical: limit the server's transfer `rate` (pg_basebackup --max-rate, e.g. 100M)")
	f.BoolVar(&o.full, "full", false, "with --physical: record a full backup (no parent)")
	f.BoolVar(&o.diff, "differential", false, "with --physical: record a differential backup against the last full one")
	f.DurationVar(&o.archiveTimeout, "archive-timeout", postgres.DefaultArchiveTimeout, "with --physical --wal-method none: give up when the server waits longer than this for WAL archiving")
	return cmd
}

func (a *App) runPGBackup(ctx context.Context, o pgBackupOptions) error {
	if !o.physical && (o.full || o.diff || o.maxRate != "") {
		return errors.New("--full, --differential and --max-rate go with --physical")
	}
	if o.full && o.diff {
		return errors.New("--full and --differential exclude each other")
	}
	if o.archiveTimeout <= 0 {
		return fmt.Errorf("--archive-timeout %v: must be positive", o.archiveTimeout)
	}
	if o.physical && (len(o.databases) > 0 || o.noGlobals) {
		return errors.New("--database and --no-globals are for logical backups; a base backup holds the whole cluster")
	}
	c, err := a.core()
	if err != nil {
		return err
	}
	b := app.PostgresBackup{Tags: o.src.tags, Host: o.src.hostname(), Physical: o.physical, Full: o.full, Differential: o.diff,
		Logical: postgres.LogicalOptions{Databases: o.databases, Jobs: o.src.jobs, NoGlobals: o.noGlobals},
		PhysicalOptions: postgres.PhysicalOptions{WALMethod: o.walMethod, FastCheckpoint: o.fast, MaxRate: o.maxRate,
			ArchiveTimeout: o.archiveTimeout, OnArchiveWait: a.reportArchiveWait}}
	if b.Server, err = a.pgConfig(&o.conn); err != nil {
		return err
	}
	if b.Repo, err = a.repoRef(ctx); err != nil {
		return err
	}
	res, err := c.RunPostgresBackup(ctx, b)
	if err != nil {
		return err
	}
	a.printSourceSummary(res.Snapshot, res.Write)
	return nil
}

// reportArchiveWait says that a base backup waits for WAL archiving, and
// what the archiver last did: a failing archive_command otherwise looks
// like a hung backup.
func (a *App) reportArchiveWait(w postgres.ArchiveWait) {
	a.out.warnf("the server waits for WAL archiving (%v of --archive-timeout %v); %v", w.Waited.Round(time.Second), w.Timeout, w.Archiver)
}

type pgRestoreOptions struct {
	conn        pgConnFlags
	fromKube    string
	databases   []string
	jobs        int
	clean       bool
	noGlobals   bool
	noOwner     bool
	physical    bool
	pgdata      string
	walDir      string
	owner       string
	noVerify    bool
	targetTime  string
	targetLSN   string
	targetXID   string
	targetName  string
	latest      bool
	exclusive   bool
	action      string
	snapshotRef string
}

func (a *App) pgRestoreCommand() *cobra.Command {
	var o pgRestoreOptions
	cmd := &cobra.Command{
		Use:     "postgres SNAPSHOT",
		Aliases: []string{"postgresql", "pg"},
		Short:   "Restore PostgreSQL databases, or a cluster to a point in time",
		Long: `Restore a PostgreSQL backup. SNAPSHOT is an ID or "latest" (the newest
backup of the kind asked for).

Logical: recreates roles and tablespaces (errors for roles that exist are
ignored), then every database (or each --database) with pg_restore
--create, --jobs databases at once. A database that exists fails unless
--clean drops it first. A failed database is reported and the others go
on; the exit code is then 3.

Physical (--physical --pgdata DIR): lays down the base backup in DIR
(absent or empty), checks it with pg_verifybackup, and with
--target-time, --target-lsn, --target-xid, --target-name or
--target-latest fetches the archived WAL into --wal-dir and writes the
recovery settings, so that starting the server replays WAL and stops
exactly at the target (recovery_target_action, default promote). Start
it with: pg_ctl -D DIR start.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.snapshotRef = args[0]
			if o.physical {
				return a.runPGRestorePhysical(cmd.Context(), o)
			}
			return a.runPGRestoreLogical(cmd.Context(), o)
		},
	}
	o.conn.add(cmd)
	f := cmd.Flags()
	f.StringArrayVar(&o.databases, "database", nil, "restore only this `database` (repeatable)")
	f.StringVar(&o.fromKube, "from-kubernetes", "", "SNAPSHOT is a Kubernetes backup: restore the database it took of this `namespace/service` (backup kubernetes --database)")
	f.IntVarP(&o.jobs, "jobs", "j", 2, "restore at most `N` databases at once")
	flagRange(f, 1, 1000, "jobs")
	f.BoolVar(&o.clean, "clean", false, "drop each database before recreating it")
	f.BoolVar(&o.noGlobals, "no-globals", false, "do not restore roles and tablespaces")
	f.BoolVar(&o.noOwner, "no-owner", false, "do not restore object ownership (pg_restore --no-owner)")
	f.BoolVar(&o.physical, "physical", false, "restore a base backup into --pgdata")
	f.StringVar(&o.pgdata, "pgdata", "", "with --physical: the data `directory` to create")
	f.StringVar(&o.walDir, "wal-dir", "", "with a target: where to put the archived WAL for recovery (default PGDATA.wal beside it)")
	f.StringVar(&o.owner, "owner", "", "with --physical: make this `user` own the restored files (default: the owner the backup recorded)")
	f.BoolVar(&o.noVerify, "no-verify", false, "with --physical: skip pg_verifybackup")
	f.StringVar(&o.targetTime, "target-time", "", "recover to this `time` (RFC 3339 or 2006-01-02 15:04:05 local)")
	f.StringVar(&o.targetLSN, "target-lsn", "", "recover to this `LSN` (e.g. 0/3000060)")
	f.StringVar(&o.targetXID, "target-xid", "", "recover to this transaction `ID`")
	f.StringVar(&o.targetName, "target-name", "", "recover to this named restore `point` (pg_create_restore_point)")
	f.BoolVar(&o.latest, "target-latest", false, "recover to the end of the archived WAL")
	f.BoolVar(&o.exclusive, "target-exclusive", false, "stop just before the target instead of just after it")
	f.StringVar(&o.action, "target-action", "promote", "after reaching the target: promote, pause or shutdown")
	return cmd
}

func (a *App) runPGRestoreLogical(ctx context.Context, o pgRestoreOptions) error {
	if o.pgdata != "" || o.targetTime != "" || o.targetLSN != "" || o.targetXID != "" || o.targetName != "" || o.latest {
		return errors.New("--pgdata and --target-* need --physical (point-in-time restores start from a base backup)")
	}
	req := app.PostgresRestore{Snapshot: o.snapshotRef, Logical: postgres.RestoreOptions{
		Databases: o.databases, Jobs: o.jobs, Clean: o.clean, NoGlobals: o.noGlobals, NoOwner: o.noOwner,
		Report: func(name string, err error) {
			res := map[string]any{"message_type": "database", "name": name, "ok": err == nil}
			if err != nil {
				res["error"] = err.Error()
			}
			if a.g.json {
				a.out.jsonLine(res)
			}
		},
	}}
	if o.fromKube != "" {
		ns, svc, ok := strings.Cut(o.fromKube, "/")
		if !ok || ns == "" || svc == "" || strings.Contains(svc, "/") {
			return fmt.Errorf("--from-kubernetes %q: want NAMESPACE/SERVICE", o.fromKube)
		}
		req.FromKubernetes = &kube.Database{Namespace: ns, Service: svc}
	}
	res, err := a.runPGRestore(ctx, req, &o.conn)
	if err != nil {
		return err
	}
	sn := res.Snapshot
	if a.g.json {
		a.out.jsonLine(map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(), "restored": res.Databases, "duration_seconds": res.Duration.Seconds()})
	} else {
		a.out.textf("restored snapshot %s to %s in %s", sn.ShortID(), res.Server, formatDuration(res.Duration))
	}
	return nil
}

// runPGRestore runs the PostgreSQL restore use case on -r, with the
// server of conn unless a physical restore does not verify.
func (a *App) runPGRestore(ctx context.Context, req app.PostgresRestore, conn *pgConnFlags) (*app.PostgresRestoreResult, error) {
	c, err := a.core()
	if err != nil {
		return nil, err
	}
	if !req.Physical || !req.PhysicalOptions.NoVerify {
		if req.Server, err = a.pgConfig(conn); err != nil {
			return nil, err
		}
	}
	if req.Repo, err = a.repoRef(ctx); err != nil {
		return nil, err
	}
	return c.RestorePostgres(ctx, req)
}

func (a *App) runPGRestorePhysical(ctx context.Context, o pgRestoreOptions) error {
	if o.pgdata == "" {
		return errors.New("--physical needs --pgdata DIR")
	}
	if len(o.databases) > 0 || o.clean {
		return errors.New("--database and --clean are for logical restores")
	}
	target := postgres.RecoveryTarget{LSN: o.targetLSN, XID: o.targetXID, Name: o.targetName, Latest: o.latest, Exclusive: o.exclusive, Action: o.action}
	if o.targetTime != "" {
		t, err := timespec.ParseTime(o.targetTime)
		if err != nil {
			return fmt.Errorf("--target-time: %w", err)
		}
		target.Time = t
	}
	req := app.PostgresRestore{Snapshot: o.snapshotRef, Physical: true, PhysicalOptions: app.PostgresPhysicalOptions{
		PGData: o.pgdata, WALDir: o.walDir, Owner: o.owner, Target: target, NoVerify: o.noVerify}}
	res, err := a.runPGRestore(ctx, req, &o.conn)
	if err != nil {
		return err
	}
	a.printPGRestorePhysical(res)
	return nil
}

func (a *App) printPGRestorePhysical(res *app.PostgresRestoreResult) {
	sn, pgdata, ph := res.Snapshot, res.PGData, res.Physical
	if ph.Verified {
		a.out.textf("pg_verifybackup: backup successfully verified")
	}
	if a.g.json {
		a.out.jsonLine(map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(), "pgdata": pgdata, "wal_dir": ph.WALDir,
			"recovery": ph.Recovery, "duration_seconds": res.Duration.Seconds()})
		return
	}
	a.out.textf("restored base backup %s into %s in %s", sn.ShortID(), pgdata, formatDuration(res.Duration))
	if ph.Replay {
		a.out.textf("recovery is configured (%s); start the server to replay WAL: pg_ctl -D %s start", recoveryText(ph.Recovery), pgdata)
		a.out.textf("remove %s once recovery has finished", ph.WALDir)
	} else {
		a.out.textf("start it with: pg_ctl -D %s start", pgdata)
	}
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
		Long: `Archive WAL segments (or history files) into the repository. Made for
PostgreSQL's archive_command, which runs in the data directory:

  archive_command = 'BUNKER_PASSWORD_FILE=/etc/bunker/pw bunker -r REPO pg wal-push %p'

It exits 0 only once the files are durable in the repository (packs, index
and the snapshot written), so PostgreSQL recycles nothing that is not
safely archived. Pushing a file again is harmless. The system identifier
comes from the segment's header, else from global/pg_control in the
current directory, else --system-id.

With --spool DIR it exits 0 once the files are durable in DIR, and a
pusher ('bunker pg wal-spool DIR', a service) archives them in batches;
see 'bunker pg wal-spool --help'.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if spool.dir != "" {
				return a.spoolWAL(cmd.Context(), args, sysid, spool)
			}
			return a.pushWAL(cmd.Context(), nil, args, sysid, false)
		},
	}
	spool.add(cmd)
	cmd.Flags().StringVar(&sysid, "system-id", "", "the cluster's system `identifier` (default: read from the WAL or pg_control)")
	return cmd
}

// pushWAL stores WAL files as one continuous snapshot.
func (a *App) pushWAL(ctx context.Context, r *repository.Repository, paths []string, sysid string, quiet bool) error {
	sysid, err := postgres.ArchiveSystemID(paths, sysid, "global/pg_control")
	if err != nil {
		return err
	}
	b := sourceBackup{source: postgres.Source, paths: []string{"/postgres/" + sysid + "/wal"}, kind: kindContinuous, repo: r, quiet: quiet,
		host: func() string { h, _ := os.Hostname(); return h }(),
		write: func(ctx context.Context, s source.Sink) (map[string]string, error) {
			m, err := postgres.ArchiveWAL(ctx, s, paths, sysid)
			if err != nil {
				return nil, err
			}
			return m.Map(), nil
		}}
	_, err = a.runSourceBackup(ctx, b)
	return err
}

func (a *App) pgWALFetchCommand() *cobra.Command {
	var sysid string
	cmd := &cobra.Command{
		Use:   "wal-fetch NAME DEST",
		Short: "Fetch an archived WAL file (use as restore_command = 'bunker pg wal-fetch %f %p')",
		Long: `Write the archived WAL file NAME to DEST (atomically: a temporary file,
fsync, rename). Exit code 1 when the archive does not have it, which is
what PostgreSQL expects at the end of the archive. A partial segment from
wal-receive stands in when the full one was never archived.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.fetchWAL(cmd.Context(), args[0], args[1], sysid)
		},
	}
	cmd.Flags().StringVar(&sysid, "system-id", "", "the cluster's system `identifier` (default: read from global/pg_control here)")
	return cmd
}

func (a *App) fetchWAL(ctx context.Context, name, dest, sysid string) error {
	w, err := postgres.ParseWALName(name)
	if err != nil {
		return err
	}
	if sysid, err = postgres.LocalSystemID(sysid, "global/pg_control"); err != nil {
		return err
	}
	r, err := a.openRepoIndexed(ctx)
	if err != nil {
		return err
	}
	all, _, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return err
	}
	return postgres.FetchWAL(ctx, snapshotInfos(all), app.SnapshotTrees(r, all), w.Name, dest, sysid)
}

func (a *App) pgWALReceiveCommand() *cobra.Command {
	var conn pgConnFlags
	var slot, spool string
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "wal-receive",
		Short: "Stream WAL from the server into the repository (RPO of seconds)",
		Long: `Run pg_receivewal --synchronous with a replication slot (created when
missing) and archive completed segments as they close and the growing one
every --interval, until interrupted. Needs a user with the REPLICATION
attribute and a replication entry in pg_hba.conf. Run it as a service
(see docs/POSTGRESQL.md); it resumes where it stopped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.pgClient(&conn)
			if err != nil {
				return err
			}
			defer c.Close()
			r, err := a.openRepo(ctx)
			if err != nil {
				return err
			}
			if spool == "" {
				spool = filepath.Join(a.cacheRoot(), "wal-spool", r.Config().ID[:16], slot)
			}
			a.out.infof("streaming WAL from %s (slot %s) through %s", c.Server(), slot, spool)
			return c.ReceiveWAL(ctx, postgres.ReceiverOptions{Spool: spool, Slot: slot, Interval: interval,
				Logf: func(format string, args ...any) { a.out.infof(format, args...) },
				Push: func(ctx context.Context, paths []string) error { return a.pushWAL(ctx, r, paths, "", true) },
			})
		},
	}
	conn.add(cmd)
	f := cmd.Flags()
	f.StringVar(&slot, "slot", "bunker", "replication `slot` name")
	f.StringVar(&spool, "spool", "", "`directory` for WAL on its way (default: in the cache directory)")
	f.DurationVar(&interval, "interval", 10*time.Second, "archive the growing segment this often")
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
			ctx := cmd.Context()
			r, err := a.openRepo(ctx)
			if err != nil {
				return err
			}
			all, _, err := snapshot.LoadAll(ctx, r)
			if err != nil {
				return err
			}
			type entry struct {
				System   string `json:"system_identifier"`
				Name     string `json:"name"`
				Kind     string `json:"kind"`
				Snapshot string `json:"snapshot"`
				Time     string `json:"time"`
			}
			var out []entry
			for _, f := range postgres.ListArchive(snapshotInfos(all), sysid) {
				out = append(out, entry{f.System, f.Name, f.Kind, f.Snapshot.ID, f.Snapshot.Time.UTC().Format(time.RFC3339)})
			}
			if a.g.json {
				for _, e := range out {
					a.out.jsonLine(typed("wal", e))
				}
				return nil
			}
			for _, e := range out {
				a.out.textf("%s  %-28s %-14s %s  %s", e.System, e.Name, e.Kind, e.Snapshot[:8], e.Time)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&sysid, "system-id", "", "only this system `identifier`")
	return cmd
}

func (a *App) pgWALExpireCommand() *cobra.Command {
	return a.expireCommand("wal-expire", "Forget archived WAL that no kept base backup needs",
		`Forget the WAL archive snapshots that only hold WAL older than the
oldest physical backup still in the repository, per system. Run it after
forget (prune then reclaims the space). A system without any base backup
keeps all of its WAL.`, postgres.WALArchive{})
}
