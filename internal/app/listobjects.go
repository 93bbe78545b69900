package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// ListObjectTypes are the names ListObjects takes (restic's list):
// object files of one kind, or "blobs" (the index's entries).
var ListObjectTypes = []string{"packs", "index", "snapshots", "keys", "sessions", "locks", "maint", "blobs"}

// ListObjectsRequest lists the objects of one kind in a repository.
type ListObjectsRequest struct {
	Repo Repo
	// Type is one of ListObjectTypes; "locks" is "sessions" (bunker
	// takes no locks; a running writer leaves a session marker).
	Type string
	// Object is called for each object file, in name order (not for
	// blobs).
	Object func(storage.FileInfo)
	// Blob is called for each blob the index lists, in ID order (for
	// "blobs"); a blob stored twice is listed once.
	Blob func(index.Location)
}

// ListObjectsResult counts what was listed.
type ListObjectsResult struct {
	// Type is the storage kind listed ("blobs" for blobs).
	Type  string
	Count int
}

// ListObjects lists the objects of req.Type: the names of the object
// files, or the blobs of the index.
func (a *App) ListObjects(ctx context.Context, req ListObjectsRequest) (*ListObjectsResult, error) {
	t, err := listObjectType(req.Type)
	if err != nil {
		return nil, err
	}
	r, err := a.Open(ctx, req.Repo)
	if err != nil {
		return nil, err
	}
	res := &ListObjectsResult{Type: string(t)}
	if t == "blobs" {
		if err := r.LoadIndex(ctx, false); err != nil {
			return nil, fmt.Errorf("load index: %w", err)
		}
		var last index.Location
		err := r.Index().Each(r.IndexSource(ctx), func(l index.Location) bool {
			if res.Count > 0 && l.Entry.ID == last.Entry.ID && l.Entry.Type == last.Entry.Type {
				return true
			}
			last = l
			res.Count++
			if req.Blob != nil {
				req.Blob(l)
			}
			return ctx.Err() == nil
		})
		if err != nil {
			return res, fmt.Errorf("list blobs: %w", err)
		}
		return res, ctx.Err()
	}
	infos, err := r.List(ctx, t)
	if err != nil {
		return nil, err
	}
	for _, fi := range infos {
		res.Count++
		if req.Object != nil {
			req.Object(fi)
		}
	}
	return res, nil
}

// listObjectType maps a name of ListObjectTypes to its storage kind.
func listObjectType(name string) (storage.FileType, error) {
	switch name {
	case "locks":
		return storage.SessionFile, nil
	case "blobs":
		return "blobs", nil
	case "config":
	default:
		if t := storage.FileType(name); t.Known() {
			return t, nil
		}
	}
	return "", fmt.Errorf("cannot list %q: want one of %s", name, strings.Join(ListObjectTypes, ", "))
}
