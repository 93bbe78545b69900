package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
	"github.com/bunkerbackup/bunker/internal/units"
)

// Asynchronous WAL archiving: wal-push --spool and the pusher, pg
// wal-spool (app.SpoolWAL, app.RunWALSpooler).

// walSpoolFlags are wal-push's --spool and --spool-max.
type walSpoolFlags struct {
	dir string
	max string
}

func (f *walSpoolFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.dir, "spool", "", "return once the files are durable in this spool `directory`; a pusher (pg wal-spool) archives them in batches")
	fl.StringVar(&f.max, "spool-max", strconv.Itoa(app.DefaultSpoolMaxFiles), "with --spool: archive the whole spool here when it holds more than `N` files, or more than a size (e.g. 2GiB)")
}

// parseSpoolMax reads --spool-max: a number of files, or a size with a
// unit.
func parseSpoolMax(s string) (files int, bytes int64, err error) {
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
		if n <= 0 {
			return 0, 0, fmt.Errorf("--spool-max %q: must be positive", s)
		}
		return n, 0, nil
	}
	b, err := units.ParseSize(s)
	if err != nil {
		return 0, 0, fmt.Errorf("--spool-max: %w (or a number of files)", err)
	}
	return 0, b, nil
}

// spoolWAL is wal-push --spool.
func (a *App) spoolWAL(ctx context.Context, paths []string, sysid string, f walSpoolFlags) error {
	maxFiles, maxBytes, err := parseSpoolMax(f.max)
	if err != nil {
		return err
	}
	c, err := a.core()
	if err != nil {
		return err
	}
	res, err := c.SpoolWAL(ctx, app.WALSpoolPush{Spool: f.dir, Paths: paths, SystemID: sysid, MaxFiles: maxFiles, MaxBytes: maxBytes,
		OpenRepo: a.repoRef})
	if err != nil {
		return err
	}
	if a.g.json {
		a.out.jsonLine(map[string]any{"message_type": "summary", "spool": f.dir, "spooled": orNone(res.Spooled), "archived": res.Archived,
			"snapshots": orNone(res.Snapshots), "reason": res.Reason})
		return nil
	}
	if res.Reason != "" {
		a.out.infof("%s: archived %d spooled file(s) in %d snapshot(s)", res.Reason, res.Archived, len(res.Snapshots))
	}
	return nil
}

func (a *App) pgWALSpoolCommand() *cobra.Command {
	var req app.WALSpooler
	cmd := &cobra.Command{
		Use:   "wal-spool DIR",
		Short: "Archive the WAL that wal-push --spool leaves in DIR, in batches (run as a service)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, repo, err := a.coreRepo(ctx)
			if err != nil {
				return err
			}
			req.Repo, req.Spool = repo, args[0]
			if !req.Once {
				a.out.infof("archiving the WAL spool %s into %s", req.Spool, a.g.repo)
			}
			res, err := c.RunWALSpooler(ctx, req)
			if err != nil {
				return err
			}
			if a.g.json {
				a.out.jsonLine(map[string]any{"message_type": "summary", "spool": req.Spool, "archived": res.Archived, "snapshots": res.Snapshots})
			} else if req.Once || a.g.verbose > 0 {
				a.out.textf("archived %d WAL file(s) from %s in %d snapshot(s)", res.Archived, req.Spool, res.Snapshots)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&req.Batch, "batch", app.DefaultSpoolBatch, "archive at most `N` files per snapshot")
	flagRange(f, 1, 100000, "batch")
	f.DurationVar(&req.Poll, "poll", app.DefaultSpoolPoll, "look at an idle spool this often")
	flagRange(f, 1, unbounded, "poll")
	f.BoolVar(&req.Once, "once", false, "archive what the spool holds, then exit")
	f.StringVar(&req.Host, "host", "", "record this host name (default: this machine's)")
	return cmd
}

// walSpoolJSON is the pg_wal_spool line of pg info --spool.
func walSpoolJSON(st postgres.SpoolStatus) map[string]any {
	m := map[string]any{"message_type": "pg_wal_spool", "spool": st.Dir, "files": st.Files, "bytes": st.Bytes,
		"systems": orNone(st.Systems), "oldest": st.Oldest, "oldest_time": rfc3339(st.OldestTime), "temporary_files": st.Temporary,
		"pusher_running": st.PusherRunning}
	if !st.OldestTime.IsZero() {
		m["oldest_age_seconds"] = time.Since(st.OldestTime).Seconds()
	}
	if p := st.Pusher; p != nil {
		m["pusher"] = map[string]any{"pid": p.PID, "hostname": p.Hostname, "started": rfc3339(p.Started), "last_push": rfc3339(p.LastPush),
			"last_push_files": p.LastPushFiles, "last_snapshot": p.LastSnapshot, "pushed": p.Pushed,
			"last_error": p.LastError, "last_error_time": rfc3339(p.LastErrorTime)}
	}
	if st.StateError != "" {
		m["state_error"] = st.StateError
	}
	return m
}

// printWALSpool prints pg info --spool's section.
func (a *App) printWALSpool(st postgres.SpoolStatus) {
	a.out.textf("WAL spool %s", st.Dir)
	if st.Files == 0 {
		a.out.textf("  waiting: none")
	} else {
		a.out.textf("  waiting: %d file(s), %s, oldest %s (spooled %s ago), system %s", st.Files, formatBytes(st.Bytes), st.Oldest,
			formatDuration(time.Since(st.OldestTime)), strings.Join(st.Systems, ", "))
	}
	if st.Temporary > 0 {
		a.out.textf("  temporary files: %d (being spooled, or left by killed pushes)", st.Temporary)
	}
	p := st.Pusher
	switch {
	case st.PusherRunning && p != nil:
		a.out.textf("  pusher: running (pid %d on %s since %s), %d file(s) archived", p.PID, p.Hostname, rfc3339(p.Started), p.Pushed)
	case st.PusherRunning:
		a.out.textf("  pusher: running")
	default:
		a.out.textf("  pusher: not running (wal-push archives the spool itself)")
	}
	if p != nil && !p.LastPush.IsZero() {
		a.out.textf("  last archived: %d file(s) in snapshot %.8s at %s", p.LastPushFiles, p.LastSnapshot, rfc3339(p.LastPush))
	}
	if p != nil && p.LastError != "" {
		a.out.textf("  last failure: %s: %s", rfc3339(p.LastErrorTime), p.LastError)
	}
	if st.StateError != "" {
		a.out.textf("  pusher state unreadable: %s", st.StateError)
	}
}

// printSpoolInfo prints pg info's section of the WAL spool dir ("": none).
func (a *App) printSpoolInfo(c *app.App, dir string) error {
	if dir == "" {
		return nil
	}
	st, err := c.WALSpoolStatus(dir)
	if err != nil {
		return err
	}
	if a.g.json {
		a.out.jsonLine(walSpoolJSON(st))
	} else {
		a.printWALSpool(st)
	}
	return nil
}
