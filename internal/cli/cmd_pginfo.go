package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
)

func (a *App) pgInfoCommand() *cobra.Command {
	var spool string
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show each PostgreSQL server's backups, WAL archive, gaps and recovery window",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.onRepo(cmd.Context(), func(c *app.App, repo app.Repo) error {
				reports, err := c.PostgresInfo(cmd.Context(), repo)
				if len(reports) == 0 && err == nil {
					a.out.textf("no PostgreSQL backups in the repository")
				}
				for _, r := range reports {
					a.printPGInfo(r)
				}
				if err != nil {
					return err
				}
				return a.printSpoolInfo(c, spool)
			})
		},
	}
	cmd.Flags().StringVar(&spool, "spool", "", "also show the state of this WAL spool `directory` (wal-push --spool)")
	return cmd
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func orNone[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// pgInfoJSON is the pg_info line of one server.
func pgInfoJSON(r postgres.ServerReport) map[string]any {
	var bases, dumps []map[string]any
	for _, b := range r.BaseBackups {
		bases = append(bases, map[string]any{"id": b.ID, "kind": b.Kind, "time": rfc3339(b.Time), "end": rfc3339(b.End), "hostname": b.Host,
			"server": b.Server, "server_version": b.Version, "timeline": b.Timeline, "start_lsn": b.StartLSN, "stop_lsn": b.StopLSN,
			"start_wal": b.StartWAL, "stop_wal": b.StopWAL, "wal_method": b.WALMethod, "size": b.Size})
	}
	for _, d := range r.LogicalDumps {
		dumps = append(dumps, map[string]any{"id": d.ID, "time": rfc3339(d.Time), "hostname": d.Host, "server": d.Server,
			"server_version": d.Version, "databases": d.Databases, "size": d.Size})
	}
	w := r.Archive
	return map[string]any{
		"message_type":      "pg_info",
		"system_identifier": r.SystemIdentifier,
		"servers":           orNone(r.Servers),
		"hostnames":         orNone(r.Hosts),
		"base_backups":      orNone(bases),
		"logical_dumps":     orNone(dumps),
		"wal": map[string]any{"first": w.First, "last": w.Last, "timelines": orNone(w.Timelines), "segments": w.Segments,
			"history_files": w.Histories, "continuous": w.Continuous(), "gaps": orNone(w.Gaps), "last_time": rfc3339(w.LastTime)},
		"oldest_recoverable": rfc3339(r.OldestRecoverable),
		"newest_recoverable": rfc3339(r.NewestRecoverable),
	}
}

// printPGInfo prints one server's report: its pg_info line with --json.
func (a *App) printPGInfo(r postgres.ServerReport) {
	if a.g.json {
		a.out.jsonLine(pgInfoJSON(r))
		return
	}
	title, where := "system "+r.SystemIdentifier, []string{}
	if r.SystemIdentifier == "" {
		title = "system identifier unknown"
	}
	if len(r.Servers) > 0 {
		where = append(where, "server "+strings.Join(r.Servers, ", "))
	}
	if len(r.Hosts) > 0 {
		where = append(where, "backed up on "+strings.Join(r.Hosts, ", "))
	}
	if len(where) > 0 {
		title += " (" + strings.Join(where, "; ") + ")"
	}
	a.out.textf("PostgreSQL %s", title)
	a.out.textf("  base backups: %d", len(r.BaseBackups))
	for _, b := range r.BaseBackups {
		a.out.textf("    %.8s  %-12s %s  timeline %d  WAL %s (%s) .. %s (%s)  wal-method %s  %s",
			b.ID, b.Kind, rfc3339(b.Time), b.Timeline, b.StartLSN, b.StartWAL, b.StopLSN, b.StopWAL, b.WALMethod, formatBytes(b.Size))
	}
	a.out.textf("  logical dumps: %d", len(r.LogicalDumps))
	for _, d := range r.LogicalDumps {
		a.out.textf("    %.8s  %s  %s  databases %s  %s", d.ID, rfc3339(d.Time), d.Server, d.Databases, formatBytes(d.Size))
	}
	w := r.Archive
	if w.First == "" {
		a.out.textf("  WAL archive: empty")
	} else {
		tl := make([]string, len(w.Timelines))
		for i, t := range w.Timelines {
			tl[i] = fmt.Sprint(t)
		}
		a.out.textf("  WAL archive: %s .. %s, timeline %s, %d segments, last archived %s", w.First, w.Last, strings.Join(tl, ", "), w.Segments, rfc3339(w.LastTime))
		if w.Continuous() {
			a.out.textf("    continuous: no gap")
		}
		for _, g := range w.Gaps {
			a.out.textf("    gap: %s", g)
		}
	}
	if r.OldestRecoverable.IsZero() {
		a.out.textf("  recoverable: no base backup with continuous WAL to the end of the archive")
	} else {
		a.out.textf("  recoverable: %s .. %s", rfc3339(r.OldestRecoverable), rfc3339(r.NewestRecoverable))
	}
}

func (a *App) pgCheckCommand() *cobra.Command {
	var conn app.PostgresConn
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that the server archives its WAL into the repository, end to end",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.pgConfig(conn)
			if err != nil {
				return err
			}
			return a.onRepo(cmd.Context(), func(c *app.App, repo app.Repo) error {
				res, err := c.RunPostgresCheck(cmd.Context(), app.PostgresCheck{Repo: repo, Server: cfg, Timeout: timeout})
				if err != nil {
					return err
				}
				a.out.result(map[string]any{"message_type": "pg_check", "ok": true, "server": res.Server,
					"system_identifier": res.SystemIdentifier, "archive_mode": res.ArchiveMode, "archive_command": res.ArchiveCommand,
					"segment": res.Segment, "snapshot": res.Snapshot, "duration_seconds": res.Waited.Seconds(), "remarks": orNone(res.Remarks)},
					"WAL archiving works: segment %s of system %s (%s) reached the repository in %v (snapshot %.8s)",
					res.Segment, res.SystemIdentifier, res.Server, res.Waited.Round(time.Millisecond), res.Snapshot)
				return nil
			})
		},
	}
	addPGConnFlags(cmd, &conn)
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "how long to wait for the segment to reach the repository")
	flagRange(cmd.Flags(), 1, unbounded, "timeout")
	return cmd
}
