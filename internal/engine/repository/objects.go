package repository

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/storage"
)

func objectType(t storage.FileType) format.ObjectType {
	switch t {
	case storage.SnapshotFile:
		return format.TypeSnapshot
	case storage.SessionFile:
		return format.TypeSession
	case storage.MaintFile:
		return format.TypeMaint
	case storage.IndexFile:
		return format.TypeIndex
	}
	panic("no sealed object type for " + string(t))
}

// SealJSON encodes v as a sealed object of type t: header || sealed JSON,
// with the header as AAD.
func (r *Repository) SealJSON(t storage.FileType, v any) ([]byte, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	hdr := format.NewHeader(objectType(t), 0).Bytes()
	return r.key.Seal(hdr, js, hdr), nil
}

// OpenJSON decodes a sealed object of type t into v.
func (r *Repository) OpenJSON(t storage.FileType, b []byte, v any) error {
	if _, err := format.ParseHeader(b, objectType(t)); err != nil {
		return err
	}
	js, err := r.key.Open(nil, b[format.HeaderSize:], b[:format.HeaderSize])
	if err != nil {
		return err
	}
	if err := json.Unmarshal(js, v); err != nil {
		return fmt.Errorf("%w: %v", format.ErrCorrupt, err)
	}
	return nil
}

// SaveJSON stores v as a sealed object named by the hash of its bytes and
// returns that ID. Snapshots are stored this way.
func (r *Repository) SaveJSON(ctx context.Context, t storage.FileType, v any) (ID, error) {
	b, err := r.SealJSON(t, v)
	if err != nil {
		return ID{}, err
	}
	id := pack.Hash(b)
	if err := r.be.Save(ctx, storage.Handle{Type: t, Name: pack.Name(id)}, b, storage.SaveOptions{}); err != nil {
		return ID{}, fmt.Errorf("save %s %s: %w", t, id.Short(), err)
	}
	return id, nil
}

// SaveJSONNamed stores v as a sealed object under a chosen name.
func (r *Repository) SaveJSONNamed(ctx context.Context, t storage.FileType, name string, v any, opts storage.SaveOptions) error {
	b, err := r.SealJSON(t, v)
	if err != nil {
		return err
	}
	if err := r.be.Save(ctx, storage.Handle{Type: t, Name: name}, b, opts); err != nil {
		return fmt.Errorf("save %s/%s: %w", t, name, err)
	}
	return nil
}

// LoadJSON loads and decodes a sealed object. For content-addressed types
// (snapshots, index) the name is checked against the hash of the bytes.
func (r *Repository) LoadJSON(ctx context.Context, t storage.FileType, name string, v any) error {
	b, err := storage.LoadAll(ctx, r.be, storage.Handle{Type: t, Name: name})
	if err != nil {
		return fmt.Errorf("load %s/%s: %w", t, name, err)
	}
	if t == storage.SnapshotFile {
		if got := pack.Name(pack.Hash(b)); got != name {
			return fmt.Errorf("%w: %s/%s: content hash is %s", format.ErrCorrupt, t, name, got[:8])
		}
	}
	if err := r.OpenJSON(t, b, v); err != nil {
		return fmt.Errorf("%s/%s: %w", t, name, err)
	}
	return nil
}

// List returns the names of every object of a type.
func (r *Repository) List(ctx context.Context, t storage.FileType) ([]storage.FileInfo, error) {
	var out []storage.FileInfo
	err := r.be.List(ctx, t, func(fi storage.FileInfo) error {
		out = append(out, fi)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", t, err)
	}
	slices.SortFunc(out, func(a, b storage.FileInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// IndexOfEveryFile builds an index of every index file stored now,
// superseded or not, without keeping the files: they are read, checked
// and decoded eight at a time. The source it
// returns reads the same files again from storage (each checked against
// its name, so a file that changed or went makes it fail), for Each and
// EachIn; loaded names them. A file that cannot be read is left out: it
// is no evidence.
func (r *Repository) IndexOfEveryFile(ctx context.Context) (idx *index.Index, src index.Source, loaded []ID, err error) {
	infos, err := r.List(ctx, storage.IndexFile)
	if err != nil {
		return nil, nil, nil, err
	}
	var size int64
	for _, fi := range infos {
		size += fi.Size
	}
	idx = index.New()
	batch := idx.NewBatch(index.ExpectEntries(size))
	var names []string
	err = r.streamIndexFiles(ctx, infos, func(name string, f *index.File, err error) error {
		if err != nil {
			return nil // damaged or unreadable: not evidence
		}
		id, _ := format.ParseID(name) // it loaded: its name is its hash
		batch.Add(f)
		names = append(names, name)
		loaded = append(loaded, id)
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, nil, nil, err
	}
	src = r.filesAgain(ctx, names, false)
	if err := batch.Finish(src); err != nil {
		return nil, nil, nil, err
	}
	return idx, src, loaded, nil
}

// loadIndexFile reads, checks and decodes one index file.
func (r *Repository) loadIndexFile(ctx context.Context, name string) (*index.File, error) {
	id, perr := format.ParseID(name)
	b, err := storage.LoadAll(ctx, r.be, storage.Handle{Type: storage.IndexFile, Name: name})
	if err == nil && perr == nil && pack.Hash(b) != id {
		err = fmt.Errorf("%w: content hash does not match the name", format.ErrCorrupt)
	}
	if err == nil {
		err = perr
	}
	if err != nil {
		return nil, err
	}
	return index.DecodeFile(r.key, b)
}

// IndexSource is what r.Index().Each and PackContents read full blob IDs
// from (the in-memory index keeps a prefix of each): the index files
// LoadIndex and RefreshIndex loaded and the ones this repository saved,
// read again one at a time, the entries noted by RetainIndexEntries, and
// those of uploaded or adopted packs not yet in a saved file, as they are
// now (packs added to the index later are not covered). A loaded file that
// is gone was superseded by a compaction: the source then reads the index
// files stored now too, one of which names what the compaction kept.
func (r *Repository) IndexSource(ctx context.Context) index.Source {
	r.loadedMu.Lock()
	names := make(map[ID]bool, len(r.loaded))
	for id := range r.loaded {
		names[id] = true
	}
	retained := slices.Clone(r.retained)
	r.loadedMu.Unlock()
	r.w.mu.Lock()
	for _, id := range r.w.stats.UploadedIndexes {
		names[id] = true
	}
	// Flush replaces pending rather than truncating it, and uploads only
	// append: the captured slices stay as they are.
	pending := &index.File{
		Packs:   r.w.pending.Packs[:len(r.w.pending.Packs):len(r.w.pending.Packs)],
		Entries: r.w.pending.Entries[:len(r.w.pending.Entries):len(r.w.pending.Entries)],
	}
	r.w.mu.Unlock()
	ids := slices.SortedFunc(maps.Keys(names), compareIDs)
	return func(yield func(*index.File) error) error {
		gone := false
		for _, id := range ids {
			f, err := r.loadIndexFile(ctx, pack.Name(id))
			if errors.Is(err, storage.ErrNotExist) {
				gone = true
				continue
			}
			if err != nil {
				return fmt.Errorf("index %s: %w", id.Short(), err)
			}
			if err := yield(f); err != nil {
				return err
			}
		}
		if gone {
			infos, err := r.List(ctx, storage.IndexFile)
			if err != nil {
				return err
			}
			for _, fi := range infos {
				if id, err := format.ParseID(fi.Name); err != nil || names[id] {
					continue
				}
				f, err := r.loadIndexFile(ctx, fi.Name)
				if err != nil {
					// Damaged, or removed meanwhile: what the index holds
					// from it, if anything, is reported as unnamed.
					continue
				}
				if err := yield(f); err != nil {
					return err
				}
			}
		}
		for _, f := range retained {
			if err := yield(f); err != nil {
				return err
			}
		}
		if len(pending.Entries) == 0 {
			return nil
		}
		return yield(pending)
	}
}

// RetainIndexEntries keeps entries that r's index holds and that no index
// file will name any more, for IndexSource: a prune's compaction drops
// the entries of deleted packs and false entries before it removes the
// files it superseded, while r's index, loaded before, still holds them.
func (r *Repository) RetainIndexEntries(f *index.File) {
	if len(f.Entries) == 0 {
		return
	}
	r.loadedMu.Lock()
	r.retained = append(r.retained, f)
	r.loadedMu.Unlock()
}

func compareIDs(a, b ID) int { return bytes.Compare(a[:], b[:]) }

// shortName is the start of an object name for messages. Names come from
// the store, which may hold objects with short (invalid) names.
func shortName(name string) string {
	if len(name) > 8 {
		return name[:8]
	}
	return name
}
