package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/spf13/cobra"
)

func (a *App) catCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "cat config|snapshot ID|index ID|pack ID|blob ID|tree ID|keys",
		Short:             "Print repository objects as JSON (for debugging)",
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: a.completeCat,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := a.openRepo(ctx)
			if err != nil {
				return err
			}
			kind := args[0]
			switch kind {
			case "config":
				cfg := r.Config()
				cfg.IDKey, cfg.Chunker.Seed = nil, nil // secrets stay inside
				return a.emitJSON(cfg)
			case "keys":
				keys, err := r.Keys(ctx)
				if err != nil {
					return err
				}
				return a.emitJSON(keys)
			case "snapshot", "index", "pack", "blob", "tree":
			default:
				return fmt.Errorf("unknown object kind %q", kind)
			}
			if len(args) < 2 {
				return fmt.Errorf("cat %s needs an ID", kind)
			}
			if kind == "snapshot" {
				sn, err := a.findSnapshot(ctx, r, args[1], snapshot.Filter{})
				if err != nil {
					return err
				}
				return a.emitJSON(snapshotJSON{sn, sn.ID.String(), sn.ShortID()})
			}
			id, err := format.ParseID(args[1])
			if err != nil {
				return err
			}
			return a.catObject(ctx, r, kind, id)
		},
	}
}

// emitJSON prints v as indented JSON.
func (a *App) emitJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintln(a.Stdout, string(b))
	return nil
}

// catObject prints an index file or a pack's trailer as JSON, or a blob's
// plaintext.
func (a *App) catObject(ctx context.Context, r *repository.Repository, kind string, id format.ID) error {
	switch kind {
	case "index":
		b, err := storage.LoadAll(ctx, r.Backend(), storage.Handle{Type: storage.IndexFile, Name: pack.Name(id)})
		if err != nil {
			return err
		}
		f, err := index.DecodeFile(r.Key(), b)
		if err != nil {
			return err
		}
		return a.emitJSON(indexJSON(f))
	case "pack":
		fi, err := r.Backend().Stat(ctx, storage.Handle{Type: storage.PackFile, Name: pack.Name(id)})
		if err != nil {
			return err
		}
		entries, t, err := r.ReadTrailer(ctx, id, fi.Size)
		if err != nil {
			return err
		}
		return a.emitJSON(packJSON(id, fi.Size, t, entries))
	}
	if err := r.LoadIndex(ctx, false); err != nil {
		return err
	}
	t := pack.DataBlob
	if kind == "tree" {
		t = pack.TreeBlob
	}
	b, err := r.LoadBlob(ctx, t, id, nil)
	if err != nil {
		return err
	}
	_, err = a.Stdout.Write(b)
	return err
}

func packJSON(id format.ID, size int64, t pack.BlobType, entries []pack.Entry) any {
	type ej struct {
		Type      string `json:"type"`
		ID        string `json:"id"`
		Offset    uint32 `json:"offset"`
		Length    uint32 `json:"length"`
		RawLength uint32 `json:"raw_length"`
	}
	out := struct {
		ID       string `json:"id"`
		Size     int64  `json:"size"`
		BlobType string `json:"blob_type"`
		Blobs    []ej   `json:"blobs"`
	}{ID: id.String(), Size: size, BlobType: t.String()}
	for _, e := range entries {
		out.Blobs = append(out.Blobs, ej{e.Type.String(), e.ID.String(), e.Offset, e.Length, e.RawLength})
	}
	return out
}

func indexJSON(f *index.File) any {
	type ej struct {
		Pack      string `json:"pack"`
		Type      string `json:"type"`
		ID        string `json:"id"`
		Offset    uint32 `json:"offset"`
		Length    uint32 `json:"length"`
		RawLength uint32 `json:"raw_length"`
	}
	out := struct {
		Packs      []string `json:"packs"`
		Supersedes []string `json:"supersedes"`
		Blobs      []ej     `json:"blobs"`
	}{Packs: []string{}, Supersedes: []string{}, Blobs: []ej{}}
	for _, p := range f.Packs {
		out.Packs = append(out.Packs, p.String())
	}
	for _, p := range f.Supersedes {
		out.Supersedes = append(out.Supersedes, p.String())
	}
	for _, e := range f.Entries {
		out.Blobs = append(out.Blobs, ej{f.Packs[e.Pack].String(), e.Type.String(), e.ID.String(), e.Offset, e.Length, e.RawLength})
	}
	return out
}
