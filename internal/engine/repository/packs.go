package repository

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// ReadTrailer reads the blob list of a pack of the given size from its
// trailer, with one or two range reads.
func (r *Repository) ReadTrailer(ctx context.Context, id ID, size int64) ([]pack.Entry, pack.BlobType, error) {
	h := storage.Handle{Type: storage.PackFile, Name: pack.Name(id)}
	read := func(off int64, n int) ([]byte, error) {
		buf := make([]byte, n)
		err := r.be.Load(ctx, h, n, off, func(rd io.Reader) error {
			_, err := io.ReadFull(rd, buf)
			return err
		})
		return buf, err
	}
	if size < format.HeaderSize+4 {
		return nil, 0, fmt.Errorf("pack %s: %w: only %d bytes", id.Short(), format.ErrCorrupt, size)
	}
	header, err := read(0, format.HeaderSize)
	if err != nil {
		return nil, 0, fmt.Errorf("pack %s: read header: %w", id.Short(), err)
	}
	n := int64(pack.TailSize)
	if n > size-format.HeaderSize {
		n = size - format.HeaderSize
	}
	for try := 0; try < 2; try++ {
		tail, err := read(size-n, int(n))
		if err != nil {
			return nil, 0, fmt.Errorf("pack %s: read trailer: %w", id.Short(), err)
		}
		entries, t, need, err := pack.ParseTrailer(r.key, header, tail, size)
		if errors.Is(err, pack.ErrNeedMore) && try == 0 {
			n = int64(need)
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("pack %s: %w", id.Short(), err)
		}
		return entries, t, nil
	}
	return nil, 0, fmt.Errorf("pack %s: %w: trailer does not fit", id.Short(), format.ErrCorrupt)
}

// AdoptOrphans finds packs that are stored but named by no index file —
// left by a backup that was interrupted before its checkpoint — and makes
// their blobs usable again, so a repeated backup does not upload them a
// second time. Their entries go into the next index file this writer
// saves. Packs tombstoned by a maintenance plan are left alone. It also
// excludes index entries of packs that no longer exist. Every writer calls
// it after LoadIndex. It returns the number of packs and bytes adopted.
func (r *Repository) AdoptOrphans(ctx context.Context) (int, int64, error) {
	infos, err := r.List(ctx, storage.PackFile)
	if err != nil {
		return 0, 0, err
	}
	var count int
	var bytes int64
	stored := make(map[ID]bool, len(infos))
	for _, fi := range infos {
		if id, err := format.ParseID(fi.Name); err == nil {
			stored[id] = true
		}
	}
	// Index entries whose pack is gone (a writer that was counted dead
	// indexed a pack prune had deleted) must never be deduplicated against.
	for _, pk := range r.idx.Packs() {
		if !stored[pk] {
			r.idx.ExcludePack(pk)
		}
	}
	for _, fi := range infos {
		id, err := format.ParseID(fi.Name)
		if err != nil || r.idx.HasPack(id) {
			continue
		}
		entries, _, err := r.ReadTrailer(ctx, id, fi.Size)
		if err != nil {
			r.log.Warn("ignoring unreadable unindexed pack", "pack", id.Short(), "err", err)
			continue
		}
		r.idx.AddPack(id, entries)
		r.w.mu.Lock()
		r.w.stats.DependsOn[id] = struct{}{}
		n := uint32(len(r.w.pending.Packs))
		r.w.pending.Packs = append(r.w.pending.Packs, id)
		for _, e := range entries {
			r.w.pending.Entries = append(r.w.pending.Entries, index.FileEntry{Pack: n, Entry: e})
		}
		r.w.mu.Unlock()
		count++
		bytes += fi.Size
	}
	return count, bytes, nil
}
