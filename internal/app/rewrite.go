package app

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
	"github.com/bunkerbackup/bunker/internal/exclude"
)

// RewriteTag is the tag every rewritten snapshot carries.
const RewriteTag = "rewrite"

// RewriteRequest drops paths from snapshots (restic's rewrite): files
// backed up by mistake.
type RewriteRequest struct {
	Repo Repo
	// Snapshots names the snapshots to rewrite ("latest", IDs or
	// prefixes, resolved under Filter); when empty, every snapshot
	// Filter selects.
	Snapshots []string
	Filter    snapshot.Filter
	// Exclude says what to drop, with backup's patterns and pattern
	// files (markers are not looked at: a snapshot has no files to
	// read them from). Patterns match the snapshot's absolute paths.
	Exclude exclude.Options
	// Forget removes each original once its rewrite is committed; an
	// original the store keeps (Object Lock, append-only access) is
	// warned about and kept.
	Forget bool
	// DryRun decides and saves nothing.
	DryRun bool
	// Rewritten, when set, is called for each snapshot that loses
	// paths, once it is committed (at once on a dry run).
	Rewritten func(RewrittenSnapshot)
}

// RewrittenSnapshot is one snapshot that lost paths.
type RewrittenSnapshot struct {
	ReplacedSnapshot // New is nil on a dry run; Kept only with Forget
	// Removed are the paths dropped, in tree order (a directory's
	// contents are not listed).
	Removed []string
	// Forgotten reports that the original was removed.
	Forgotten bool
}

// RewriteResult is what a rewrite did.
type RewriteResult struct {
	// Examined counts the selected snapshots; Rewritten those that lost
	// paths (the others are left alone).
	Examined  int
	Rewritten []RewrittenSnapshot
	// Kept are the originals Forget could not remove.
	Kept []KeptOriginal
}

// Rewrite saves each selected snapshot anew without the paths
// req.Exclude matches: its tree is rewritten, and the new snapshot keeps
// the original's time, host and paths, records it (Original), carries
// RewriteTag, and is committed through the write session. Snapshots
// where nothing matches are left alone. The data of the dropped files
// stays in the repository until a prune once no snapshot references it
// (with Forget, or after forgetting the originals). On error the result
// holds what was done.
func (a *App) Rewrite(ctx context.Context, req RewriteRequest) (*RewriteResult, error) {
	if len(req.Exclude.Patterns)+len(req.Exclude.IPatterns)+len(req.Exclude.PatternFiles)+len(req.Exclude.IPatternFiles) == 0 {
		return nil, errors.New("nothing to do: give --exclude or --exclude-file")
	}
	m, err := exclude.New(exclude.Options{Patterns: req.Exclude.Patterns, IPatterns: req.Exclude.IPatterns,
		PatternFiles: req.Exclude.PatternFiles, IPatternFiles: req.Exclude.IPatternFiles})
	if err != nil {
		return nil, err
	}
	r, list, err := a.openChosen(ctx, req.Repo, req.Filter, req.Snapshots)
	if err != nil {
		return nil, err
	}
	res := &RewriteResult{Examined: len(list)}
	var sess *repository.Session
	if req.DryRun {
		if err := r.LoadIndex(ctx, false); err != nil {
			return nil, fmt.Errorf("load index: %w", err)
		}
	} else {
		if sess, _, err = r.BeginWrite(ctx, "rewrite"); err != nil {
			return nil, err
		}
		defer a.endSession(sess)
	}
	w := &pruner{ctx: ctx, r: r, m: m, dryRun: req.DryRun, memo: map[prunerKey]prunedTree{}}
	for _, sn := range list {
		rw, err := a.rewriteOne(ctx, r, sess, w, sn, req)
		if err != nil {
			return res, fmt.Errorf("rewrite snapshot %s: %w", sn.ShortID(), err)
		}
		if rw == nil {
			continue
		}
		res.Rewritten = append(res.Rewritten, *rw)
		if rw.Kept != nil {
			res.Kept = append(res.Kept, *rw.Kept)
		}
		if req.Rewritten != nil {
			req.Rewritten(*rw)
		}
	}
	return res, nil
}

// rewriteOne rewrites sn; nil when nothing in it is excluded.
func (a *App) rewriteOne(ctx context.Context, r *repository.Repository, sess *repository.Session, w *pruner, sn *snapshot.Snapshot, req RewriteRequest) (*RewrittenSnapshot, error) {
	pt, err := w.tree(sn.Tree, "/")
	if err != nil {
		return nil, err
	}
	if pt.id == sn.Tree {
		return nil, nil
	}
	rw := &RewrittenSnapshot{ReplacedSnapshot: ReplacedSnapshot{Old: sn}, Removed: pt.removed}
	if req.DryRun {
		return rw, nil
	}
	nsn := replacement(sn)
	nsn.Tree = pt.id
	if !slices.Contains(nsn.Tags, RewriteTag) {
		nsn.Tags = append(nsn.Tags, RewriteTag)
	}
	nsn.Excludes = append(slices.Clone(sn.Excludes), slices.Concat(req.Exclude.Patterns, req.Exclude.IPatterns)...)
	if sn.Summary != nil {
		s := *sn.Summary
		s.Files, s.Dirs, s.TotalBytes = max(s.Files-pt.files, 0), max(s.Dirs-pt.dirs, 0), max(s.TotalBytes-pt.bytes, 0)
		nsn.Summary = &s
	}
	if !req.Forget {
		if _, err := sess.CommitAndContinue(ctx, nsn); err != nil {
			return nil, err
		}
		rw.New = nsn
		return rw, nil
	}
	rs, err := a.replace(ctx, r, sess, sn, nsn)
	if err != nil {
		return nil, err
	}
	rw.ReplacedSnapshot = rs
	rw.Forgotten = rs.Kept == nil
	return rw, nil
}

// pruner rewrites trees without the paths a matcher excludes. Results
// are memoized by tree and path (what is excluded depends on the path),
// so the trees snapshots share are read once.
type pruner struct {
	ctx    context.Context
	r      *repository.Repository
	m      *exclude.Matcher
	dryRun bool
	memo   map[prunerKey]prunedTree
}

type prunerKey struct {
	id   tree.ID
	path string
}

// prunedTree is a tree without its excluded paths: its ID (the same when
// nothing was excluded), the paths removed, and what they held (files,
// directories, bytes of file content).
type prunedTree struct {
	id                 tree.ID
	removed            []string
	files, dirs, bytes int64
}

// tree returns tree id at directory p without its excluded paths.
func (w *pruner) tree(id tree.ID, p string) (prunedTree, error) {
	k := prunerKey{id, p}
	if pt, ok := w.memo[k]; ok {
		return pt, nil
	}
	t, chunks, err := walker.LoadTreeChunks(w.ctx, w.r, id)
	if err != nil {
		return prunedTree{}, err
	}
	out := prunedTree{id: id}
	var nt tree.Tree
	for _, n := range t.Nodes {
		np := path.Join(p, string(n.Name))
		isDir := n.Type == tree.TypeDir
		if w.m.Excluded(np, isDir) {
			if err := w.count(&out, n); err != nil {
				return prunedTree{}, fmt.Errorf("%s: %w", np, err)
			}
			out.removed = append(out.removed, np)
			continue
		}
		if isDir && n.Subtree != nil {
			sub, err := w.tree(*n.Subtree, np)
			if err != nil {
				return prunedTree{}, err
			}
			if sub.id != *n.Subtree {
				nn := *n
				nn.Subtree = &sub.id
				n = &nn
				out.removed = append(out.removed, sub.removed...)
				out.files, out.dirs, out.bytes = out.files+sub.files, out.dirs+sub.dirs, out.bytes+sub.bytes
			}
		}
		nt.Nodes = append(nt.Nodes, n)
	}
	if len(out.removed) > 0 {
		// The files kept in a rewritten directory: the snapshot relies
		// on their data.
		for _, n := range nt.Nodes {
			for _, c := range n.Content {
				w.r.NoteReuse(c, pack.DataBlob)
			}
		}
		if out.id, err = w.save(&nt); err != nil {
			return prunedTree{}, err
		}
	} else {
		// Kept as it is: the rewritten snapshot relies on it.
		for _, c := range append(chunks, id) {
			w.r.NoteReuse(c, pack.TreeBlob)
		}
	}
	w.memo[k] = out
	return out, nil
}

// count adds what the excluded node n holds to pt.
func (w *pruner) count(pt *prunedTree, n *tree.Node) error {
	add := func(n *tree.Node) {
		switch n.Type {
		case tree.TypeDir:
			pt.dirs++
		case tree.TypeFile:
			pt.files++
			pt.bytes += int64(n.Size)
		}
	}
	add(n)
	if n.Type != tree.TypeDir || n.Subtree == nil {
		return nil
	}
	return walker.Walk(w.ctx, w.r, *n.Subtree, "", func(_ string, n *tree.Node) error {
		add(n)
		return nil
	})
}

// save stores t (on a dry run only computes its ID).
func (w *pruner) save(t *tree.Tree) (tree.ID, error) {
	return tree.Save(t, func(b []byte) (tree.ID, error) {
		if w.dryRun {
			return w.r.Hash(b), nil
		}
		id, _, err := w.r.SaveBlob(w.ctx, pack.TreeBlob, b)
		return id, err
	})
}
