package app

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
)

// FindRequest searches snapshots for files by name pattern.
type FindRequest struct {
	Repo Repo
	// Patterns are path.Match patterns, matched against a node's name
	// and against its whole path in the snapshot.
	Patterns []string
	// IgnoreCase matches case-insensitively.
	IgnoreCase bool
	// Filter selects the snapshots searched (all when empty); Snapshots,
	// when given, names them instead ("latest", IDs or prefixes,
	// resolved under Filter).
	Filter    snapshot.Filter
	Snapshots []string
	// Match, when set, is called for each node that matches, snapshot
	// by snapshot in path order.
	Match func(sn *snapshot.Snapshot, p string, n *tree.Node)
}

// FindResult counts the matches.
type FindResult struct {
	Matches int
}

// Find walks the snapshots req selects and reports the nodes whose name
// or path matches one of its patterns. A malformed pattern is an error.
func (a *App) Find(ctx context.Context, req FindRequest) (*FindResult, error) {
	r, list, err := a.openSelected(ctx, req.Repo, req.Filter, req.Snapshots)
	if err != nil {
		return nil, err
	}
	pats := req.Patterns
	if req.IgnoreCase {
		pats = nil
		for _, p := range req.Patterns {
			pats = append(pats, strings.ToLower(p))
		}
	}
	for _, p := range pats {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("bad pattern %q: %w", p, err)
		}
	}
	res := &FindResult{}
	for _, sn := range list {
		err := walker.Walk(ctx, r, sn.Tree, "/", func(p string, n *tree.Node) error {
			name := string(n.Name)
			if req.IgnoreCase {
				name = strings.ToLower(name)
			}
			for _, pat := range pats {
				m1, _ := path.Match(pat, name)
				m2, _ := path.Match(pat, p)
				if m1 || m2 {
					res.Matches++
					if req.Match != nil {
						req.Match(sn, p, n)
					}
					break
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return res, nil
}
