package repository

import (
	"context"
	"sync"

	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// For tests only: no product code reads every index file into memory at
// once any more (the prune's sweep streams them, IndexOfEveryFile).

// IndexFiles loads every index file, returning them by ID. Damaged files
// are reported in errs, not fatal.
func (r *Repository) IndexFiles(ctx context.Context) (map[ID]*index.File, map[string]error, error) {
	infos, err := r.List(ctx, storage.IndexFile)
	if err != nil {
		return nil, nil, err
	}
	files := map[ID]*index.File{}
	errs := map[string]error{}
	var mu sync.Mutex
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, fi := range infos {
		wg.Add(1)
		sem <- struct{}{}
		go func(name string) {
			defer func() { <-sem; wg.Done() }()
			id, _ := format.ParseID(name)
			f, err := r.loadIndexFile(ctx, name)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[name] = err
				return
			}
			files[id] = f
		}(fi.Name)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	return files, errs, nil
}

// StreamIndexFiles streams the index files infos name, as LoadIndex does,
// with the sizes infos give; IndexBytesInFlight is its bound.
func (r *Repository) StreamIndexFiles(ctx context.Context, infos []storage.FileInfo, fn func(name string, f *index.File, err error) error) error {
	return r.streamIndexFiles(ctx, infos, fn)
}

const IndexBytesInFlight = indexBytesInFlight
