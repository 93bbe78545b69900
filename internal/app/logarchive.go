package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/source/mongodb"
	"github.com/bunkerbackup/bunker/internal/source/mysql"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
)

// The log archives of the databases (PostgreSQL's WAL, MySQL's binlogs,
// MongoDB's oplog) are snapshots of kind continuous, committed as the
// server writes its log; restores to a point in time replay them.

// WALPush archives PostgreSQL WAL files (segments or history files) as
// one snapshot: PostgreSQL's archive_command.
type WALPush struct {
	Repo Repo
	// Repository, when set, is written to instead of opening Repo: a
	// receiver's many pushes.
	Repository *repository.Repository
	// Paths are the files to archive.
	Paths []string
	// SystemID is the cluster's system identifier; "" reads it from the
	// segments' headers, else from global/pg_control in the current
	// directory (see Validate).
	SystemID string
	// Quiet reports no progress (a receiver's frequent small pushes).
	Quiet bool
}

// Validate checks the file names and settles the system identifier, so
// that a wrong call fails before the repository is opened.
func (p *WALPush) Validate() error {
	id, err := postgres.ArchiveSystemID(p.Paths, p.SystemID, "global/pg_control")
	p.SystemID = id
	return err
}

// PushWAL stores WAL files as one continuous snapshot. It returns once
// they are durable in the repository.
func (a *App) PushWAL(ctx context.Context, p WALPush) (*BackupResult, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return a.RunSourceBackup(ctx, SourceBackup{Repo: p.Repo, Repository: p.Repository, Source: postgres.Source,
		Paths: []string{"/postgres/" + p.SystemID + "/wal"}, Kind: KindContinuous, NoProgress: p.Quiet,
		Save: func(ctx context.Context, s source.Sink) (map[string]string, error) {
			m, err := postgres.ArchiveWAL(ctx, s, p.Paths, p.SystemID)
			if err != nil {
				return nil, err
			}
			return m.Map(), nil
		}})
}

// WALFetch writes an archived WAL file to a local path: PostgreSQL's
// restore_command.
type WALFetch struct {
	Repo Repo
	// Name is the WAL file's name, Dest where it goes.
	Name, Dest string
	// SystemID is the cluster's system identifier; "" reads it from
	// global/pg_control in the current directory (see Validate).
	SystemID string
}

// Validate checks the name and settles the system identifier, so that a
// wrong call fails before the repository is opened.
func (f *WALFetch) Validate() error {
	w, err := postgres.ParseWALName(f.Name)
	if err != nil {
		return err
	}
	f.Name = w.Name
	f.SystemID, err = postgres.LocalSystemID(f.SystemID, "global/pg_control")
	return err
}

// FetchWAL writes the archived WAL file f.Name to f.Dest atomically; a
// partial segment stands in for a full one that was never archived. The
// error says when the archive does not have it.
func (a *App) FetchWAL(ctx context.Context, f WALFetch) error {
	if err := f.Validate(); err != nil {
		return err
	}
	r, err := a.Open(ctx, f.Repo)
	if err != nil {
		return err
	}
	if err := r.LoadIndex(ctx, false); err != nil {
		return fmt.Errorf("load index: %w", err)
	}
	a.SetMemoryBudget(r)
	all, _, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return err
	}
	return postgres.FetchWAL(ctx, SnapshotInfos(all), SnapshotTrees(r, all), f.Name, f.Dest, f.SystemID)
}

// WALReceive streams a server's WAL into the repository with
// pg_receivewal through a replication slot.
type WALReceive struct {
	Repo   Repo
	Server postgres.Config
	// Slot is the replication slot (created when missing).
	Slot string
	// Spool is the directory for WAL on its way; "" means
	// CacheRoot/wal-spool/<repository ID>/<slot>.
	Spool, CacheRoot string
	// Interval is how often the growing segment is archived.
	Interval time.Duration
}

// ReceiveWAL archives completed segments as they close and the growing
// one every Interval, until ctx ends.
func (a *App) ReceiveWAL(ctx context.Context, req WALReceive) error {
	if req.Server.Getenv == nil {
		req.Server.Getenv = a.getenv
	}
	c, err := postgres.Open(req.Server)
	if err != nil {
		return err
	}
	defer c.Close()
	// The repository is opened once: the receiver pushes many times.
	r, err := a.Open(ctx, req.Repo)
	if err != nil {
		return err
	}
	spool := req.Spool
	if spool == "" {
		spool = filepath.Join(req.CacheRoot, "wal-spool", r.Config().ID[:16], req.Slot)
	}
	a.infof("streaming WAL from %s (slot %s) through %s", c.Server(), req.Slot, spool)
	return c.ReceiveWAL(ctx, postgres.ReceiverOptions{Spool: spool, Slot: req.Slot, Interval: req.Interval, Logf: a.infof,
		Push: func(ctx context.Context, paths []string) error {
			_, err := a.PushWAL(ctx, WALPush{Repository: r, Paths: paths, Quiet: true})
			return err
		},
	})
}

// BinlogArchive copies a MySQL or MariaDB server's binary logs into the
// repository as they are written.
type BinlogArchive struct {
	Repo   Repo
	Server mysql.Options
	// Options.SpoolDir "" means CacheRoot/mysql-binlog, else a temporary
	// directory; Archived and Push are filled in.
	Options   mysql.ArchiveOptions
	CacheRoot string
	Tags      []string
	Host      string // default: this machine's name
}

// ArchiveMySQLBinlogs archives the binlogs after the newest complete file
// already archived, until ctx ends (or, with Options.Once, up to now).
func (a *App) ArchiveMySQLBinlogs(ctx context.Context, req BinlogArchive) error {
	so, o := req.Server, req.Options
	if so.Warn == nil {
		so.Warn = func(msg string) { a.warnf("%s", msg) }
	}
	src, err := mysql.Connect(ctx, so)
	if err != nil {
		return err
	}
	defer src.Close()
	binlogPath, host := mysql.ArchivePath(src.Server()), req.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	// The repository is opened once: the archiver commits many times.
	r, err := a.Open(ctx, req.Repo)
	if err != nil {
		return err
	}
	all, _, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return err
	}
	if o.Archived, err = mysql.Archived(SnapshotInfos(all), binlogPath, host); err != nil {
		return err
	}
	spool := o.SpoolDir
	if spool == "" {
		if spool = req.CacheRoot; spool != "" {
			spool = filepath.Join(spool, "mysql-binlog")
		} else {
			if spool, err = os.MkdirTemp("", "bunker-binlog-spool-"); err != nil {
				return err
			}
			defer os.RemoveAll(spool)
		}
	}
	o.SpoolDir = filepath.Join(spool, mysql.SpoolSubdir(src.Server()))
	o.Push = func(ctx context.Context, p mysql.Push) error {
		return a.pushBinlogs(ctx, r, src, SourceBackup{Paths: []string{binlogPath}, Tags: req.Tags, Host: host}, p)
	}
	return src.ArchiveBinlogs(ctx, o)
}

// pushBinlogs commits one snapshot of the binlog archive at the paths,
// tags and host of sb.
func (a *App) pushBinlogs(ctx context.Context, r *repository.Repository, src *mysql.Source, sb SourceBackup, p mysql.Push) error {
	sb.Repository, sb.Source, sb.Kind, sb.NoProgress = r, mysql.SourceName, KindContinuous, true
	sb.Save = func(ctx context.Context, w source.Sink) (map[string]string, error) {
		if err := mysql.WritePush(ctx, w, p); err != nil {
			return nil, err
		}
		return src.PushMeta(p).Map(), nil
	}
	if _, err := a.RunSourceBackup(ctx, sb); err != nil {
		return err
	}
	for _, f := range p.Files {
		state := "complete"
		if f.Partial {
			state = "partial"
		}
		a.infof("archived %s (%s, %s)", f.Name, state, FormatBytes(f.Size))
	}
	return nil
}

// OplogArchive tails a replica set's oplog into the repository.
type OplogArchive struct {
	Repo   Repo
	Server mongodb.Config
	// Interval is how often what arrived is committed; Once archives
	// what the oplog has now and returns.
	Interval time.Duration
	Once     bool
	Tags     []string
	Host     string // default: this machine's name
}

// ArchiveMongoOplog commits the oplog every Interval from where the
// archive (else the newest backup of the same hosts) ends, until ctx
// ends.
func (a *App) ArchiveMongoOplog(ctx context.Context, req OplogArchive) error {
	if err := req.Server.Validate(); err != nil {
		return err
	}
	c, err := mongodb.Connect(ctx, req.Server)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = c.Close(cctx)
	}()
	// The repository is opened once: the archiver commits many times.
	r, err := a.Open(ctx, req.Repo)
	if err != nil {
		return err
	}
	all, _, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return err
	}
	paths := req.Server.SnapshotPaths()
	ao := mongodb.ArchiveOptions{Interval: req.Interval, Once: req.Once, Log: a.infof, Warn: a.warnf,
		Commit: func(ctx context.Context, data []byte, ci mongodb.ChunkInfo) error {
			_, err := a.RunSourceBackup(ctx, SourceBackup{Repository: r, Source: mongodb.OplogSourceName, Paths: paths,
				Tags: req.Tags, Host: req.Host, Kind: KindContinuous, NoProgress: true,
				Save: func(ctx context.Context, w source.Sink) (map[string]string, error) {
					return mongodb.WriteChunk(ctx, w, data, ci)
				}})
			return err
		}}
	ao.ChunkEnd, ao.BackupEnd = mongodb.ArchiveResume(SnapshotInfos(all), paths)
	return c.ArchiveOplog(ctx, ao)
}

// ExpireResult is what ExpireLogArchive forgot (or, in a dry run, would).
type ExpireResult struct {
	Name      string // the archive's name ("WAL archive")
	Expired   []ExpiredLog
	Forgotten int
	Archives  int // the archive snapshots in the repository
}

// ExpireLogArchive forgets the snapshots of the log archive la that no
// kept backup needs (all of them in a dry run: none). Its notes go to
// Events as Info, and so does each snapshot forgotten.
func (a *App) ExpireLogArchive(ctx context.Context, repo Repo, la source.LogArchive, dryRun bool) (*ExpireResult, error) {
	r, err := a.Open(ctx, repo)
	if err != nil {
		return nil, err
	}
	all, err := a.LoadSnapshots(ctx, r)
	if err != nil {
		return nil, err
	}
	expired, notes, total := ExpireLogs(all, la)
	for _, n := range notes {
		a.infof("%s", n)
	}
	res := &ExpireResult{Name: la.Name(), Archives: total, Expired: expired}
	for _, e := range res.Expired {
		if dryRun {
			continue
		}
		if err := snapshot.Remove(ctx, r, e.Snapshot.ID); err != nil {
			return nil, fmt.Errorf("forget %s: %w", e.Snapshot.ShortID(), err)
		}
		res.Forgotten++
		a.infof("forgot %s %s", e.Snapshot.ShortID(), e.Why)
	}
	return res, nil
}

// ListWAL lists the archived WAL files of system sysid ("": every
// system), by system and name.
func (a *App) ListWAL(ctx context.Context, repo Repo, sysid string) ([]postgres.ArchivedFile, error) {
	r, err := a.Open(ctx, repo)
	if err != nil {
		return nil, err
	}
	all, _, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return nil, err
	}
	return postgres.ListArchive(SnapshotInfos(all), sysid), nil
}

// BinlogCopy is an archived binary log file: the copy a restore uses.
type BinlogCopy struct {
	Path       string `json:"path"`
	Host       string `json:"host"`
	File       string `json:"file"`
	Size       int64  `json:"size"`
	Complete   bool   `json:"complete"`
	Snapshot   string `json:"snapshot"`
	FirstEvent string `json:"first_event,omitempty"`
	LastEvent  string `json:"last_event,omitempty"`
}

// ListBinlogs lists, for every server (path) and host of the archive
// snapshots that pass filter, each archived binlog file with the copy a
// restore uses (the complete one, else the largest).
func (a *App) ListBinlogs(ctx context.Context, repo Repo, filter snapshot.Filter) ([]BinlogCopy, error) {
	r, err := a.Open(ctx, repo)
	if err != nil {
		return nil, err
	}
	all, err := a.LoadSnapshots(ctx, r)
	if err != nil {
		return nil, err
	}
	infos, rows := SnapshotInfos(all), []BinlogCopy{}
	for _, k := range mysql.ArchiveServers(SnapshotInfos(filter.Apply(all))) {
		files, err := mysql.Archived(infos, k.Path, k.Host)
		if err != nil {
			return nil, err
		}
		for _, f := range mysql.BestCopies(files) {
			rw := BinlogCopy{Path: k.Path, Host: k.Host, File: f.Name, Size: f.Size, Complete: f.Complete, Snapshot: f.Snapshot}
			if !f.First.IsZero() {
				rw.FirstEvent, rw.LastEvent = f.First.Format(time.RFC3339), f.Last.Format(time.RFC3339)
			}
			rows = append(rows, rw)
		}
	}
	return rows, nil
}
