package app

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/source/mongodb"
)

// MongoRestore is a restore of a MongoDB backup into a server (or of its
// files into a directory, ToDir), to a point in time when
// Options.OplogLimit is set.
type MongoRestore struct {
	Repo Repo
	// Snapshot is an ID, a prefix or "latest": the newest MongoDB backup
	// passing Filter.
	Snapshot string
	Filter   snapshot.Filter
	// Server is the deployment restored into (not used with ToDir).
	Server mongodb.Config
	// Options are the restore's; its Done reports each collection. A
	// backup made with mongodump gets them as mongorestore's options.
	Options mongodb.RestoreOptions
	// ToDir, when set, writes the backup's files into this directory
	// (mongodump's layout) instead of restoring into a server.
	ToDir string
	// ToolDir is where mongorestore is ("": PATH) for a backup made with
	// mongodump; ToolStderr, when set, also gets its standard error.
	ToolDir    string
	ToolStderr io.Writer
}

// Validate checks the options (filling in their defaults).
func (r *MongoRestore) Validate() error { return r.Options.Validate() }

// MongoRestoreResult is what a MongoDB restore did.
type MongoRestoreResult struct {
	Snapshot *snapshot.Snapshot
	// Restore is what was restored into the server (empty for a backup
	// made with mongodump).
	Restore *mongodb.RestoreResult
	// Files and Bytes were written into ToDir.
	Files int
	Bytes int64
	// Duration is the time the restore took.
	Duration time.Duration
}

// RestoreMongo restores a MongoDB backup. A collection that fails does
// not stop the others; the result then comes with a *PartialError.
func (a *App) RestoreMongo(ctx context.Context, req MongoRestore) (*MongoRestoreResult, error) {
	start := time.Now()
	if err := req.Validate(); err != nil {
		return nil, err
	}
	f, err := a.FindSourceBackup(ctx, req.Repo, req.Snapshot, mongodb.SourceName, req.Filter)
	if err != nil {
		return nil, err
	}
	sn, t := f.Snapshot, f.Tree()
	res := &MongoRestoreResult{Snapshot: sn, Restore: &mongodb.RestoreResult{}}
	if req.ToDir != "" {
		if res.Files, res.Bytes, err = mongodb.RestoreToDir(ctx, t, req.ToDir); err != nil {
			return nil, err
		}
		res.Duration = time.Since(start)
		return res, nil
	}
	info, err := mongodb.ReadBackupInfo(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", sn.ShortID(), err)
	}
	if err := req.Server.Validate(); err != nil {
		return nil, err
	}
	if info.Tool != "" {
		err = a.restoreMongoArchive(ctx, req, t)
	} else {
		res.Restore, err = a.restoreMongoDriver(ctx, req, f, info)
	}
	if err != nil {
		return nil, err
	}
	res.Duration = time.Since(start)
	if n := res.Restore.Failed; n > 0 {
		return res, &PartialError{Msg: fmt.Sprintf("%d of %d collections could not be restored", n, len(res.Restore.Collections))}
	}
	return res, nil
}

// restoreMongoArchive pipes a backup made with mongodump to mongorestore.
func (a *App) restoreMongoArchive(ctx context.Context, req MongoRestore, t source.Tree) error {
	path := a.getenv("PATH")
	tools := mongodb.Tools{Env: []string{"PATH=" + path}, Stderr: req.ToolStderr}
	var err error
	if tools.Mongorestore, err = mongodb.LookPath("mongorestore", req.ToolDir, path); err != nil {
		return err
	}
	return mongodb.RestoreArchive(ctx, tools, req.Server, t, req.Options.ArchiveOptions())
}

// restoreMongoDriver restores the collections with the driver, then
// replays the archived oplog up to the limit.
func (a *App) restoreMongoDriver(ctx context.Context, req MongoRestore, f *Found, info *mongodb.BackupInfo) (*mongodb.RestoreResult, error) {
	opts, limit := req.Options, req.Options.OplogLimit
	var chunks []mongodb.ChunkInfo
	if limit != nil {
		var notes []string
		chunks, notes = mongodb.ArchivedChunks(SnapshotInfos(f.All), f.Snapshot.Paths)
		for _, n := range notes {
			a.warnf("%s", n)
		}
		// Check the archive covers the target before touching the server.
		if err := mongodb.PlanPointInTime(f.Snapshot.ShortID(), info, *limit, chunks); err != nil {
			return nil, fmt.Errorf("--oplog-limit: %w", err)
		}
	}
	c, err := mongodb.Connect(ctx, req.Server)
	if err != nil {
		return nil, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = c.Close(cctx)
	}()
	res, err := c.Restore(ctx, f.Tree(), info, opts)
	if err != nil {
		return nil, err
	}
	if limit != nil && res.OplogPos.Before(*limit) {
		trees := f.Trees()
		rp, err := c.ReplayArchive(ctx, &opts.Select, res.OplogPos, *limit, chunks,
			func(ctx context.Context, ch mongodb.ChunkInfo) (source.Tree, error) { return trees(ch.ID), nil })
		if rp != nil {
			res.OplogApplied += rp.Applied
			res.OplogPos = rp.Pos
		}
		if err != nil {
			return nil, err
		}
	}
	return res, nil
}
