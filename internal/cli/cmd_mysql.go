package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/source/mysql"
	"github.com/bunkerbackup/bunker/internal/timespec"
	"github.com/spf13/cobra"
)

const mysqlConnHelp = `Connection: --dsn or $BUNKER_MYSQL_DSN, a URL
  mysql://USER:PASSWORD@HOST:PORT/?socket=/run/mysqld/mysqld.sock&tls=true&ssl-ca=FILE
(user and password percent-encoded; every part optional: without host and
socket the local server's default socket, without user the current OS user).
The password may instead come from --db-password-file or $MYSQL_PWD.
tls= is true (verify the server), skip-verify, preferred or false; ssl-ca,
ssl-cert and ssl-key name PEM files. The tools get the credentials in a
temporary 0600 option file (--defaults-extra-file), never on their command
line.`

// mysqlConnFlags are the flags of every command that talks to a server.
type mysqlConnFlags struct {
	dsn          string
	passwordFile string
	toolDir      string
}

func (f *mysqlConnFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.dsn, "dsn", "", "server to connect to, mysql://user:password@host:port/?socket=PATH (default $BUNKER_MYSQL_DSN)")
	// Not --password-file: that is the repository's.
	fl.StringVar(&f.passwordFile, "db-password-file", "", "read the MySQL password from this `file` (else the DSN's, else $MYSQL_PWD)")
	fl.StringVar(&f.toolDir, "tool-dir", "", "directory of mariadb-dump, mariadb, mariadb-binlog, mariadb-backup, mbstream (default: PATH; mysql* names work too)")
}

// conn builds the connection settings from the flags and environment.
func (f *mysqlConnFlags) conn(a *App) (mysql.Conn, error) {
	dsn := f.dsn
	if dsn == "" {
		dsn = a.Getenv("BUNKER_MYSQL_DSN")
	}
	var c mysql.Conn
	if dsn != "" {
		var err error
		if c, err = mysql.ParseDSN(dsn); err != nil {
			return c, err
		}
	}
	switch {
	case f.passwordFile != "":
		pw, err := readSecretFile(f.passwordFile)
		if err != nil {
			return c, fmt.Errorf("read the MySQL password file: %w", err)
		}
		c.Password = pw
	case c.Password == "":
		c.Password = a.Getenv("MYSQL_PWD")
	}
	return c, nil
}

// connect connects to the server of the flags.
func (f *mysqlConnFlags) connect(ctx context.Context, a *App) (*mysql.Source, error) {
	c, err := f.conn(a)
	if err != nil {
		return nil, err
	}
	return mysql.Connect(ctx, mysql.Options{Conn: c, ToolDir: f.toolDir, Warn: func(msg string) { a.out.warnf("%s", msg) }})
}

func (a *App) mysqlCommands() sourceCommands {
	return sourceCommands{
		backup:  a.mysqlBackupCommand(),
		restore: a.mysqlRestoreCommand(),
		extra:   []*cobra.Command{a.mysqlCommand()},
	}
}

func (a *App) mysqlBackupCommand() *cobra.Command {
	var sf sourceFlags
	var cf mysqlConnFlags
	var o mysql.BackupOptions
	cmd := &cobra.Command{
		Use:   "mysql [flags]",
		Short: "Back up a MySQL or MariaDB server",
		Long: `Back up a MySQL or MariaDB server into one snapshot (path /mysql/HOST:PORT,
or /mysql/SOCKET).

Logical (default): one mariadb-dump --single-transaction per database (all
but information_schema, performance_schema, sys and mysql unless --database
names them), --jobs at once, each streamed into mysql/<db>.sql with its
routines, events and triggers; the accounts and grants into
mysql/_users.sql (MariaDB); mysql/backup.json records each dump's binlog
position. The databases are dumped at different moments: a point-in-time
restore replays the binlogs for each from its own position.

Physical (--physical): mariadb-backup --backup --stream=xbstream into
mysql/backup.xbstream. It reads the data directory, so it must run on the
database host.

The snapshot metadata record flavour, server_version, binlog_file,
binlog_pos, gtid, databases and physical.

` + mysqlConnHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			o.Jobs = sf.jobs
			if err := o.Validate(); err != nil {
				return err
			}
			c, err := a.core()
			if err != nil {
				return err
			}
			conn, err := cf.conn(a)
			if err != nil {
				return err
			}
			b := app.MySQLBackup{Server: mysql.Options{Conn: conn, ToolDir: cf.toolDir}, Options: o, Tags: sf.tags, Host: sf.hostname()}
			if b.Repo, err = a.repoRef(ctx); err != nil {
				return err
			}
			res, err := c.RunMySQLBackup(ctx, b)
			if err != nil {
				return err
			}
			a.printSourceSummary(res.Snapshot, res.Write)
			return nil
		},
	}
	cf.add(cmd)
	sf.add(cmd, "dump `N` databases at once (physical: mariadb-backup --parallel)")
	fl := cmd.Flags()
	fl.StringArrayVar(&o.Databases, "database", nil, "back up this `database` (repeatable; default: all user databases)")
	fl.BoolVar(&o.NoUsers, "no-users", false, "leave out the accounts and grants")
	fl.BoolVar(&o.Physical, "physical", false, "copy the data directory with mariadb-backup instead of dumping")
	fl.StringVar(&o.DataDir, "datadir", "", "with --physical: the server's data `directory` (default: mariadb-backup asks the server)")
	return cmd
}

// mysqlRestoreFlags are the flags of "restore mysql".
type mysqlRestoreFlags struct {
	ff                                                snapshotFilterFlags
	cf                                                mysqlConnFlags
	o                                                 mysql.RestoreOptions
	targetTime, targetPos, datadir, owner, binlogPath string
	physical                                          bool
}

func (a *App) mysqlRestoreCommand() *cobra.Command {
	var f mysqlRestoreFlags
	cmd := &cobra.Command{
		Use:   "mysql SNAPSHOT [flags]",
		Short: "Restore a MySQL or MariaDB backup, optionally to a point in time",
		Long: `Restore a MySQL/MariaDB backup. SNAPSHOT is an ID, a prefix or "latest" (the
newest MySQL backup passing --host/--tag/--path).

Logical: every selected database's dump is fed to the mariadb client of the
server of --dsn (--jobs at once; existing tables of those databases are
replaced), then the accounts (unless --no-users; existing accounts are kept).

Point in time: --target-time T (RFC 3339, or "2006-01-02 15:04:05" local
time; second resolution: events logged in T's second are included) or
--target-position FILE:POS (events that start before it) replays the
binlogs archived by "bunker mysql binlog-archive" into each database, from
that database's own dump position (mariadb-binlog --database=DB). The
archive must cover the range; it is checked before anything is loaded.

Physical (--physical --datadir DIR): extracts the xbstream into DIR (empty
or new) with mbstream and prepares it with mariadb-backup --prepare, then
gives it to --owner (default mysql when run as root). Start mariadbd on it.

` + mysqlConnHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := a.mysqlRestoreRequest(cmd, &f, args[0])
			if err != nil {
				return err
			}
			return a.runMySQLRestore(cmd.Context(), req)
		},
	}
	addFilterFlags(cmd, &f.ff)
	f.cf.add(cmd)
	fl := cmd.Flags()
	fl.StringArrayVar(&f.o.Databases, "database", nil, "restore only this `database` (repeatable)")
	fl.IntVarP(&f.o.Jobs, "jobs", "j", 2, "load `N` databases at once")
	flagRange(fl, 1, 1000, "jobs")
	fl.BoolVar(&f.o.NoUsers, "no-users", false, "do not restore the accounts and grants")
	fl.StringVar(&f.targetTime, "target-time", "", "roll forward to this `time` (RFC 3339, or 2006-01-02 15:04:05 local)")
	fl.StringVar(&f.targetPos, "target-position", "", "roll forward to this binlog `FILE:POS`")
	fl.StringVar(&f.binlogPath, "binlog-path", "", "the archive's snapshot `path` (default: the backup's path + /binlog)")
	fl.BoolVar(&f.physical, "physical", false, "restore a physical backup into --datadir")
	fl.StringVar(&f.datadir, "datadir", "", "with --physical: the data `directory` to create (empty or absent)")
	fl.StringVar(&f.owner, "owner", "", "with --physical: give the files to this `user` (default: mysql when run as root)")
	return cmd
}

// mysqlRestoreRequest is the restore the flags ask for.
func (a *App) mysqlRestoreRequest(cmd *cobra.Command, f *mysqlRestoreFlags, ref string) (app.MySQLRestore, error) {
	req := app.MySQLRestore{Snapshot: ref, Filter: f.ff.filter(), Physical: f.physical, BinlogPath: f.binlogPath}
	if f.physical {
		if f.targetTime != "" || f.targetPos != "" {
			return req, errors.New("a physical restore prepares a data directory; roll it forward by hand (see the output) — leave out --target-time/--target-position")
		}
		owner := f.owner
		if !cmd.Flags().Changed("owner") && os.Geteuid() == 0 {
			if _, err := user.Lookup("mysql"); err == nil {
				owner = "mysql"
			}
		}
		req.PhysicalOptions = mysql.PhysicalRestoreOptions{DataDir: f.datadir, Owner: owner, ToolDir: f.cf.toolDir}
		return req, nil
	}
	if f.datadir != "" {
		return req, errors.New("--datadir goes with --physical")
	}
	var tt time.Time
	if f.targetTime != "" {
		t, err := timespec.ParseTime(f.targetTime)
		if err != nil {
			return req, fmt.Errorf("--target-time: %w", err)
		}
		tt = t
	}
	o := f.o
	var err error
	if o.Target, err = mysql.NewTarget(tt, f.targetPos); err != nil {
		return req, err
	}
	conn, err := f.cf.conn(a)
	if err != nil {
		return req, err
	}
	req.Options, req.Server = o, mysql.Options{Conn: conn, ToolDir: f.cf.toolDir}
	return req, nil
}

// runMySQLRestore runs the MySQL restore use case on -r and prints its
// result.
func (a *App) runMySQLRestore(ctx context.Context, req app.MySQLRestore) error {
	c, err := a.core()
	if err != nil {
		return err
	}
	if req.Repo, err = a.repoRef(ctx); err != nil {
		return err
	}
	res, err := c.RestoreMySQL(ctx, req)
	if res == nil {
		return err
	}
	if req.Physical {
		a.mysqlPhysicalSummary(res, req.PhysicalOptions.Owner)
		return err
	}
	a.mysqlRestoreSummary(res)
	for _, e := range res.Logical.UserErrors {
		a.out.warnf("accounts: %s", e)
	}
	return err
}

func (a *App) mysqlRestoreSummary(r *app.MySQLRestoreResult) {
	sn, res, target, dur := r.Snapshot, r.Logical, r.Target, r.Duration
	if a.g.json {
		m := map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(), "server": r.Server,
			"databases": res.Databases, "users": res.Users, "binlog_files": res.BinlogFiles, "duration_seconds": dur.Seconds()}
		if target != nil {
			m["target"] = target.String()
		}
		a.out.jsonLine(m)
		return
	}
	a.out.textf("restored %s from snapshot %s into %s in %s", plural(int64(len(res.Databases)), "database"), sn.ShortID(), r.Server, formatDuration(dur))
	if res.Users {
		a.out.textf("restored the accounts and grants")
	}
	if target != nil {
		a.out.textf("rolled forward to %s with %s", target, plural(int64(len(res.BinlogFiles)), "binlog file"))
	}
}

func (a *App) mysqlPhysicalSummary(r *app.MySQLRestoreResult, owner string) {
	sn, m, dir := r.Snapshot, r.Manifest, r.DataDir
	if a.g.json {
		a.out.jsonLine(map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(), "datadir": dir,
			"binlog_file": m.BinlogFile, "binlog_pos": m.BinlogPos, "gtid": m.GTID, "duration_seconds": r.Duration.Seconds()})
		return
	}
	a.out.textf("prepared a %s data directory in %s from snapshot %s (server %s)", m.Flavour, dir, sn.ShortID(), m.ServerVersion)
	a.out.textf("next:")
	a.out.textf("  1. stop the server, and put %s in place of its data directory (or start it with --datadir=%s)", dir, dir)
	if owner == "" {
		a.out.textf("     it must belong to the server's user: chown -R mysql:mysql %s", dir)
	}
	a.out.textf("  2. start the server; it has the data and accounts of the moment the backup ended")
	for _, l := range m.RollForwardSteps() {
		a.out.textf("%s", l)
	}
}

func (a *App) mysqlCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mysql",
		Short: "MySQL/MariaDB binlog archiving: binlog-archive, binlogs, binlog-expire",
	}
	cmd.AddCommand(a.mysqlBinlogArchiveCommand(), a.mysqlBinlogsCommand(), a.mysqlBinlogExpireCommand())
	return cmd
}

func (a *App) mysqlBinlogArchiveCommand() *cobra.Command {
	var cf mysqlConnFlags
	var sf sourceFlags
	var o mysql.ArchiveOptions
	var serverID uint32
	cmd := &cobra.Command{
		Use:   "binlog-archive [flags]",
		Short: "Archive a server's binary logs continuously, for point-in-time restores",
		Long: `Copy the server's binary logs into the repository as they are written:
mariadb-binlog --read-from-remote-server --raw --stop-never writes them into
a spool directory; every file that is complete (the next one has begun) is
committed as a snapshot (source mysql, kind continuous, path
/mysql/SERVER/binlog, files binlog/NAME), and every --interval the growing
active file as well (metadata partial=NAME), so the archive lags the server
by seconds. It starts after the newest complete file already archived (else
with the server's oldest binary log).

--once archives everything up to now (FLUSH BINARY LOGS first, so the
active file completes) and exits: for cron and for tests. SIGTERM or
Ctrl-C pushes what is complete and exits cleanly; when the server goes away
it exits with an error (run it under systemd with Restart=always).

The account needs REPLICATION SLAVE and BINLOG MONITOR (MySQL: REPLICATION
CLIENT), and RELOAD for --once. --server-id must differ from every
replica's.

` + mysqlConnHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ServerID = serverID
			return a.runMysqlBinlogArchive(cmd.Context(), cf, sf, o)
		},
	}
	cf.add(cmd)
	sf.add(cmd, "")
	fl := cmd.Flags()
	fl.DurationVar(&o.Interval, "interval", 10*time.Second, "push the growing binlog this often")
	flagRange(fl, 1, unbounded, "interval")
	fl.BoolVar(&o.Once, "once", false, "archive everything up to now and exit")
	fl.Uint32Var(&serverID, "server-id", 0, "replica server `id` to present (default: the tool's, 65535 on MySQL)")
	fl.StringVar(&o.SpoolDir, "spool-dir", "", "spool `directory` for the copies (default: under the cache directory, else a temporary one)")
	return cmd
}

func (a *App) runMysqlBinlogArchive(ctx context.Context, cf mysqlConnFlags, sf sourceFlags, o mysql.ArchiveOptions) error {
	src, err := cf.connect(ctx, a)
	if err != nil {
		return err
	}
	defer src.Close()
	binlogPath := mysql.ArchivePath(src.Server())
	host := sf.hostname()
	// The repository is opened once: the archiver commits many times.
	r, err := a.openRepo(ctx)
	if err != nil {
		return err
	}
	// What is archived already.
	all, _, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return err
	}
	if o.Archived, err = mysql.Archived(snapshotInfos(all), binlogPath, host); err != nil {
		return err
	}
	spool := o.SpoolDir
	if spool == "" {
		if root := a.cacheRoot(); root != "" {
			spool = filepath.Join(root, "mysql-binlog")
		} else {
			tmp, err := os.MkdirTemp("", "bunker-binlog-spool-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			spool = tmp
		}
	}
	o.SpoolDir = filepath.Join(spool, mysql.SpoolSubdir(src.Server()))
	o.Push = func(ctx context.Context, p mysql.Push) error {
		return a.pushBinlogs(ctx, r, src, binlogPath, host, sf.tags, p)
	}
	return src.ArchiveBinlogs(ctx, o)
}

// pushBinlogs commits one snapshot of the archive.
func (a *App) pushBinlogs(ctx context.Context, r *repository.Repository, src *mysql.Source, binlogPath, host string, tags []string, p mysql.Push) error {
	_, err := a.runSourceBackup(ctx, sourceBackup{
		source: mysql.SourceName, paths: []string{binlogPath}, tags: tags, host: host, kind: kindContinuous, repo: r, quiet: true,
		write: func(ctx context.Context, w source.Sink) (map[string]string, error) {
			if err := mysql.WritePush(ctx, w, p); err != nil {
				return nil, err
			}
			return src.PushMeta(p).Map(), nil
		},
	})
	if err != nil {
		return err
	}
	for _, f := range p.Files {
		state := "complete"
		if f.Partial {
			state = "partial"
		}
		a.out.infof("archived %s (%s, %s)", f.Name, state, formatBytes(f.Size))
	}
	return nil
}

func (a *App) mysqlBinlogsCommand() *cobra.Command {
	var ff snapshotFilterFlags
	cmd := &cobra.Command{
		Use:   "binlogs [flags]",
		Short: "List the archived binary logs",
		Long: `List the binary log files archived by "bunker mysql binlog-archive": for
every server (path) and host, each file with the copy a restore uses (the
complete one, else the largest), its size, its snapshot and the times of
its first and last events.`,
		Args: cobra.NoArgs,
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
			infos := snapshotInfos(all)
			type row struct {
				Path       string `json:"path"`
				Host       string `json:"host"`
				File       string `json:"file"`
				Size       int64  `json:"size"`
				Complete   bool   `json:"complete"`
				Snapshot   string `json:"snapshot"`
				FirstEvent string `json:"first_event,omitempty"`
				LastEvent  string `json:"last_event,omitempty"`
			}
			rows := []row{}
			for _, k := range mysql.ArchiveServers(snapshotInfos(ff.filter().Apply(all))) {
				files, err := mysql.Archived(infos, k.Path, k.Host)
				if err != nil {
					return err
				}
				for _, f := range mysql.BestCopies(files) {
					rw := row{Path: k.Path, Host: k.Host, File: f.Name, Size: f.Size, Complete: f.Complete, Snapshot: f.Snapshot}
					if !f.First.IsZero() {
						rw.FirstEvent = f.First.Format(time.RFC3339)
						rw.LastEvent = f.Last.Format(time.RFC3339)
					}
					rows = append(rows, rw)
				}
			}
			if a.g.json {
				for _, rw := range rows {
					a.out.jsonLine(typed("binlog", rw))
				}
				return nil
			}
			var table2 [][]string
			for _, rw := range rows {
				state := "complete"
				if !rw.Complete {
					state = "partial"
				}
				events := ""
				if rw.FirstEvent != "" {
					events = rw.FirstEvent + " – " + rw.LastEvent
				}
				table2 = append(table2, []string{rw.Path, rw.Host, rw.File, strconv.FormatInt(rw.Size, 10), state, rw.Snapshot, events})
			}
			if !a.g.quiet {
				table(a.Stdout, []string{"Path", "Host", "File", "Size", "State", "Snapshot", "Events"}, table2)
			}
			return nil
		},
	}
	addFilterFlags(cmd, &ff)
	return cmd
}

func (a *App) mysqlBinlogExpireCommand() *cobra.Command {
	return a.expireCommand("binlog-expire", "Forget archived binlogs that no kept backup needs",
		`Forget the binlog archive snapshots a restore never reads: per server and
host, those whose every file is older than the position the oldest MySQL
backup still in the repository starts from, or has a better copy (complete,
or larger) in another snapshot — the many copies of the growing active file
the archiver commits. forget leaves binlog archives alone: run this after
it, then prune to free the space. A server without a backup keeps all of its
binlogs.`, mysql.LogArchive{})
}
