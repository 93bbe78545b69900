package cli

import (
	"context"
	"strconv"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/source/mysql"
	"github.com/spf13/cobra"
)

// addMySQLConnFlags adds the flags of every command that talks to a
// server.
func addMySQLConnFlags(cmd *cobra.Command, c *app.MySQLConn) {
	fl := cmd.Flags()
	fl.StringVar(&c.DSN, "dsn", "", "server to connect to, mysql://user:password@host:port/?socket=PATH (default $BUNKER_MYSQL_DSN)")
	// Not --password-file: that is the repository's.
	fl.StringVar(&c.PasswordFile, "db-password-file", "", "read the MySQL password from this `file` (else the DSN's, else $MYSQL_PWD)")
	fl.StringVar(&c.ToolDir, "tool-dir", "", "directory of mariadb-dump, mariadb, mariadb-binlog, mariadb-backup, mbstream (default: PATH; mysql* names work too)")
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
	var conn app.MySQLConn
	var o mysql.BackupOptions
	cmd := &cobra.Command{
		Use:   "mysql [flags]",
		Short: "Back up a MySQL or MariaDB server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Jobs = sf.jobs
			if err := o.Validate(); err != nil {
				return err
			}
			so, err := conn.Options(a.Getenv)
			if err != nil {
				return err
			}
			return a.dbBackup(cmd.Context(), func(c *app.App, repo app.Repo) (*app.BackupResult, error) {
				return c.RunMySQLBackup(cmd.Context(), app.MySQLBackup{Repo: repo, Server: so, Options: o, Tags: sf.tags, Host: sf.hostname()})
			})
		},
	}
	addMySQLConnFlags(cmd, &conn)
	sf.add(cmd, "dump `N` databases at once (physical: mariadb-backup --parallel)")
	fl := cmd.Flags()
	fl.StringArrayVar(&o.Databases, "database", nil, "back up this `database` (repeatable; default: all user databases)")
	fl.BoolVar(&o.NoUsers, "no-users", false, "leave out the accounts and grants")
	fl.BoolVar(&o.Physical, "physical", false, "copy the data directory with mariadb-backup instead of dumping")
	fl.StringVar(&o.DataDir, "datadir", "", "with --physical: the server's data `directory` (default: mariadb-backup asks the server)")
	return cmd
}

func (a *App) mysqlRestoreCommand() *cobra.Command {
	var req app.MySQLRestore
	var ff snapshotFilterFlags
	var conn app.MySQLConn
	var targets app.MySQLRestoreArgs
	cmd := &cobra.Command{
		Use:   "mysql SNAPSHOT [flags]",
		Short: "Restore a MySQL or MariaDB backup, optionally to a point in time",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Snapshot, req.Filter, targets.OwnerSet = args[0], ff.filter(), cmd.Flags().Changed("owner")
			if err := targets.Apply(&req, conn, a.Getenv); err != nil {
				return err
			}
			return a.runMySQLRestore(cmd.Context(), req)
		},
	}
	addFilterFlags(cmd, &ff)
	addMySQLConnFlags(cmd, &conn)
	fl := cmd.Flags()
	fl.StringArrayVar(&req.Options.Databases, "database", nil, "restore only this `database` (repeatable)")
	fl.IntVarP(&req.Options.Jobs, "jobs", "j", 2, "load `N` databases at once")
	flagRange(fl, 1, 1000, "jobs")
	fl.BoolVar(&req.Options.NoUsers, "no-users", false, "do not restore the accounts and grants")
	fl.StringVar(&targets.TargetTime, "target-time", "", "roll forward to this `time` (RFC 3339, or 2006-01-02 15:04:05 local)")
	fl.StringVar(&targets.TargetPosition, "target-position", "", "roll forward to this binlog `FILE:POS`")
	fl.StringVar(&req.BinlogPath, "binlog-path", "", "the archive's snapshot `path` (default: the backup's path + /binlog)")
	fl.BoolVar(&req.Physical, "physical", false, "restore a physical backup into --datadir")
	fl.StringVar(&req.PhysicalOptions.DataDir, "datadir", "", "with --physical: the data `directory` to create (empty or absent)")
	fl.StringVar(&req.PhysicalOptions.Owner, "owner", "", "with --physical: give the files to this `user` (default: mysql when run as root)")
	return cmd
}

// runMySQLRestore runs the MySQL restore use case on -r and prints its
// result.
func (a *App) runMySQLRestore(ctx context.Context, req app.MySQLRestore) error {
	return a.onRepo(ctx, func(c *app.App, repo app.Repo) error {
		req.Repo = repo
		res, err := c.RestoreMySQL(ctx, req)
		switch {
		case res == nil:
		case req.Physical:
			a.mysqlPhysicalSummary(res, req.PhysicalOptions.Owner)
		default:
			a.mysqlRestoreSummary(res)
		}
		return err
	})
}

func (a *App) mysqlRestoreSummary(r *app.MySQLRestoreResult) {
	sn, res, target, dur := r.Snapshot, r.Logical, r.Target, r.Duration
	m := map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(), "server": r.Server,
		"databases": orNone(res.Databases), "users": res.Users, "binlog_files": orNone(res.BinlogFiles), "duration_seconds": dur.Seconds()}
	if target != nil {
		m["target"] = target.String()
	}
	a.out.result(m, "restored %s from snapshot %s into %s in %s", plural(int64(len(res.Databases)), "database"), sn.ShortID(), r.Server, formatDuration(dur))
	if res.Users {
		a.out.textf("restored the accounts and grants")
	}
	if target != nil {
		a.out.textf("rolled forward to %s with %s", target, plural(int64(len(res.BinlogFiles)), "binlog file"))
	}
	for _, e := range res.UserErrors {
		a.out.warnf("accounts: %s", e)
	}
}

// mysqlPhysicalSummary prints the prepared data directory and the steps
// to put it to use (textf prints nothing with --json).
func (a *App) mysqlPhysicalSummary(r *app.MySQLRestoreResult, owner string) {
	sn, m, dir := r.Snapshot, r.Manifest, r.DataDir
	a.out.result(map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(), "datadir": dir,
		"binlog_file": m.BinlogFile, "binlog_pos": m.BinlogPos, "gtid": m.GTID, "duration_seconds": r.Duration.Seconds()},
		"prepared a %s data directory in %s from snapshot %s (server %s)", m.Flavour, dir, sn.ShortID(), m.ServerVersion)
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
	var conn app.MySQLConn
	var sf sourceFlags
	var o mysql.ArchiveOptions
	cmd := &cobra.Command{
		Use:   "binlog-archive [flags]",
		Short: "Archive a server's binary logs continuously, for point-in-time restores",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			so, err := conn.Options(a.Getenv)
			if err != nil {
				return err
			}
			return a.onRepo(cmd.Context(), func(c *app.App, repo app.Repo) error {
				return c.ArchiveMySQLBinlogs(cmd.Context(), app.BinlogArchive{Repo: repo, Server: so, Options: o,
					CacheRoot: a.cacheRoot(), Tags: sf.tags, Host: sf.hostname()})
			})
		},
	}
	addMySQLConnFlags(cmd, &conn)
	sf.add(cmd, "")
	fl := cmd.Flags()
	fl.DurationVar(&o.Interval, "interval", 10*time.Second, "push the growing binlog this often")
	flagRange(fl, 1, unbounded, "interval")
	fl.BoolVar(&o.Once, "once", false, "archive everything up to now and exit")
	fl.Uint32Var(&o.ServerID, "server-id", 0, "replica server `id` to present (default: the tool's, 65535 on MySQL)")
	fl.StringVar(&o.SpoolDir, "spool-dir", "", "spool `directory` for the copies (default: under the cache directory, else a temporary one)")
	return cmd
}

func (a *App) mysqlBinlogsCommand() *cobra.Command {
	var ff snapshotFilterFlags
	cmd := &cobra.Command{
		Use:   "binlogs [flags]",
		Short: "List the archived binary logs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.onRepo(cmd.Context(), func(c *app.App, repo app.Repo) error {
				rows, err := c.ListBinlogs(cmd.Context(), repo, ff.filter())
				if err != nil {
					return err
				}
				a.printBinlogs(rows)
				return nil
			})
		},
	}
	addFilterFlags(cmd, &ff)
	return cmd
}

func (a *App) mysqlBinlogExpireCommand() *cobra.Command {
	return a.expireCommand("binlog-expire", "Forget archived binlogs that no kept backup needs", mysql.LogArchive{})
}

// printBinlogs prints the archived binlogs: a binlog line each with
// --json, else a table.
func (a *App) printBinlogs(rows []app.BinlogCopy) {
	if a.g.json {
		for _, rw := range rows {
			a.out.jsonLine(typed("binlog", rw))
		}
		return
	}
	var cells [][]string
	for _, rw := range rows {
		state, events := "complete", ""
		if !rw.Complete {
			state = "partial"
		}
		if rw.FirstEvent != "" {
			events = rw.FirstEvent + " – " + rw.LastEvent
		}
		cells = append(cells, []string{rw.Path, rw.Host, rw.File, strconv.FormatInt(rw.Size, 10), state, rw.Snapshot, events})
	}
	if !a.g.quiet {
		table(a.Stdout, []string{"Path", "Host", "File", "Size", "State", "Snapshot", "Events"}, cells)
	}
}
