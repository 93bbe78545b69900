package app

import (
	"context"
	"path"
	"slices"

	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
)

// The marks of a change between two snapshots.
const (
	DiffAdded    = "+"
	DiffRemoved  = "-"
	DiffModified = "M" // contents, link target, mode or owner
	DiffType     = "T" // a file became a directory, say
)

// DiffRequest compares two snapshots.
type DiffRequest struct {
	Repo Repo
	// From and To name the snapshots ("latest", IDs or prefixes).
	From, To string
	// Change, when set, is called for each change, in path order, with
	// its mark (DiffAdded, …) and path. Everything under an added or
	// removed directory is added or removed too.
	Change func(mark, path string)
}

// DiffResult counts the changes (a change of type is in none of them).
type DiffResult struct {
	Added, Removed, Changed int
}

// Diff compares the trees of two snapshots.
func (a *App) Diff(ctx context.Context, req DiffRequest) (*DiffResult, error) {
	r, err := a.OpenIndexed(ctx, req.Repo)
	if err != nil {
		return nil, err
	}
	all, _, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return nil, err
	}
	s1, err := snapshot.Find(all, req.From, snapshot.Filter{})
	if err != nil {
		return nil, err
	}
	s2, err := snapshot.Find(all, req.To, snapshot.Filter{})
	if err != nil {
		return nil, err
	}
	res := &DiffResult{}
	emit := func(mark, p string) {
		switch mark {
		case DiffAdded:
			res.Added++
		case DiffRemoved:
			res.Removed++
		case DiffModified:
			res.Changed++
		}
		if req.Change != nil {
			req.Change(mark, p)
		}
	}
	if err := diffTrees(ctx, r, &s1.Tree, &s2.Tree, "/", emit); err != nil {
		return nil, err
	}
	return res, nil
}

// diffTrees emits the changes from tree a to tree b (nil: empty) under
// the path p.
func diffTrees(ctx context.Context, r *repository.Repository, a, b *tree.ID, p string, emit func(string, string)) error {
	if a != nil && b != nil && *a == *b {
		return nil
	}
	ta, err := loadTreeOrEmpty(ctx, r, a)
	if err != nil {
		return err
	}
	tb, err := loadTreeOrEmpty(ctx, r, b)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(ta.Nodes) || j < len(tb.Nodes) {
		var na, nb *tree.Node
		switch {
		case i >= len(ta.Nodes):
			nb = tb.Nodes[j]
			j++
		case j >= len(tb.Nodes):
			na = ta.Nodes[i]
			i++
		case ta.Nodes[i].Name < tb.Nodes[j].Name:
			na = ta.Nodes[i]
			i++
		case ta.Nodes[i].Name > tb.Nodes[j].Name:
			nb = tb.Nodes[j]
			j++
		default:
			na, nb = ta.Nodes[i], tb.Nodes[j]
			i++
			j++
		}
		if err := diffNodes(ctx, r, na, nb, p, emit); err != nil {
			return err
		}
	}
	return nil
}

// diffNodes emits the changes from node na to node nb (either nil: not
// there), both named the same under p.
func diffNodes(ctx context.Context, r *repository.Repository, na, nb *tree.Node, p string, emit func(string, string)) error {
	switch {
	case na == nil:
		np := path.Join(p, string(nb.Name))
		emit(DiffAdded, np)
		if nb.Type == tree.TypeDir {
			return diffTrees(ctx, r, nil, nb.Subtree, np, emit)
		}
	case nb == nil:
		np := path.Join(p, string(na.Name))
		emit(DiffRemoved, np)
		if na.Type == tree.TypeDir {
			return diffTrees(ctx, r, na.Subtree, nil, np, emit)
		}
	default:
		np := path.Join(p, string(na.Name))
		if na.Type != nb.Type {
			emit(DiffType, np)
			return nil
		}
		if na.Type == tree.TypeDir {
			return diffTrees(ctx, r, na.Subtree, nb.Subtree, np, emit)
		}
		if !slices.Equal(na.Content, nb.Content) || na.LinkTarget != nb.LinkTarget || na.Mode != nb.Mode || na.UID != nb.UID || na.GID != nb.GID {
			emit(DiffModified, np)
		}
	}
	return nil
}

// loadTreeOrEmpty loads the tree id, or is an empty one for nil.
func loadTreeOrEmpty(ctx context.Context, r *repository.Repository, id *tree.ID) (*tree.Tree, error) {
	if id == nil {
		return &tree.Tree{}, nil
	}
	return walker.LoadTree(ctx, r, *id)
}
