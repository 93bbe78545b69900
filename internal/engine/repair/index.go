package repair

import (
	"context"
	"fmt"

	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// IndexOptions of Index.
type IndexOptions struct {
	// Progress is called after each pack's trailer is read (may be nil).
	Progress func(done, total int)
	// Skipped is called for each pack left out because its trailer could
	// not be read or authenticated (may be nil).
	Skipped func(pack format.ID, err error)
}

// IndexResult sums up a rebuilt index.
type IndexResult struct {
	Packs   int       // packs indexed
	Blobs   int       // entries of the new index
	Damaged int       // packs left out
	Index   format.ID // the new index file
}

// Index rebuilds the index from the packs' own trailers: one index file
// with every authenticated trailer entry replaces every index file there
// was (written first, then the old files removed, so a crash leaves the
// new file and some superseded ones).
func Index(ctx context.Context, r *repository.Repository, opts IndexOptions) (*IndexResult, error) {
	old, err := r.List(ctx, storage.IndexFile)
	if err != nil {
		return nil, err
	}
	packs, err := r.List(ctx, storage.PackFile)
	if err != nil {
		return nil, err
	}
	var f index.File
	res := &IndexResult{}
	for i, fi := range packs {
		id, err := format.ParseID(fi.Name)
		if err != nil {
			continue
		}
		entries, _, err := r.ReadTrailer(ctx, id, fi.Size)
		if err != nil {
			res.Damaged++
			if opts.Skipped != nil {
				opts.Skipped(id, err)
			}
			continue
		}
		n := uint32(len(f.Packs))
		f.Packs = append(f.Packs, id)
		for _, e := range entries {
			f.Entries = append(f.Entries, index.FileEntry{Pack: n, Entry: e})
		}
		if opts.Progress != nil {
			opts.Progress(i+1, len(packs))
		}
	}
	for _, fi := range old {
		if id, err := format.ParseID(fi.Name); err == nil {
			f.Supersedes = append(f.Supersedes, id)
		}
	}
	b := index.EncodeFile(r.Key(), &f)
	res.Index = pack.Hash(b)
	res.Packs, res.Blobs = len(f.Packs), len(f.Entries)
	if err := r.Backend().Save(ctx, storage.Handle{Type: storage.IndexFile, Name: pack.Name(res.Index)}, b, storage.SaveOptions{}); err != nil {
		return nil, fmt.Errorf("save index: %w", err)
	}
	for _, fi := range old {
		if fi.Name == pack.Name(res.Index) {
			continue
		}
		if err := r.Backend().Remove(ctx, storage.Handle{Type: storage.IndexFile, Name: fi.Name}); err != nil {
			return res, fmt.Errorf("remove old index %s: %w", shortName(fi.Name), err)
		}
	}
	return res, nil
}

func shortName(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}
