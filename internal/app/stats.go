package app

import (
	"context"
	"fmt"
	"slices"
	"strings"

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
	// StatsBlobsPerFile counts, for files with distinct contents, the
	// plaintext of each blob once per file path (restic's blobs-per-file).
	StatsBlobsPerFile = "blobs-per-file"
)

// StatsModes are the modes of Stats, restic's four.
var StatsModes = []string{StatsRestoreSize, StatsFilesByContents, StatsBlobsPerFile, StatsRawData}

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

// Validate refuses a mode Stats does not know.
func (req StatsRequest) Validate() error {
	if !slices.Contains(StatsModes, req.Mode) {
		return fmt.Errorf("stats mode %q: want %s", req.Mode, strings.Join(StatsModes, ", "))
	}
	return nil
}

// StatsResult is the sizes of the snapshots, counted as the mode says.
type StatsResult struct {
	Mode string
	// Snapshots counts the snapshots counted.
	Snapshots int
	// Files and RestoreSize are the files and their size (restore-size,
	// files-by-contents, blobs-per-file; raw-data counts files too).
	Files, RestoreSize int64
	// Blobs, RawSize and StoredSize are the unique data blobs, their
	// plaintext and their stored size (raw-data); blobs-per-file counts
	// blob references per file in Blobs and their plaintext in RestoreSize.
	Blobs, RawSize, StoredSize int64
	// Packs and PackBytes are the packs of the repository.
	Packs     int
	PackBytes int64
}

// Stats counts the files and data of the snapshots req selects, and the
// packs of the repository.
func (a *App) Stats(ctx context.Context, req StatsRequest) (*StatsResult, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	r, list, err := a.openSelected(ctx, req.Repo, req.Filter, req.Snapshots)
	if err != nil {
		return nil, err
	}
	res := &StatsResult{Mode: req.Mode, Snapshots: len(list)}
	c := &statsCounter{r: r, res: res, seen: map[[33]byte]bool{}, seenFile: map[string]bool{}, fileBlobs: map[string]map[[33]byte]bool{}}
	for _, sn := range list {
		err := walker.Walk(ctx, r, sn.Tree, "/", func(p string, n *tree.Node) error {
			if n.Type == tree.TypeFile {
				c.count(p, n)
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

// statsCounter counts files as the mode says: seen holds the data blobs,
// seenFile the contents, fileBlobs the blobs per file path counted already.
type statsCounter struct {
	r         *repository.Repository
	res       *StatsResult
	seen      map[[33]byte]bool
	seenFile  map[string]bool
	fileBlobs map[string]map[[33]byte]bool
}

// count adds the file n at path p.
func (c *statsCounter) count(p string, n *tree.Node) {
	res, r := c.res, c.r
	switch res.Mode {
	case StatsRestoreSize:
		res.Files++
		res.RestoreSize += int64(n.Size)
	case StatsFilesByContents, StatsBlobsPerFile:
		k := fmt.Sprint(n.Content)
		if c.seenFile[k] {
			return
		}
		c.seenFile[k] = true
		if res.Mode == StatsFilesByContents {
			res.Files++
			res.RestoreSize += int64(n.Size)
			return
		}
		blobs := c.fileBlobs[p]
		if blobs == nil {
			blobs = map[[33]byte]bool{}
			c.fileBlobs[p] = blobs
			res.Files++
		}
		for _, id := range n.Content {
			var bk [33]byte
			copy(bk[:], id[:])
			if l, ok := r.Index().Lookup(id, pack.DataBlob); ok && !blobs[bk] {
				blobs[bk] = true
				res.Blobs++
				res.RestoreSize += int64(l.RawLength)
			}
		}
	case StatsRawData:
		res.Files++
		for _, id := range n.Content {
			var k [33]byte
			copy(k[:], id[:])
			if c.seen[k] {
				continue
			}
			c.seen[k] = true
			if l, ok := r.Index().Lookup(id, pack.DataBlob); ok {
				res.Blobs++
				res.RawSize += int64(l.RawLength)
				res.StoredSize += int64(l.Length)
			}
		}
	}
}

// openSelected opens repo with its index and returns the snapshots filter
// and refs select (selectSnapshots).
func (a *App) openSelected(ctx context.Context, repo Repo, filter snapshot.Filter, refs []string) (*repository.Repository, []*snapshot.Snapshot, error) {
	r, err := a.OpenIndexed(ctx, repo)
	if err != nil {
		return nil, nil, err
	}
	all, _, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	list, err := selectSnapshots(all, filter, refs)
	return r, list, err
}

// openChosen opens repo (without its index) and returns the snapshots
// filter and refs select, warning about those that cannot be read.
func (a *App) openChosen(ctx context.Context, repo Repo, filter snapshot.Filter, refs []string) (*repository.Repository, []*snapshot.Snapshot, error) {
	r, err := a.Open(ctx, repo)
	if err != nil {
		return nil, nil, err
	}
	all, err := a.LoadSnapshots(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	list, err := selectSnapshots(all, filter, refs)
	return r, list, err
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
