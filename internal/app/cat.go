package app

import (
	"context"
	"fmt"

	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// CatKinds are the objects Cat shows (the CLI's cat also shows
// snapshots, with its own JSON shape).
var CatKinds = []string{"config", "keys", "index", "pack", "blob", "tree"}

// CatRequest names one repository object to show, for debugging.
type CatRequest struct {
	// Opened is the repository, already open.
	Opened *repository.Repository
	// Kind is one of CatKinds; ID names an index, pack, blob or tree.
	Kind, ID string
}

// CatResult is what Cat found: Value (JSON-ready) for the config, keys,
// an index file or a pack's trailer; Plain, a blob's or tree's plaintext.
type CatResult struct {
	Value any
	Plain []byte
}

// Cat decodes the object req names: the config (without its secrets),
// the keys, an index file, a pack's trailer, or a blob's plaintext.
func (a *App) Cat(ctx context.Context, req CatRequest) (*CatResult, error) {
	r := req.Opened
	switch req.Kind {
	case "config":
		cfg := r.Config()
		cfg.IDKey, cfg.Chunker.Seed = nil, nil // secrets stay inside
		return &CatResult{Value: cfg}, nil
	case "keys":
		keys, err := r.Keys(ctx)
		return &CatResult{Value: keys}, err
	case "index", "pack", "blob", "tree":
	default:
		return nil, fmt.Errorf("unknown object kind %q", req.Kind)
	}
	if req.ID == "" {
		return nil, fmt.Errorf("cat %s needs an ID", req.Kind)
	}
	id, err := format.ParseID(req.ID)
	if err != nil {
		return nil, err
	}
	switch req.Kind {
	case "index":
		b, err := storage.LoadAll(ctx, r.Backend(), storage.Handle{Type: storage.IndexFile, Name: pack.Name(id)})
		if err != nil {
			return nil, err
		}
		f, err := index.DecodeFile(r.Key(), b)
		if err != nil {
			return nil, err
		}
		return &CatResult{Value: indexJSON(f)}, nil
	case "pack":
		fi, err := r.Backend().Stat(ctx, storage.Handle{Type: storage.PackFile, Name: pack.Name(id)})
		if err != nil {
			return nil, err
		}
		entries, t, err := r.ReadTrailer(ctx, id, fi.Size)
		if err != nil {
			return nil, err
		}
		return &CatResult{Value: packJSON(id, fi.Size, t, entries)}, nil
	}
	if err := r.LoadIndex(ctx, false); err != nil {
		return nil, err
	}
	t := pack.DataBlob
	if req.Kind == "tree" {
		t = pack.TreeBlob
	}
	b, err := r.LoadBlob(ctx, t, id, nil)
	return &CatResult{Plain: b}, err
}

// catBlob is one blob of an index file or pack trailer, as cat shows it.
type catBlob struct {
	Pack      string `json:"pack,omitempty"`
	Type      string `json:"type"`
	ID        string `json:"id"`
	Offset    uint32 `json:"offset"`
	Length    uint32 `json:"length"`
	RawLength uint32 `json:"raw_length"`
}

func packJSON(id format.ID, size int64, t pack.BlobType, entries []pack.Entry) any {
	out := struct {
		ID       string    `json:"id"`
		Size     int64     `json:"size"`
		BlobType string    `json:"blob_type"`
		Blobs    []catBlob `json:"blobs"`
	}{ID: id.String(), Size: size, BlobType: t.String()}
	for _, e := range entries {
		out.Blobs = append(out.Blobs, catBlob{"", e.Type.String(), e.ID.String(), e.Offset, e.Length, e.RawLength})
	}
	return out
}

func indexJSON(f *index.File) any {
	out := struct {
		Packs      []string  `json:"packs"`
		Supersedes []string  `json:"supersedes"`
		Blobs      []catBlob `json:"blobs"`
	}{Packs: []string{}, Supersedes: []string{}, Blobs: []catBlob{}}
	for _, p := range f.Packs {
		out.Packs = append(out.Packs, p.String())
	}
	for _, p := range f.Supersedes {
		out.Supersedes = append(out.Supersedes, p.String())
	}
	for _, e := range f.Entries {
		out.Blobs = append(out.Blobs, catBlob{f.Packs[e.Pack].String(), e.Type.String(), e.ID.String(), e.Offset, e.Length, e.RawLength})
	}
	return out
}
