package repair

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// Tag is the tag every repaired snapshot carries.
const Tag = "repaired"

// Options of Snapshots.
type Options struct {
	// Refs names the snapshots to repair (an ID, a prefix of one, or
	// "latest"). Empty means every snapshot; unreadable snapshot objects
	// are then removed as well.
	Refs []string
	// DryRun only reports what would change: no snapshot is saved or
	// removed.
	DryRun bool
	// KeepOriginal keeps each damaged original next to its repaired copy.
	KeepOriginal bool
	// ReadData reads every data blob and counts the ones that do not
	// read back as lost too. Without it only blobs missing from the index
	// count as lost.
	ReadData bool
	// Report receives every finding when it is made (may be nil).
	Report func(Event)
}

// EventKind says what an Event reports.
type EventKind int

const (
	// UnreadableSnapshot: the snapshot object Name cannot be read (Err);
	// it is removed unless DryRun.
	UnreadableSnapshot EventKind = iota + 1
	// DirEmptied: the directory at Path could not be read (Err); the
	// repaired snapshot holds it empty.
	DirEmptied
	// FileLost: some content of the file at Path is lost; the repaired
	// snapshot leaves the file out.
	FileLost
	// Repaired: Snapshot needed repair; New is its committed repaired
	// copy (nil in a dry run).
	Repaired
)

// Event is one finding of a repair. Paths are reported once per damaged
// tree, under the first snapshot found to hold it.
type Event struct {
	Kind     EventKind
	Snapshot *snapshot.Snapshot // the snapshot being repaired; nil for UnreadableSnapshot
	Name     string             // UnreadableSnapshot: the object's name
	Path     string             // DirEmptied, FileLost
	Err      error              // UnreadableSnapshot, DirEmptied
	New      *snapshot.Snapshot // Repaired, unless DryRun
}

// Result sums up a repair.
type Result struct {
	Examined   int // snapshots looked at
	Repaired   int // of those, snapshots that needed repair
	Unreadable int // unreadable snapshot objects found (and removed unless DryRun)
}

// Snapshots repairs snapshots of r, which must be opened but its index not
// loaded: every file with lost content is left out of the repaired
// snapshot, every unreadable directory becomes empty. A repaired snapshot
// is tagged Tag, records its original (Original), keeps the original's
// time, and is committed through the session's commit (flush, commit
// check, save) before the original is removed; a commit the check refuses
// (repository.ErrStaleSession: data the repaired snapshot keeps was
// deleted by a prune while the repair was stalled) saves nothing, removes
// nothing and ends the repair. On error the Result counts what was done.
func Snapshots(ctx context.Context, r *repository.Repository, opts Options) (*Result, error) {
	res := &Result{}
	report := func(ev Event) {
		if opts.Report != nil {
			opts.Report(ev)
		}
	}
	sess, _, err := r.BeginWrite(ctx, "repair snapshots")
	if err != nil {
		return res, err
	}
	defer func() {
		endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := sess.End(endCtx); err != nil {
			r.Logger().Warn("could not remove session marker (it expires by itself)", "session", sess.Name, "err", err)
		}
	}()
	all, unreadable, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return res, err
	}
	if len(opts.Refs) == 0 {
		// Snapshot objects that cannot be read (damaged, or planted by
		// someone who may write to the store) name no data anyone can
		// restore, and they keep prune from running: remove them.
		for _, name := range slices.Sorted(maps.Keys(unreadable)) {
			if !opts.DryRun {
				if err := r.Backend().Remove(ctx, storage.Handle{Type: storage.SnapshotFile, Name: name}); err != nil && !errors.Is(err, storage.ErrNotExist) {
					return res, fmt.Errorf("remove unreadable snapshot %s: %w", name, err)
				}
			}
			res.Unreadable++
			report(Event{Kind: UnreadableSnapshot, Name: name, Err: unreadable[name]})
		}
	}
	list := all
	if len(opts.Refs) > 0 {
		list = nil
		for _, ref := range opts.Refs {
			sn, err := snapshot.Find(all, ref, snapshot.Filter{})
			if err != nil {
				return res, err
			}
			list = append(list, sn)
		}
	}
	w := &rewriter{ctx: ctx, r: r, opts: opts, report: report, verified: map[tree.ID]bool{}, memo: map[tree.ID]tree.ID{}}
	for _, sn := range list {
		res.Examined++
		w.sn = sn
		changed := false
		root, err := w.rewrite(sn.Tree, "", &changed)
		if err != nil {
			return res, err
		}
		if !changed {
			continue
		}
		res.Repaired++
		if opts.DryRun {
			report(Event{Kind: Repaired, Snapshot: sn})
			continue
		}
		nsn := *sn
		nsn.Tree = root
		orig := sn.ID
		if sn.Original != nil {
			orig = *sn.Original
		}
		nsn.Original = &orig
		if !slices.Contains(nsn.Tags, Tag) {
			nsn.Tags = append(slices.Clone(nsn.Tags), Tag)
		}
		if _, err := sess.CommitAndContinue(ctx, &nsn); err != nil {
			return res, fmt.Errorf("repair snapshot %s: %w", sn.ID.Short(), err)
		}
		report(Event{Kind: Repaired, Snapshot: sn, New: &nsn})
		if !opts.KeepOriginal {
			if err := snapshot.Remove(ctx, r, sn.ID); err != nil {
				return res, fmt.Errorf("remove original snapshot %s: %w", sn.ID.Short(), err)
			}
		}
	}
	return res, nil
}

// rewriter rewrites the trees of damaged snapshots. Trees are memoized
// across snapshots, so a damaged tree shared by several is reported once.
type rewriter struct {
	ctx      context.Context
	r        *repository.Repository
	opts     Options
	report   func(Event)
	sn       *snapshot.Snapshot // being repaired
	verified map[tree.ID]bool   // ReadData: data blob -> read back
	vbuf     []byte
	memo     map[tree.ID]tree.ID // tree -> its repaired (or same) ID
}

// usable reports whether a blob can stay referenced, and records the
// reliance on its pack for the commit check.
func (w *rewriter) usable(id tree.ID, t pack.BlobType) bool {
	if !w.r.NoteReuse(id, t) {
		return false // not indexed (or only in a pack maintenance is deleting)
	}
	if !w.opts.ReadData {
		return true
	}
	if ok, seen := w.verified[id]; seen {
		return ok
	}
	var err error
	w.vbuf, err = w.r.LoadBlob(w.ctx, t, id, w.vbuf)
	w.verified[id] = err == nil
	return err == nil
}

// saveTree stores t (in a dry run only computes its ID).
func (w *rewriter) saveTree(t *tree.Tree) (tree.ID, error) {
	return tree.Save(t, func(b []byte) (tree.ID, error) {
		if w.opts.DryRun {
			return w.r.Hash(b), nil
		}
		id, _, err := w.r.SaveBlob(w.ctx, pack.TreeBlob, b)
		return id, err
	})
}

// rewrite returns the ID of the repaired tree id at path p, setting
// *changed if it differs from id.
func (w *rewriter) rewrite(id tree.ID, p string, changed *bool) (tree.ID, error) {
	if nid, ok := w.memo[id]; ok {
		if nid != id {
			*changed = true
		}
		return nid, nil
	}
	t, chunks, err := walker.LoadTreeChunks(w.ctx, w.r, id)
	if err != nil {
		*changed = true
		w.report(Event{Kind: DirEmptied, Snapshot: w.sn, Path: p, Err: err})
		nid, err := w.saveTree(&tree.Tree{})
		if err != nil {
			return id, err
		}
		w.memo[id] = nid
		return nid, nil
	}
	var out tree.Tree
	local := false
	for _, n := range t.Nodes {
		np := p + "/" + string(n.Name)
		switch {
		case n.Type == tree.TypeFile:
			ok := true
			for _, c := range n.Content {
				if !w.usable(c, pack.DataBlob) {
					ok = false
					break
				}
			}
			if !ok {
				local = true
				w.report(Event{Kind: FileLost, Snapshot: w.sn, Path: np})
				continue
			}
		case n.Type == tree.TypeDir && n.Subtree != nil:
			sub, err := w.rewrite(*n.Subtree, np, &local)
			if err != nil {
				return id, err
			}
			if sub != *n.Subtree {
				nn := *n
				nn.Subtree = &sub
				n = &nn
			}
		}
		out.Nodes = append(out.Nodes, n)
	}
	if !local {
		// Kept as it is: the repaired snapshot relies on its blobs. If one
		// is usable only from a pack maintenance is deleting, store the
		// tree afresh, as a backup would.
		kept := w.r.NoteReuse(id, pack.TreeBlob)
		for _, c := range chunks {
			kept = w.r.NoteReuse(c, pack.TreeBlob) && kept
		}
		if kept {
			w.memo[id] = id
			return id, nil
		}
	}
	nid, err := w.saveTree(&out)
	if err != nil {
		return id, err
	}
	if nid != id {
		*changed = true
	}
	w.memo[id] = nid
	return nid, nil
}
