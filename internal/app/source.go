package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/bunkerbackup/bunker/internal/app/streamtree"
	"github.com/bunkerbackup/bunker/internal/engine/archiver"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
)

// SourceBackup is a backup of a source that produces named streams (a
// database's dumps, a log archive's segments) rather than a file tree
// read from disk.
type SourceBackup struct {
	Repo Repo
	// Repository, when set, is written to instead of opening Repo: for
	// long-running callers that open it once (a WAL receiver).
	Repository *repository.Repository
	// Source names the source ("postgres", "mysql", "mongodb",
	// "kubernetes"); it is recorded as the snapshot's metadata "source".
	Source string
	// Paths are the snapshot's paths, e.g. /postgres/127.0.0.1:5432/logical.
	Paths []string
	Tags  []string
	Host  string // default: this machine's name
	// Kind is the snapshot's kind unless Parent says otherwise.
	Kind string
	// Parent, when set, picks the parent, the base and the kind among the
	// snapshots of the same paths and host (newest last); nil snapshots
	// mean none, an empty kind keeps Kind.
	Parent func(same []*snapshot.Snapshot) (parent, base *snapshot.Snapshot, kind string)
	// Save writes the source's files into the sink and returns the
	// snapshot's metadata. Nothing is saved when it fails.
	Save func(ctx context.Context, w source.Sink) (map[string]string, error)
	// NoProgress reports no progress (a receiver's frequent small pushes).
	NoProgress bool
}

// Validate says what is missing from b.
func (b *SourceBackup) Validate() error {
	switch {
	case b.Source == "":
		return errors.New("source backup: no source named")
	case len(b.Paths) == 0:
		return fmt.Errorf("%s backup: no snapshot path", b.Source)
	case b.Save == nil:
		return fmt.Errorf("%s backup: nothing to save", b.Source)
	}
	return nil
}

// RunSourceBackup streams a source into the repository and commits one
// snapshot, or nothing at all when anything fails. The result's Write is
// what this backup wrote (not what the repository wrote before it).
// Progress goes to Events with Op "backup" and Source set.
func (a *App) RunSourceBackup(ctx context.Context, b SourceBackup) (*BackupResult, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	r := b.Repository
	if r == nil {
		var err error
		if r, err = a.Open(ctx, b.Repo); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	before := r.Stats()
	sess, err := a.beginBackup(ctx, r)
	if err != nil {
		return nil, err
	}
	defer a.endSession(sess)
	a.SetMemoryBudget(r)

	host := b.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	sn := snapshot.New(b.Paths, SplitTags(b.Tags), host, start)
	sn.Program = a.Program
	sn.Kind = b.Kind
	if b.Parent != nil {
		all, _, err := snapshot.LoadAll(ctx, r)
		if err != nil {
			return nil, err
		}
		var same []*snapshot.Snapshot
		for _, s := range all {
			if s.Hostname == sn.Hostname && slices.Equal(s.Paths, sn.Paths) {
				same = append(same, s)
			}
		}
		p, base, kind := b.Parent(same)
		if kind != "" {
			sn.Kind = kind
		}
		if p != nil {
			sn.Parent = &p.ID
			if base != nil {
				sn.Base = &base.ID
			}
		}
	}

	arch, err := archiver.New(r, archiver.Options{Chunker: r.Config().Chunker.Params()})
	if err != nil {
		return nil, err
	}
	w := streamtree.NewWriter(arch, start, sn.Username)
	stopProgress := func() {}
	if !b.NoProgress {
		stopProgress = a.ticker(func(final bool) { a.progress(sourceProgress(arch, w, b.Source, start, final)) })
	}
	stopSavers := arch.StartStreams(ctx)
	meta, err := b.Save(ctx, w)
	var root archiver.ID
	if err == nil {
		root, err = w.Root(ctx)
	}
	stopSavers()
	stopProgress()
	if err == nil {
		err = r.Flush(ctx)
	} else {
		// Keep what was uploaded findable for the next run.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		_ = r.Flush(fctx)
		cancel()
	}
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("%s backup failed, no snapshot saved: %w", b.Source, err)
	}
	if sn.Metadata == nil {
		sn.Metadata = map[string]string{}
	}
	for k, v := range meta {
		sn.Metadata[k] = v
	}
	sn.Metadata["source"] = b.Source
	ws := r.Stats()
	ws.Blobs -= before.Blobs
	ws.BlobBytes -= before.BlobBytes
	ws.StoredBytes -= before.StoredBytes
	ws.Packs -= before.Packs
	sn.Tree = root
	read := arch.Stats.BytesRead.Load()
	sn.Summary = &snapshot.Summary{
		Start: start, End: time.Now(), Files: w.Files(), FilesNew: w.Files(), FilesRead: w.Files(),
		BytesRead: read, TotalBytes: read,
		BlobsAdded: int64(ws.Blobs), BytesAdded: ws.BlobBytes, BytesStored: ws.StoredBytes,
	}
	if _, err := sess.Commit(ctx, sn); err != nil {
		return nil, err
	}
	return &BackupResult{Snapshot: sn, Write: ws}, nil
}

func sourceProgress(arch *archiver.Archiver, w *streamtree.Writer, src string, start time.Time, final bool) Progress {
	st := &arch.Stats
	read := st.BytesRead.Load()
	return Progress{Op: "backup", Source: src, Elapsed: time.Since(start), Files: w.Files(), Bytes: read,
		BytesRead: read, BytesAdded: st.BytesAdded.Load(), Current: w.Current(), Final: final}
}
