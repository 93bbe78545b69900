package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/restorer"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/source/kube"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
)

// PostgresRestore is a restore of a PostgreSQL backup: its dumps into a
// server (logical, the default), or its base backup into a data
// directory (Physical), prepared for point-in-time recovery when
// PhysicalOptions.Target names one.
type PostgresRestore struct {
	Repo Repo
	// Snapshot is an ID, a prefix or "latest": the newest backup of the
	// kind asked for.
	Snapshot string
	// Server is how to reach the server; its Getenv defaults to the
	// App's. A physical restore uses it for pg_verifybackup only.
	Server postgres.Config
	// FromKubernetes, when set, takes the dumps of that database from
	// Snapshot, a Kubernetes backup (logical restores; a physical one
	// ignores it).
	FromKubernetes *kube.Database
	// Logical are a logical restore's options. Its Report, when set, is
	// told about each database after the App's Events are.
	Logical postgres.RestoreOptions
	// Physical restores a base backup with PhysicalOptions.
	Physical        bool
	PhysicalOptions PostgresPhysicalOptions
}

// PostgresPhysicalOptions are the options of a physical restore.
type PostgresPhysicalOptions struct {
	// PGData is the data directory to create (absent or empty).
	PGData string
	// WALDir is where recovery reads the archived WAL ("": PGData.wal).
	WALDir string
	// Owner is the local user to own the files ("": the backup's).
	Owner string
	// Target is the point of recovery (no time, LSN, XID, name or
	// latest: the backup as it was) and its Action ("promote", "pause"
	// or "shutdown"; required).
	Target postgres.RecoveryTarget
	// NoVerify skips pg_verifybackup.
	NoVerify bool
	// Delta restores into an existing data directory of a stopped
	// server (or an empty one): files whose content is the backup's are
	// kept, the others rewritten, and what the backup lacks is deleted
	// (pgBackRest's --delta).
	Delta bool
}

// Validate says what in r does not go together.
func (r *PostgresRestore) Validate() error {
	po := &r.PhysicalOptions
	if !r.Physical {
		t := po.Target
		if po.PGData != "" || !t.Time.IsZero() || t.LSN != "" || t.XID != "" || t.Name != "" || t.Latest {
			return errors.New("a data directory and a recovery target need a physical restore (point-in-time restores start from a base backup)")
		}
		return nil
	}
	switch {
	case po.PGData == "":
		return errors.New("a physical restore needs a data directory")
	case len(r.Logical.Databases) > 0 || r.Logical.Clean:
		return errors.New("databases and clean are for logical restores")
	}
	_, _, err := po.Target.Settings()
	return err
}

// PostgresRestoreResult is what a PostgreSQL restore did.
type PostgresRestoreResult struct {
	Snapshot *snapshot.Snapshot
	// Server and Databases are a logical restore's: the server restored
	// into and how many databases (and "roles") were reported.
	Server    string
	Databases int
	// PGData and Physical are a physical restore's: the data directory
	// and what was done in it.
	PGData   string
	Physical *postgres.PhysicalRestoreResult
	Duration time.Duration
}

// RestorePostgres restores a PostgreSQL backup. A logical restore goes
// on when a database fails (a warning); the result then comes with a
// *PartialError.
func (a *App) RestorePostgres(ctx context.Context, req PostgresRestore) (*PostgresRestoreResult, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if req.Server.Getenv == nil {
		req.Server.Getenv = a.getenv
	}
	if req.Physical {
		return a.restorePostgresPhysical(ctx, req)
	}
	return a.restorePostgresLogical(ctx, req)
}

// findPostgresBackup finds a postgres snapshot of the given type
// ("latest" is the newest of that type).
func (a *App) findPostgresBackup(ctx context.Context, repo Repo, ref, typ string) (*Found, error) {
	f, err := a.FindBackup(ctx, repo, ref, snapshot.Filter{}, func(s *snapshot.Snapshot) error {
		if _, err := postgres.CheckBackup(s.Metadata, typ); err != nil {
			return fmt.Errorf("snapshot %s %w", s.ShortID(), err)
		}
		return nil
	})
	if ref == "latest" && errors.Is(err, snapshot.ErrNotFound) {
		return nil, fmt.Errorf("no %s PostgreSQL backup in the repository", typ)
	}
	return f, err
}

// postgresDumps finds the snapshot and the tree of a logical restore's
// dumps: a PostgreSQL backup, or a Kubernetes backup's database.
func (a *App) postgresDumps(ctx context.Context, req PostgresRestore) (*snapshot.Snapshot, source.Tree, error) {
	db := req.FromKubernetes
	if db == nil {
		f, err := a.findPostgresBackup(ctx, req.Repo, req.Snapshot, postgres.TypeLogical)
		if err != nil {
			return nil, nil, err
		}
		return f.Snapshot, f.Tree(), nil
	}
	// A database backed up with a Kubernetes backup, under
	// databases/<ns>/<service>/ of that snapshot.
	f, err := a.FindSourceBackup(ctx, req.Repo, req.Snapshot, KubernetesSource, snapshot.Filter{})
	if err != nil {
		return nil, nil, err
	}
	t := source.PrefixTree(f.Tree(), db.Dir())
	if _, err := t.Stat(ctx, ""); err != nil {
		return nil, nil, fmt.Errorf("snapshot %s holds no database backup of service %s/%s: %w", f.Snapshot.ShortID(), db.Namespace, db.Service, err)
	}
	return f.Snapshot, t, nil
}

func (a *App) restorePostgresLogical(ctx context.Context, req PostgresRestore) (*PostgresRestoreResult, error) {
	sn, t, err := a.postgresDumps(ctx, req)
	if err != nil {
		return nil, err
	}
	c, err := postgres.Open(req.Server)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	start := time.Now()
	res := &PostgresRestoreResult{Snapshot: sn, Server: c.Server()}
	var mu sync.Mutex
	o := req.Logical
	o.Report = func(name string, err error) {
		if err != nil {
			a.warnf("%s: %v", name, err)
		} else {
			a.infof("restored %s", name)
		}
		mu.Lock()
		res.Databases++
		mu.Unlock()
		if req.Logical.Report != nil {
			req.Logical.Report(name, err)
		}
	}
	err = c.RestoreLogical(ctx, t, o)
	res.Duration = time.Since(start)
	var pe *postgres.PartialError
	if errors.As(err, &pe) {
		return res, &PartialError{Msg: fmt.Sprintf("restore of snapshot %s: %v", sn.ShortID(), err)}
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (a *App) restorePostgresPhysical(ctx context.Context, req PostgresRestore) (*PostgresRestoreResult, error) {
	po := req.PhysicalOptions
	check := postgres.CheckDataDir
	if po.Delta {
		check = postgres.CheckDeltaDir
	}
	pgdata, err := check(po.PGData)
	if err != nil {
		return nil, err
	}
	f, err := a.findPostgresBackup(ctx, req.Repo, req.Snapshot, postgres.TypePhysical)
	if err != nil {
		return nil, err
	}
	r, sn := f.Repository, f.Snapshot
	m, err := postgres.ReadPhysicalManifest(ctx, f.Tree())
	if err != nil {
		return nil, err
	}
	start := time.Now()
	a.infof("restoring base backup %s (%s, system %s, start %s) into %s", sn.ShortID(), m.ServerVersion, m.SystemIdentifier, m.StartLSN, pgdata)
	ro := restorer.Options{Sync: true, NoXattrs: true, OnError: func(p string, err error) error { return err }}
	if po.Delta {
		ro.Overwrite, ro.Delete = restorer.OverwriteIfDifferent, true
	}
	var base *restorer.Restorer
	pr := postgres.PhysicalRestore{PGData: pgdata, WALDir: po.WALDir, Owner: po.Owner, Target: po.Target, NoVerify: po.NoVerify, Manifest: m, Delta: po.Delta,
		RestoreBase: func(ctx context.Context, dir string) error {
			base = restorer.New(r, ro)
			return base.Restore(ctx, sn.Tree, "/"+postgres.PGDataDir, dir)
		},
		Archive: func(ctx context.Context) ([]source.SnapshotInfo, postgres.Trees, error) {
			all, _, err := snapshot.LoadAll(ctx, r)
			return SnapshotInfos(all), SnapshotTrees(r, all), err
		},
	}
	if !po.NoVerify {
		// Opened before anything is written: a wrong server or password
		// fails the restore at once.
		c, err := postgres.Open(req.Server)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		pr.Verify = func(ctx context.Context, args []string) error {
			cmd, err := c.Tool("pg_verifybackup", args...)
			if err != nil {
				return err
			}
			return cmd.Run(ctx)
		}
	}
	res, err := pr.Restore(ctx)
	if err != nil {
		return nil, err
	}
	if res.Replay {
		a.infof("fetched %d WAL files into %s", res.WALFiles, res.WALDir)
	}
	if po.Delta && base != nil {
		res.FilesKept, res.FilesWritten, res.Deleted = base.Stats.FilesSkipped.Load(), base.Stats.FilesDone.Load(), base.Stats.Deleted.Load()
	}
	return &PostgresRestoreResult{Snapshot: sn, PGData: pgdata, Physical: res, Duration: time.Since(start)}, nil
}
