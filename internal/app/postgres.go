package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
)

// PostgresBackup is a backup of a PostgreSQL server: pg_dump of its
// databases (logical, the default) or a base backup (Physical).
type PostgresBackup struct {
	Repo Repo
	// Server is how to reach the server; its Getenv defaults to the
	// App's.
	Server postgres.Config
	Tags   []string
	Host   string // default: this machine's name

	// Logical are the dumps' options (logical backups only).
	Logical postgres.LogicalOptions
	// Physical takes a base backup with PhysicalOptions instead of dumps.
	Physical        bool
	PhysicalOptions postgres.PhysicalOptions
	// Full records a physical backup as full (no parent); Differential
	// as differential against the last full one. Every physical backup
	// is complete for restores: they only label kind and parent.
	Full, Differential bool
}

// Validate says what in b does not go together.
func (b *PostgresBackup) Validate() error {
	po := &b.PhysicalOptions
	switch {
	case !b.Physical && (b.Full || b.Differential || po.MaxRate != ""):
		return errors.New("full, differential and a maximum rate go with physical backups")
	case b.Full && b.Differential:
		return errors.New("full and differential exclude each other")
	case po.ArchiveTimeout < 0:
		return fmt.Errorf("archive timeout %v: must be positive", po.ArchiveTimeout)
	case b.Physical && (len(b.Logical.Databases) > 0 || b.Logical.NoGlobals):
		return errors.New("databases and no-globals are for logical backups; a base backup holds the whole cluster")
	}
	return nil
}

// RunPostgresBackup backs up a PostgreSQL server into the repository as
// one snapshot, streamed: nothing is written to local disk, and nothing
// is saved unless every dump (or the base backup) succeeds. While a base
// backup waits for WAL archiving it warns through Events, unless
// PhysicalOptions.OnArchiveWait is set.
func (a *App) RunPostgresBackup(ctx context.Context, b PostgresBackup) (*BackupResult, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	cfg := b.Server
	if cfg.Getenv == nil {
		cfg.Getenv = a.getenv
	}
	c, err := postgres.Open(cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	sb := SourceBackup{Repo: b.Repo, Source: postgres.Source, Tags: b.Tags, Host: b.Host, Kind: snapshot.KindFull}
	if !b.Physical {
		sb.Paths = []string{"/postgres/" + c.Server() + "/logical"}
		sb.Save = func(ctx context.Context, w source.Sink) (map[string]string, error) {
			return c.BackupLogical(ctx, w, b.Logical)
		}
		return a.RunSourceBackup(ctx, sb)
	}
	sb.Paths = []string{"/postgres/" + c.Server() + "/physical"}
	if !b.Full {
		sb.Parent = func(all []*snapshot.Snapshot) (*snapshot.Snapshot, *snapshot.Snapshot, string) {
			p, base, kind := postgres.PhysicalParent(SnapshotInfos(all), b.Differential)
			return snapshotByID(all, p), snapshotByID(all, base), kind
		}
	}
	po := b.PhysicalOptions
	if po.OnArchiveWait == nil {
		po.OnArchiveWait = func(w postgres.ArchiveWait) {
			a.warnf("the server waits for WAL archiving (%v of the archive timeout %v); %v", w.Waited.Round(time.Second), w.Timeout, w.Archiver)
		}
	}
	sb.Save = func(ctx context.Context, w source.Sink) (map[string]string, error) {
		return c.BackupPhysical(ctx, w, po)
	}
	return a.RunSourceBackup(ctx, sb)
}

// SnapshotInfos describes snapshots to the sources' own logic.
func SnapshotInfos(all []*snapshot.Snapshot) []source.SnapshotInfo {
	out := make([]source.SnapshotInfo, len(all))
	for i, s := range all {
		out[i] = source.SnapshotInfo{ID: s.ID.String(), Kind: s.Kind, Host: s.Hostname, Paths: s.Paths, Time: s.Time, Metadata: s.Metadata}
	}
	return out
}

// snapshotByID returns the snapshot with the full ID id among all, nil
// for none.
func snapshotByID(all []*snapshot.Snapshot, id string) *snapshot.Snapshot {
	for _, s := range all {
		if id != "" && s.ID.String() == id {
			return s
		}
	}
	return nil
}
