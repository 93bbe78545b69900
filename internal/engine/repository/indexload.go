package repository

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/bits-and-blooms/bitset"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/storage"
	"golang.org/x/sync/semaphore"
)

// fileMeta is what r keeps of a loaded index file: which files it
// supersedes and the numbers of the packs it names, so that later loads
// can tell which packs only superseded files name.
type fileMeta struct {
	supersedes []ID
	packs      []uint32
}

// LoadIndex reads every index file into the in-memory index and excludes
// the packs that maintenance plans tombstone and the packs that only
// superseded index files name.
// Damaged index files are skipped with a warning (their packs are found
// again by `repair index`), unless strict is set. Calling it again loads
// only index files that appeared since (RefreshIndex).
//
// The files are read, checked and decoded eight at a time and added one
// at a time as one batch (index.Batch): a loaded index of 100 million
// blobs peaks at its resident size plus a few files, not plus every
// decoded file.
func (r *Repository) LoadIndex(ctx context.Context, strict bool) error {
	damaged, err := r.loadIndexFiles(ctx, strict, true)
	if err != nil {
		return err
	}
	for name, err := range damaged {
		// An index file claiming a newer format than the config (which is
		// authenticated) declares was not written by a conforming writer:
		// writers write only the config's version. Like any damaged file
		// it must not stop a reader.
		r.log.Warn("skipping damaged index file", "index", shortName(name), "err", err)
	}
	plans, err := r.Plans(ctx)
	if err != nil {
		return err
	}
	for _, p := range plans {
		for _, pk := range p.Packs {
			r.idx.ExcludePack(pk)
		}
	}
	return nil
}

// RefreshIndex loads index files written since the last LoadIndex (by
// other writers). Plans written since are not applied: tombstones only
// bind writers from the start of their session. Damaged files are left
// out without a word (LoadIndex reports them).
func (r *Repository) RefreshIndex(ctx context.Context) error {
	_, err := r.loadIndexFiles(ctx, false, false)
	return err
}

// LoadIndexChecked loads every index file not loaded yet, as LoadIndex
// does without applying plans, and returns the damaged ones (by name)
// instead of warning about them: for check, which reports them.
func (r *Repository) LoadIndexChecked(ctx context.Context) (map[string]error, error) {
	return r.loadIndexFiles(ctx, false, true)
}

// loadIndexFiles adds the index files not loaded yet to r's index and
// returns the damaged ones (with strict, the first is an error); with
// shadow, it also excludes the packs that only superseded files name.
func (r *Repository) loadIndexFiles(ctx context.Context, strict, shadow bool) (map[string]error, error) {
	infos, err := r.List(ctx, storage.IndexFile)
	if err != nil {
		return nil, err
	}
	r.loadedMu.Lock()
	defer r.loadedMu.Unlock()
	if r.loaded == nil {
		r.loaded = map[ID]*fileMeta{}
	}
	listed := make(map[ID]bool, len(infos))
	var todo []storage.FileInfo
	var size int64
	for _, fi := range infos {
		id, err := format.ParseID(fi.Name)
		if err == nil {
			listed[id] = true
			if r.loaded[id] != nil {
				continue
			}
		}
		todo = append(todo, fi)
		size += fi.Size
	}
	if len(todo) == 0 {
		return nil, nil
	}
	damaged := map[string]error{}
	hinter, hint := storage.Find[storage.MetadataHinter](r.be)
	batch := r.idx.NewBatch(index.ExpectEntries(size))
	added := map[ID]*fileMeta{}
	var names []string
	err = r.streamIndexFiles(ctx, todo, func(name string, f *index.File, err error) error {
		if err != nil {
			if strict {
				return fmt.Errorf("index %s: %w", shortName(name), err)
			}
			damaged[name] = err
			return nil
		}
		id, _ := format.ParseID(name) // it loaded: its name is its hash
		added[id] = &fileMeta{supersedes: f.Supersedes, packs: batch.Add(f)}
		names = append(names, name)
		if hint {
			for _, e := range f.Entries {
				if e.Type == pack.TreeBlob {
					hinter.HintMetadata(storage.Handle{Type: storage.PackFile, Name: pack.Name(f.Packs[e.Pack])})
				}
			}
		}
		return nil
	})
	if err != nil {
		// Packs numbered by the batch stay known to the index, with no
		// entries: harmless, and named again by the next load.
		return nil, err
	}
	if shadow {
		r.excludeShadowed(batch, listed, added)
	}
	// A file removed by a compaction meanwhile is skipped (see Finish).
	if err := batch.Finish(r.filesAgain(ctx, names, true)); err != nil {
		return nil, err
	}
	for id, m := range added {
		r.loaded[id] = m
	}
	return damaged, nil
}

// excludeShadowed excludes the packs that only superseded files name, of
// the files just added. Every index file is loaded, superseded or not: a
// file's claim to supersede others comes from whoever wrote it (any
// writer holds the key), so it may hide nothing from readers. It only
// decides which copies writers may deduplicate against: packs that only
// superseded files name are excluded (compaction dropped them because
// prune deleted or is deleting them), and read as a last resort.
func (r *Repository) excludeShadowed(batch *index.Batch, listed map[ID]bool, added map[ID]*fileMeta) {
	meta := func(id ID) *fileMeta {
		if m := added[id]; m != nil {
			return m
		}
		return r.loaded[id]
	}
	superseded := map[ID]bool{}
	for id := range listed {
		if m := meta(id); m != nil {
			for _, s := range m.supersedes {
				superseded[s] = true
			}
		}
	}
	var shadowed []*fileMeta
	for id, m := range added {
		if superseded[id] {
			shadowed = append(shadowed, m)
		}
	}
	if len(shadowed) == 0 {
		return
	}
	// A bit per pack number: a map would take tens of bytes per pack.
	var named bitset.BitSet
	for id := range listed {
		if m := meta(id); m != nil && !superseded[id] {
			for _, n := range m.packs {
				named.Set(uint(n))
			}
		}
	}
	for _, m := range shadowed {
		for _, n := range m.packs {
			if !named.Test(uint(n)) {
				batch.Exclude(n)
			}
		}
	}
}

// filesAgain is a source that reads the named index files again, eight
// at a time, each checked against its name; a file that is gone is
// skipped when goneOK, else an error like any other.
func (r *Repository) filesAgain(ctx context.Context, names []string, goneOK bool) index.Source {
	return func(yield func(*index.File) error) error {
		return r.streamIndexFiles(ctx, infosNamed(names), func(name string, f *index.File, err error) error {
			if goneOK && errors.Is(err, storage.ErrNotExist) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("index %s: %w", shortName(name), err)
			}
			return yield(f)
		})
	}
}

// indexBytesInFlight bounds the index files (by their listed size) being
// loaded or waiting to be added at once.
const indexBytesInFlight = 8 << 20

func infosNamed(names []string) []storage.FileInfo {
	out := make([]storage.FileInfo, len(names))
	for i, n := range names {
		out[i].Name = n
	}
	return out
}

// streamIndexFiles reads, checks and decodes the index files eight at a
// time, and at most indexBytesInFlight of them (by their listed size), and
// calls fn with each (or its error) in turn, from one goroutine. An error
// fn returns stops the stream and is returned.
func (r *Repository) streamIndexFiles(ctx context.Context, infos []storage.FileInfo, fn func(name string, f *index.File, err error) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type loaded struct {
		name   string
		weight int64
		f      *index.File
		err    error
	}
	type named struct {
		name   string
		weight int64
	}
	// A file is read, decrypted and decoded whole, and waits so until fn
	// takes it: with eight files of 2.5 MB in flight (a backup of a
	// million files writes such), that was 45 MB above the index itself.
	room := semaphore.NewWeighted(indexBytesInFlight)
	names := make(chan named)
	out := make(chan loaded, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range names {
				f, err := r.loadIndexFile(ctx, n.name)
				select {
				case out <- loaded{n.name, n.weight, f, err}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		defer close(out)
		defer wg.Wait()
		defer close(names)
		for _, fi := range infos {
			// Unknown sizes (0) count as small files; a file larger than
			// the room goes alone.
			w := min(max(fi.Size, 64<<10), indexBytesInFlight)
			if room.Acquire(ctx, w) != nil {
				return
			}
			select {
			case names <- named{fi.Name, w}:
			case <-ctx.Done():
				return
			}
		}
	}()
	var ferr error
	for l := range out {
		switch {
		case ferr != nil:
		case l.err != nil && ctx.Err() != nil:
			// Stopped, not damaged.
			ferr = ctx.Err()
		default:
			if ferr = fn(l.name, l.f, l.err); ferr != nil {
				cancel()
			}
		}
		room.Release(l.weight)
	}
	if ferr != nil {
		return ferr
	}
	return ctx.Err()
}
