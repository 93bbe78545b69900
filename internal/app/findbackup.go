package app

import (
	"context"
	"fmt"

	"github.com/bunkerbackup/bunker/internal/app/streamtree"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
)

// Found is a snapshot found in an opened repository (its index loaded),
// with every snapshot of that repository.
type Found struct {
	Repository *repository.Repository
	Snapshot   *snapshot.Snapshot
	All        []*snapshot.Snapshot
}

// Tree is the found snapshot's tree, read as a source's files.
func (f *Found) Tree() source.Tree { return streamtree.NewReader(f.Repository, f.Snapshot.Tree) }

// Trees gives the tree of any snapshot of the repository by its full ID
// (for a source that reads log archives).
func (f *Found) Trees() func(id string) source.Tree { return SnapshotTrees(f.Repository, f.All) }

// FindSnapshot opens repo with its index and finds the snapshot ref
// ("latest", an ID or an ID prefix) passing filter.
func (a *App) FindSnapshot(ctx context.Context, repo Repo, ref string, filter snapshot.Filter) (*Found, error) {
	return a.FindBackup(ctx, repo, ref, filter, func(*snapshot.Snapshot) error { return nil })
}

// FindBackup opens repo with its index and finds the snapshot ref among
// those that check accepts (nil error): "latest" is the newest accepted
// one passing filter; a snapshot named by ID that check refuses is an
// error saying why.
func (a *App) FindBackup(ctx context.Context, repo Repo, ref string, filter snapshot.Filter, check func(*snapshot.Snapshot) error) (*Found, error) {
	r, err := a.OpenIndexed(ctx, repo)
	if err != nil {
		return nil, err
	}
	all, err := a.LoadSnapshots(ctx, r)
	if err != nil {
		return nil, err
	}
	sn, err := findAccepted(all, ref, filter, check)
	if err != nil {
		return nil, err
	}
	return &Found{Repository: r, Snapshot: sn, All: all}, nil
}

// FindSourceBackup finds a backup of the source src ("latest" is the
// newest of that source, log archives excluded).
func (a *App) FindSourceBackup(ctx context.Context, repo Repo, ref, src string, filter snapshot.Filter) (*Found, error) {
	return a.FindBackup(ctx, repo, ref, filter, sourceCheck(src))
}

// sourceCheck accepts the backups of source src (log archives excluded).
func sourceCheck(src string) func(*snapshot.Snapshot) error {
	return func(s *snapshot.Snapshot) error {
		if s.Metadata["source"] != src || s.Kind == KindContinuous {
			return fmt.Errorf("snapshot %s is not a %s backup (source %q, kind %s)", s.ShortID(), src, s.Metadata["source"], s.Kind)
		}
		return nil
	}
}

// SnapshotTrees returns a function that gives the tree of the snapshot
// with the full ID id among all.
func SnapshotTrees(r *repository.Repository, all []*snapshot.Snapshot) func(id string) source.Tree {
	byID := make(map[string]*snapshot.Snapshot, len(all))
	for _, s := range all {
		byID[s.ID.String()] = s
	}
	return func(id string) source.Tree { return streamtree.NewReader(r, byID[id].Tree) }
}

// findAccepted finds the snapshot ref among all that check accepts:
// "latest" is the newest accepted one passing filter; a snapshot named by
// ID that check refuses is check's error.
func findAccepted(all []*snapshot.Snapshot, ref string, filter snapshot.Filter, check func(*snapshot.Snapshot) error) (*snapshot.Snapshot, error) {
	cands := all
	if ref == "latest" {
		cands = nil
		for _, s := range all {
			if check(s) == nil {
				cands = append(cands, s)
			}
		}
	}
	sn, err := snapshot.Find(cands, ref, filter)
	if err != nil {
		return nil, err
	}
	if err := check(sn); err != nil {
		return nil, err
	}
	return sn, nil
}
