package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// simBackend is the generated repository as a measurement sees it: the
// local directory (config, keys, index files, snapshots and the real
// packs of trees) plus the data packs of the layout, which are listed and
// stat'ed with their computed sizes. Of a data pack only the header and
// the trailer are computed (with key, once set): what a prune's sweep
// reads of the packs it deletes. Its blobs are not there: a Load that
// reaches them fails saying so, so a measurement that would read data
// stops instead of measuring something else. A removed data pack is
// gone from then on, for every simBackend of the process.
type simBackend struct {
	storage.Backend
	lay     *layout
	modTime time.Time
	key     *crypto.Key
}

// removed holds the data packs removed in this process (they exist only
// in the layout, so only the process can remember it).
var removed struct {
	sync.Mutex
	packs map[int]bool
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
		if b.gone(p) {
			continue
		}
		fi := storage.FileInfo{Name: pack.Name(b.lay.packID(p)), Size: b.lay.packSize(p), ModTime: b.modTime}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// gone reports whether data pack p was removed.
func (b *simBackend) gone(p int) bool {
	removed.Lock()
	defer removed.Unlock()
	return removed.packs[p]
}

// Stat answers for a synthetic data pack with its computed size.
func (b *simBackend) Stat(ctx context.Context, h storage.Handle) (storage.FileInfo, error) {
	if p, ok := b.synthetic(h); ok {
		if b.gone(p) {
			return storage.FileInfo{}, fmt.Errorf("stat pack %.8s: %w", h.Name, storage.ErrNotExist)
		}
		return storage.FileInfo{Name: h.Name, Size: b.lay.packSize(p), ModTime: b.modTime}, nil
	}
	return b.Backend.Stat(ctx, h)
}

// Load serves the header and the trailer of a synthetic data pack and
// refuses its blobs (see errSynthetic).
func (b *simBackend) Load(ctx context.Context, h storage.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	p, ok := b.synthetic(h)
	if !ok {
		return b.Backend.Load(ctx, h, length, offset, fn)
	}
	if b.gone(p) {
		return fmt.Errorf("load pack %.8s: %w", h.Name, storage.ErrNotExist)
	}
	size := b.lay.packSize(p)
	header := format.NewHeader(format.TypePack, byte(pack.DataBlob)).Bytes()
	var tail []byte
	if b.key != nil {
		tail = pack.AppendTrailer(nil, b.key, header, b.lay.packEntries(p, nil))
	}
	end := offset + int64(length)
	if length == 0 {
		end = size
	}
	switch {
	case end <= int64(len(header)):
		return fn(bytes.NewReader(header[offset:end]))
	case tail != nil && end == size && offset >= int64(len(header)):
		// A read of the pack's end (ReadTrailer reads the last 64 KiB):
		// the blobs' bytes before the trailer read as zeros, which only
		// a read of a blob would look at, and such reads end before the
		// trailer.
		b := make([]byte, end-offset)
		t := size - int64(len(tail))
		if offset >= t {
			copy(b, tail[offset-t:])
		} else {
			copy(b[t-offset:], tail)
		}
		return fn(bytes.NewReader(b))
	}
	return fmt.Errorf("load pack %.8s at %d+%d: %w", h.Name, offset, length, errSynthetic)
}

// Remove forgets a synthetic data pack.
func (b *simBackend) Remove(ctx context.Context, h storage.Handle) error {
	p, ok := b.synthetic(h)
	if !ok {
		return b.Backend.Remove(ctx, h)
	}
	removed.Lock()
	defer removed.Unlock()
	if removed.packs[p] {
		return fmt.Errorf("remove pack %.8s: %w", h.Name, storage.ErrNotExist)
	}
	if removed.packs == nil {
		removed.packs = map[int]bool{}
	}
	removed.packs[p] = true
	return nil
}
