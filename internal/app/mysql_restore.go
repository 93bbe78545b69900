package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/bunkerbackup/bunker/internal/app/streamtree"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source/mysql"
)

// MySQLRestore is a restore of a MySQL or MariaDB backup: its dumps into
// a server (logical, the default), rolled forward to Options.Target with
// the archived binlogs when it is set, or its physical copy into a data
// directory (Physical).
type MySQLRestore struct {
	Repo Repo
	// Snapshot is an ID, a prefix or "latest": the newest MySQL backup
	// passing Filter.
	Snapshot string
	Filter   snapshot.Filter
	// Server is how to reach the server of a logical restore; its Warn
	// defaults to the App's Events.
	Server mysql.Options
	// Options are a logical restore's. Its Binlogs are found in the
	// repository when it has a Target; its Progress defaults to the
	// App's Events (Info).
	Options mysql.RestoreOptions
	// BinlogPath is the binlog archive's snapshot path ("": the backup's
	// path + /binlog).
	BinlogPath string
	// Physical restores a physical backup with PhysicalOptions (whose
	// Progress defaults to the App's Events).
	Physical        bool
	PhysicalOptions mysql.PhysicalRestoreOptions
}

// Validate says what in r does not go together.
func (r *MySQLRestore) Validate() error {
	switch {
	case r.Physical && r.Options.Target != nil:
		return errors.New("a physical restore prepares a data directory; roll it forward by hand — give no restore target")
	case !r.Physical && r.PhysicalOptions.DataDir != "":
		return errors.New("a data directory goes with a physical restore")
	}
	return nil
}

// MySQLRestoreResult is what a MySQL restore did.
type MySQLRestoreResult struct {
	Snapshot *snapshot.Snapshot
	// Server and Logical are a logical restore's: the server restored
	// into and what was restored; Target is Options.Target.
	Server  string
	Logical *mysql.RestoreResult
	Target  *mysql.Target
	// DataDir (absolute) and Manifest are a physical restore's: the
	// prepared data directory and the backup's manifest.
	DataDir  string
	Manifest *mysql.Manifest
	Duration time.Duration
}

// RestoreMySQL restores a MySQL or MariaDB backup. When statements of the
// accounts file fail (Logical.UserErrors), the data is restored and the
// result comes with a *PartialError.
func (a *App) RestoreMySQL(ctx context.Context, req MySQLRestore) (*MySQLRestoreResult, error) {
	start := time.Now()
	if err := req.Validate(); err != nil {
		return nil, err
	}
	f, err := a.FindBackup(ctx, req.Repo, req.Snapshot, req.Filter, func(sn *snapshot.Snapshot) error {
		return mysql.CheckBackup(&SnapshotInfos([]*snapshot.Snapshot{sn})[0])
	})
	if err != nil {
		return nil, err
	}
	var res *MySQLRestoreResult
	if req.Physical {
		res, err = a.restoreMySQLPhysical(ctx, req, f)
	} else {
		res, err = a.restoreMySQLLogical(ctx, req, f)
	}
	if res != nil {
		res.Duration = time.Since(start)
	}
	return res, err
}

func (a *App) restoreMySQLLogical(ctx context.Context, req MySQLRestore, f *Found) (*MySQLRestoreResult, error) {
	sn, o := f.Snapshot, req.Options
	if o.Target != nil {
		bp := req.BinlogPath
		if bp == "" {
			bp = sn.Paths[0] + "/binlog"
		}
		var err error
		if o.Binlogs, err = mysqlBinlogArchive(f.Repository, f.All, bp, sn.Hostname); err != nil {
			return nil, err
		}
	}
	so := req.Server
	if so.Warn == nil {
		so.Warn = func(msg string) { a.warnf("%s", msg) }
	}
	src, err := mysql.Connect(ctx, so)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if o.Progress == nil {
		o.Progress = func(msg string) { a.infof("%s", msg) }
	}
	lr, err := src.Restore(ctx, f.Tree(), o)
	if err != nil {
		return nil, fmt.Errorf("restore of snapshot %s into %s failed: %w", sn.ShortID(), src.Server(), err)
	}
	res := &MySQLRestoreResult{Snapshot: sn, Server: src.Server(), Logical: lr, Target: o.Target}
	if n := len(lr.UserErrors); n > 0 {
		s := "s"
		if n == 1 {
			s = ""
		}
		return res, &PartialError{Msg: fmt.Sprintf("the data is restored, but %d statement%s of the accounts file failed (see the warnings)", n, s)}
	}
	return res, nil
}

// mysqlBinlogArchive collects what is archived for one server, each
// file read from its snapshot.
func mysqlBinlogArchive(r *repository.Repository, all []*snapshot.Snapshot, p, host string) (*mysql.BinlogArchive, error) {
	arch, err := mysql.FindArchive(SnapshotInfos(all), p, host)
	if err != nil {
		return nil, err
	}
	byID := map[string]*snapshot.Snapshot{}
	for _, s := range all {
		byID[s.ID.String()] = s
	}
	for i := range arch.Files {
		tree, name := byID[arch.Files[i].SnapshotID].Tree, arch.Files[i].Name
		arch.Files[i].Open = func(ctx context.Context) (io.ReadCloser, error) {
			return streamtree.NewReader(r, tree).Open(ctx, "binlog/"+name)
		}
	}
	return arch, nil
}

func (a *App) restoreMySQLPhysical(ctx context.Context, req MySQLRestore, f *Found) (*MySQLRestoreResult, error) {
	o := req.PhysicalOptions
	if o.Progress == nil {
		o.Progress = func(msg string) { a.infof("%s", msg) }
	}
	m, err := mysql.RestorePhysical(ctx, f.Tree(), o)
	if err != nil {
		return nil, fmt.Errorf("physical restore of snapshot %s failed: %w", f.Snapshot.ShortID(), err)
	}
	dir, _ := filepath.Abs(o.DataDir)
	return &MySQLRestoreResult{Snapshot: f.Snapshot, DataDir: dir, Manifest: m}, nil
}
