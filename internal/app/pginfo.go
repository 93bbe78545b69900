package app

import (
	"context"
	"fmt"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
)

// PostgresInfo describes, per PostgreSQL server (system identifier, else
// host:port), what the repository holds: base backups, logical dumps,
// the WAL archive with its gaps, and the window of point-in-time
// recovery (postgres.Report).
func (a *App) PostgresInfo(ctx context.Context, repo Repo) ([]postgres.ServerReport, error) {
	r, err := a.Open(ctx, repo)
	if err != nil {
		return nil, err
	}
	all, _, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return nil, err
	}
	sums := map[string]*snapshot.Summary{}
	for _, s := range all {
		if s.Summary != nil {
			sums[s.ID.String()] = s.Summary
		}
	}
	return postgres.Report(SnapshotInfos(all), func(id string) (int64, time.Time) {
		if s := sums[id]; s != nil {
			return s.TotalBytes, s.End
		}
		return 0, time.Time{}
	}), nil
}

// PostgresCheck checks end to end that a server archives its WAL into
// the repository: its settings, then a WAL switch whose segment must
// arrive within Timeout.
type PostgresCheck struct {
	Repo   Repo
	Server postgres.Config
	// Timeout bounds the wait for the segment (default 60s).
	Timeout time.Duration
	// Poll is how often the repository is looked at (default 500ms).
	Poll time.Duration
}

// PostgresCheckResult is what a successful check found.
type PostgresCheckResult struct {
	Server           string
	SystemIdentifier string
	ArchiveMode      string
	ArchiveCommand   string
	Segment          string        // the segment switched out and found in the repository
	Snapshot         string        // the archive snapshot that holds it
	Waited           time.Duration // from the switch to the segment's arrival
	Remarks          []string      // what looks wrong without failing the check
}

// ArchiveCheckError is a failed check: what is wrong, and the archiver's
// state when known.
type ArchiveCheckError struct {
	Problem  string
	Segment  string
	Archiver *postgres.ArchiverStatus
}

func (e *ArchiveCheckError) Error() string {
	msg := "pg check: " + e.Problem
	if e.Archiver != nil {
		msg += "; " + e.Archiver.String()
	}
	return msg
}

// RunPostgresCheck runs the check; a failure is an *ArchiveCheckError
// (or the error reaching the server or the repository).
func (a *App) RunPostgresCheck(ctx context.Context, req PostgresCheck) (*PostgresCheckResult, error) {
	if req.Timeout <= 0 {
		req.Timeout = 60 * time.Second
	}
	if req.Poll <= 0 {
		req.Poll = 500 * time.Millisecond
	}
	cfg := req.Server
	if cfg.Getenv == nil {
		cfg.Getenv = a.getenv
	}
	c, err := postgres.Open(cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	r, err := a.Open(ctx, req.Repo)
	if err != nil {
		return nil, err
	}
	setup, err := c.ArchiveSetup(ctx)
	if err != nil {
		return nil, err
	}
	res := &PostgresCheckResult{Server: c.Server(), SystemIdentifier: setup.SystemIdentifier, ArchiveMode: setup.Mode, ArchiveCommand: setup.Command}
	problem, remark := setup.Problem()
	if problem != "" {
		return nil, &ArchiveCheckError{Problem: problem}
	}
	if remark != "" {
		res.Remarks = append(res.Remarks, remark)
		a.warnf("%s", remark)
	}
	seg, err := c.SwitchWAL(ctx)
	if err != nil {
		return nil, err
	}
	res.Segment = seg
	start := time.Now()
	deadline := time.NewTimer(req.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(req.Poll)
	defer tick.Stop()
	for {
		all, _, err := snapshot.LoadAll(ctx, r)
		if err != nil {
			return nil, err
		}
		if f, ok := postgres.FindWAL(postgres.ArchiveFiles(SnapshotInfos(all), setup.SystemIdentifier), seg); ok && f.Kind == postgres.WALSegment {
			res.Snapshot = f.Ref.(postgres.ArchiveRef).Snapshot.ID
			res.Waited = time.Since(start)
			return res, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, a.archiveCheckTimeout(ctx, c, seg, req.Timeout)
		case <-tick.C:
		}
	}
}

// archiveCheckTimeout says why segment seg did not arrive in time.
func (a *App) archiveCheckTimeout(ctx context.Context, c *postgres.Client, seg string, timeout time.Duration) error {
	e := &ArchiveCheckError{Segment: seg}
	st, err := c.ArchiverStatus(ctx)
	if err != nil {
		e.Problem = fmt.Sprintf("segment %s did not arrive in the repository within %v (and pg_stat_archiver cannot be read: %v)", seg, timeout, err)
		return e
	}
	e.Archiver = &st
	switch {
	// The archiver retries the oldest segment not archived, so its last
	// failure may name an earlier one than seg: what matters is that
	// failing is the last thing it did.
	case st.LastFailedWAL != "" && st.LastFailedTime.After(st.LastArchivedTime):
		e.Problem = fmt.Sprintf("archive_command fails: segment %s did not arrive in the repository within %v; the server's last failure is %s at %s (see the server log)",
			seg, timeout, st.LastFailedWAL, st.LastFailedTime.UTC().Format(time.RFC3339))
	case st.LastArchivedWAL != "" && st.LastArchivedWAL >= seg:
		e.Problem = fmt.Sprintf("the server archived segment %s, but not into this repository (within %v): does archive_command name this repository?", seg, timeout)
	default:
		e.Problem = fmt.Sprintf("segment %s did not arrive in the repository within %v: the server has not archived it yet", seg, timeout)
	}
	return e
}
