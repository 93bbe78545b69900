package app

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
)

// CopyRequest is a copy of snapshots from one repository into another.
type CopyRequest struct {
	// From is the repository the snapshots are read from; To the one
	// they are copied into.
	From, To Repo
	// Filter selects the snapshots of From to copy (all when empty).
	Filter snapshot.Filter
	// Snapshots, when given, names the snapshots to copy ("latest", IDs
	// or prefixes, resolved under Filter) instead.
	Snapshots []string
	// Copied, when set, is called after each snapshot is committed to
	// To, with the source snapshot and its copy.
	Copied func(from, to *snapshot.Snapshot)
}

// CopyResult is what a copy did.
type CopyResult struct {
	// Copied and Skipped count the snapshots copied and those already
	// in the target (a copy of them, or they themselves).
	Copied, Skipped int
	// BlobsAdded, BytesAdded and BytesStored are what the target gained:
	// new blobs, their plain size and their stored (compressed,
	// encrypted) size.
	BlobsAdded              int
	BytesAdded, BytesStored int64
	Duration                time.Duration
}

// Copy copies snapshots from req.From into req.To. Only blobs the target
// lacks are transferred; snapshots already copied are skipped (noted as
// Info). When both repositories share their ID key, blobs keep their IDs
// and are checked against the target's index without being read;
// otherwise every blob is read and hashed again with the target's key.
// Each snapshot is committed as soon as it is complete, so a copy that
// fails keeps the snapshots it copied before; the result counts them.
func (a *App) Copy(ctx context.Context, req CopyRequest) (*CopyResult, error) {
	res := &CopyResult{}
	start := time.Now()
	src, err := a.Open(ctx, req.From)
	if err != nil {
		return res, fmt.Errorf("source: %w", err)
	}
	if err := src.LoadIndex(ctx, false); err != nil {
		return res, err
	}
	dst, err := a.Open(ctx, req.To)
	if err != nil {
		return res, fmt.Errorf("target: %w", err)
	}
	sess, _, err := dst.BeginWrite(ctx, "copy")
	if err != nil {
		return res, err
	}
	defer sess.End(context.Background())
	srcAll, _, err := snapshot.LoadAll(ctx, src)
	if err != nil {
		return res, err
	}
	dstAll, _, err := snapshot.LoadAll(ctx, dst)
	if err != nil {
		return res, err
	}
	have := map[string]bool{}
	for _, sn := range dstAll {
		if sn.Original != nil {
			have[sn.Original.String()] = true
		}
		have[sn.ID.String()] = true
	}
	list := req.Filter.Apply(srcAll)
	if len(req.Snapshots) > 0 {
		list = nil
		for _, ref := range req.Snapshots {
			sn, err := snapshot.Find(srcAll, ref, req.Filter)
			if err != nil {
				return res, err
			}
			list = append(list, sn)
		}
	}
	c := &copier{ctx: ctx, src: src, dst: dst, same: bytes.Equal(src.Config().IDKey, dst.Config().IDKey), memo: map[tree.ID]tree.ID{}}
	stats := func() {
		ws := dst.Stats()
		res.BlobsAdded, res.BytesAdded, res.BytesStored = ws.Blobs, ws.BlobBytes, ws.StoredBytes
		res.Duration = time.Since(start)
	}
	defer stats()
	var done atomic.Int64
	stop := a.ticker(func(final bool) {
		a.progress(Progress{Op: "copy", Elapsed: time.Since(start), Files: done.Load(), FilesTotal: int64(len(list)),
			BytesAdded: dst.Stats().BlobBytes, Final: final})
	})
	defer stop()
	for _, sn := range list {
		done.Add(1)
		orig := sn.ID
		if sn.Original != nil {
			orig = *sn.Original
		}
		if have[orig.String()] || have[sn.ID.String()] {
			a.infof("snapshot %s already in the target", sn.ShortID())
			res.Skipped++
			continue
		}
		root, err := c.tree(sn.Tree)
		if err != nil {
			return res, fmt.Errorf("copy snapshot %s: %w", sn.ShortID(), err)
		}
		nsn := *sn
		nsn.Tree = root
		nsn.Original = &orig
		if _, err := sess.CommitAndContinue(ctx, &nsn); err != nil {
			return res, fmt.Errorf("copy snapshot %s: %w", sn.ShortID(), err)
		}
		res.Copied++
		if req.Copied != nil {
			req.Copied(sn, &nsn)
		}
	}
	return res, nil
}

// copier copies trees and their data from src to dst, each blob once.
type copier struct {
	ctx      context.Context
	src, dst *repository.Repository
	same     bool                // the repositories share their ID key
	memo     map[tree.ID]tree.ID // source ID -> target ID (data and trees)
	buf      []byte
}

func (c *copier) blob(id tree.ID) (tree.ID, error) {
	if nid, ok := c.memo[id]; ok {
		return nid, nil
	}
	if c.same && c.dst.Index().Has(id, pack.DataBlob) {
		c.dst.NoteReuse(id, pack.DataBlob)
		c.memo[id] = id
		return id, nil
	}
	var err error
	c.buf, err = c.src.LoadBlob(c.ctx, pack.DataBlob, id, c.buf)
	if err != nil {
		return id, err
	}
	nid, _, err := c.dst.SaveBlob(c.ctx, pack.DataBlob, c.buf)
	if err != nil {
		return id, err
	}
	c.memo[id] = nid
	return nid, nil
}

func (c *copier) tree(id tree.ID) (tree.ID, error) {
	if nid, ok := c.memo[id]; ok {
		return nid, nil
	}
	if c.same && c.dst.Index().Has(id, pack.TreeBlob) {
		// The whole subtree is there already (trees are saved after their
		// children), but note reuse for the commit check.
		c.dst.NoteReuse(id, pack.TreeBlob)
		c.memo[id] = id
		return id, nil
	}
	t, err := walker.LoadTree(c.ctx, c.src, id)
	if err != nil {
		return id, err
	}
	for _, n := range t.Nodes {
		for i, b := range n.Content {
			if n.Content[i], err = c.blob(b); err != nil {
				return id, err
			}
		}
		if n.Subtree != nil {
			sub, err := c.tree(*n.Subtree)
			if err != nil {
				return id, err
			}
			n.Subtree = &sub
		}
	}
	nid, err := tree.Save(t, func(b []byte) (tree.ID, error) {
		id, _, err := c.dst.SaveBlob(c.ctx, pack.TreeBlob, b)
		return id, err
	})
	if err != nil {
		return id, err
	}
	c.memo[id] = nid
	return nid, nil
}
