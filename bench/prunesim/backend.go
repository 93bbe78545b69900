package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// simBackend is the generated repository as a measurement sees it: the
// local directory (config, keys, index files, snapshots and the real
// packs of trees) plus the data packs of the layout, which are listed and
// stat'ed with their computed sizes but hold no bytes. Planning a prune
// and a check without ReadData read no data pack; a Load of one fails
// saying so, so a measurement that would read data stops instead of
// measuring something else.
type simBackend struct {
	storage.Backend
	lay     *layout
	modTime time.Time
}

// Unwrap lets storage.Find look through to the local backend.
func (b *simBackend) Unwrap() storage.Backend { return b.Backend }

// errSynthetic is what reading a synthetic data pack returns.
var errSynthetic = errors.New("synthetic data pack: it has no content (prunesim measures only what reads no data)")

func (b *simBackend) synthetic(h storage.Handle) (int, bool) {
	if h.Type != storage.PackFile {
		return 0, false
	}
	id, err := format.ParseID(h.Name)
	if err != nil {
		return 0, false
	}
	return b.lay.packNumber(id)
}

// List lists the stored objects and, for packs, the synthetic data packs
// after them, one at a time as a store's listing pages would come.
func (b *simBackend) List(ctx context.Context, t storage.FileType, fn func(storage.FileInfo) error) error {
	if err := b.Backend.List(ctx, t, fn); err != nil || t != storage.PackFile {
		return err
	}
	for p := range b.lay.packs() {
		if p%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("list %s: %w", t, err)
			}
		}
		fi := storage.FileInfo{Name: pack.Name(b.lay.packID(p)), Size: b.lay.packSize(p), ModTime: b.modTime}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// Stat answers for a synthetic data pack with its computed size.
func (b *simBackend) Stat(ctx context.Context, h storage.Handle) (storage.FileInfo, error) {
	if p, ok := b.synthetic(h); ok {
		return storage.FileInfo{Name: h.Name, Size: b.lay.packSize(p), ModTime: b.modTime}, nil
	}
	return b.Backend.Stat(ctx, h)
}

// Load refuses synthetic data packs (see errSynthetic).
func (b *simBackend) Load(ctx context.Context, h storage.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if _, ok := b.synthetic(h); ok {
		return fmt.Errorf("load pack %.8s: %w", h.Name, errSynthetic)
	}
	return b.Backend.Load(ctx, h, length, offset, fn)
}

// Remove refuses synthetic data packs: a dry run deletes nothing, and a
// measurement that tried would be measuring the wrong thing.
func (b *simBackend) Remove(ctx context.Context, h storage.Handle) error {
	if _, ok := b.synthetic(h); ok {
		return fmt.Errorf("remove pack %.8s: %w", h.Name, errSynthetic)
	}
	return b.Backend.Remove(ctx, h)
}
