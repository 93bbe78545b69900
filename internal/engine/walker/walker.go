// Package walker visits the nodes of a snapshot tree in path order.
package walker

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

// Loader loads blobs.
type Loader interface {
	LoadBlob(ctx context.Context, t pack.BlobType, id tree.ID, buf []byte) ([]byte, error)
}

// ErrSkipDir, returned by the visit function for a directory, skips its
// contents.
var ErrSkipDir = errors.New("skip this directory")

// LoadTree loads the listing of one directory, joining a split tree.
func LoadTree(ctx context.Context, l Loader, id tree.ID) (*tree.Tree, error) {
	t, _, err := LoadTreeChunks(ctx, l, id)
	return t, err
}

// LoadTreeChunks is LoadTree that also returns the IDs of the chunks of a
// split tree (nil when the tree is stored whole).
func LoadTreeChunks(ctx context.Context, l Loader, id tree.ID) (*tree.Tree, []tree.ID, error) {
	t, chunks, err := tree.Load(id, func(id tree.ID) ([]byte, error) {
		return l.LoadBlob(ctx, pack.TreeBlob, id, nil)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load tree %s: %w", id.Short(), err)
	}
	return t, chunks, nil
}

// Walk calls fn for every node below the tree root, depth first in name
// order, with the node's slash-separated path under prefix.
func Walk(ctx context.Context, l Loader, root tree.ID, prefix string, fn func(p string, n *tree.Node) error) error {
	t, err := LoadTree(ctx, l, root)
	if err != nil {
		return err
	}
	for _, n := range t.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := path.Join(prefix, string(n.Name))
		err := fn(p, n)
		if errors.Is(err, ErrSkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if n.Type == tree.TypeDir && n.Subtree != nil {
			if err := Walk(ctx, l, *n.Subtree, p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}
