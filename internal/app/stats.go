package app

import (
	"context"
	"fmt"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// The modes of Stats.
const (
	// StatsRestoreSize counts every file and the bytes a restore writes.
	StatsRestoreSize = "restore-size"
	// StatsRawData counts the unique data blobs the files reference:
	// their plaintext and stored size.
	StatsRawData = "raw-data"
	// StatsFilesByContents counts files with distinct contents once.
	StatsFilesByContents = "files-by-contents"
)

// StatsRequest asks for the sizes of snapshots.
type StatsRequest struct {
	Repo Repo
	// Mode is StatsRestoreSize, StatsRawData or StatsFilesByContents.
	Mode string
	// Filter selects the snapshots (all when empty); Snapshots, when
	// given, names them instead ("latest", IDs or prefixes, resolved
	// under Filter).
	Filter    snapshot.Filter
	Snapshots []string
}

// StatsResult is the sizes of the snapshots, counted as the mode says.
type StatsResult struct {
	Mode string
	// Snapshots counts the snapshots counted.
	Snapshots int
	// Files and RestoreSize are the files and their size (restore-size,
	// files-by-contents; raw-data counts files too).
	Files, RestoreSize int64
	// Blobs, RawSize and StoredSize are the unique data blobs, their
	// plaintext and their stored size (raw-data).
	Blobs, RawSize, StoredSize int64
	// Packs and PackBytes are the packs of the repository.
	Packs     int
	PackBytes int64
}

// Stats counts the files and data of the snapshots req selects, and the
// packs of the repository.
func (a *App) Stats(ctx context.Context, req StatsRequest) (*StatsResult, error) {
	r, err := a.OpenIndexed(ctx, req.Repo)
	if err != nil {
		return nil, err
	}
	all, _, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return nil, err
	}
	list, err := selectSnapshots(all, req.Filter, req.Snapshots)
	if err != nil {
		return nil, err
	}
	res := &StatsResult{Mode: req.Mode, Snapshots: len(list)}
	seen := map[[33]byte]bool{}
	seenFile := map[string]bool{}
	for _, sn := range list {
		err := walker.Walk(ctx, r, sn.Tree, "/", func(p string, n *tree.Node) error {
			if n.Type == tree.TypeFile {
				res.count(r, n, seen, seenFile)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	_ = r.Backend().List(ctx, storage.PackFile, func(fi storage.FileInfo) error {
		res.PackBytes += fi.Size
		res.Packs++
		return nil
	})
	return res, nil
}

// count adds the file n as the mode says; seen holds the data blobs and
// seenFile the contents counted already.
func (res *StatsResult) count(r *repository.Repository, n *tree.Node, seen map[[33]byte]bool, seenFile map[string]bool) {
	switch res.Mode {
	case StatsRestoreSize:
		res.Files++
		res.RestoreSize += int64(n.Size)
	case StatsFilesByContents:
		k := fmt.Sprint(n.Content)
		if !seenFile[k] {
			seenFile[k] = true
			res.Files++
			res.RestoreSize += int64(n.Size)
		}
	case StatsRawData:
		res.Files++
		for _, id := range n.Content {
			var k [33]byte
			copy(k[:], id[:])
			if seen[k] {
				continue
			}
			seen[k] = true
			if l, ok := r.Index().Lookup(id, pack.DataBlob); ok {
				res.Blobs++
				res.RawSize += int64(l.RawLength)
				res.StoredSize += int64(l.Length)
			}
		}
	}
}

// selectSnapshots is the snapshots of all that filter selects or, when
// refs are given, those they name ("latest", IDs or prefixes, resolved
// under filter), in their order.
func selectSnapshots(all []*snapshot.Snapshot, filter snapshot.Filter, refs []string) ([]*snapshot.Snapshot, error) {
	if len(refs) == 0 {
		return filter.Apply(all), nil
	}
	var list []*snapshot.Snapshot
	for _, ref := range refs {
		sn, err := snapshot.Find(all, ref, filter)
		if err != nil {
			return nil, err
		}
		list = append(list, sn)
	}
	return list, nil
}
