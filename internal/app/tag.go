package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// TagRequest changes the tags of snapshots (restic's tag).
type TagRequest struct {
	Repo Repo
	// Snapshots names the snapshots to change ("latest", IDs or
	// prefixes, resolved under Filter); when empty, every snapshot
	// Filter selects is changed.
	Snapshots []string
	Filter    snapshot.Filter
	// Set, when SetGiven, replaces the tags (an empty Set removes them
	// all); Set excludes Add and Remove. Otherwise Add is added (no
	// duplicates), then Remove removed.
	Set         []string
	SetGiven    bool
	Add, Remove []string
	// Changed, when set, is called for each snapshot once its new
	// version is committed (and the original removed, or kept).
	Changed func(ReplacedSnapshot)
}

// ReplacedSnapshot is a snapshot saved anew in place of an original (tag,
// rewrite): New records Old's ID (or Old's own original) as Original.
type ReplacedSnapshot struct {
	Old, New *snapshot.Snapshot
	// Kept, when set, says why the original could not be removed: both
	// are in the repository now.
	Kept *KeptOriginal
}

// KeptOriginal is an original snapshot the store would not let go: under
// Object Lock until Until, or on an append-only store (Until zero).
type KeptOriginal struct {
	Snapshot *snapshot.Snapshot
	Until    time.Time
	Reason   string
}

// TagResult is what a tag did.
type TagResult struct {
	// Examined counts the selected snapshots; Changed those saved anew
	// (the others already had the asked tags and were left alone).
	Examined int
	Changed  []ReplacedSnapshot
	// Kept are the originals the store kept (also in Changed).
	Kept []KeptOriginal
}

// Validate refuses a request that changes nothing or mixes Set with Add
// or Remove.
func (req *TagRequest) Validate() error {
	if req.SetGiven && len(req.Add)+len(req.Remove) > 0 {
		return errors.New("--set replaces the tags: it cannot be combined with --add or --remove")
	}
	if !req.SetGiven && len(req.Add)+len(req.Remove) == 0 {
		return errors.New("nothing to do: give --add, --remove or --set")
	}
	for _, t := range slices.Concat(req.Set, req.Add, req.Remove) {
		if t == "" || strings.Contains(t, ",") {
			return fmt.Errorf("tag %q: a tag is not empty and holds no comma", t)
		}
	}
	return nil
}

// newTags is sn's tags as req changes them, and whether they changed.
func (req *TagRequest) newTags(old []string) ([]string, bool) {
	var tags []string
	if req.SetGiven {
		for _, t := range req.Set {
			if !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		}
	} else {
		tags = slices.Clone(old)
		for _, t := range req.Add {
			if !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		}
		tags = slices.DeleteFunc(tags, func(t string) bool { return slices.Contains(req.Remove, t) })
	}
	return tags, !slices.Equal(tags, old)
}

// Tag changes the tags of the snapshots req selects. As in restic, a
// changed snapshot is saved as a new snapshot object (a new ID) that
// records the original (Original), committed through a write session;
// then the original is removed. An original the store keeps (Object Lock,
// append-only access) is warned about and kept. Unchanged snapshots are
// left alone. On error the result holds what was done.
func (a *App) Tag(ctx context.Context, req TagRequest) (*TagResult, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	r, list, err := a.openChosen(ctx, req.Repo, req.Filter, req.Snapshots)
	if err != nil {
		return nil, err
	}
	res := &TagResult{Examined: len(list)}
	sess, _, err := r.BeginWrite(ctx, "tag")
	if err != nil {
		return res, err
	}
	defer a.endSession(sess)
	for _, sn := range list {
		tags, changed := req.newTags(sn.Tags)
		if !changed {
			continue
		}
		nsn := replacement(sn)
		nsn.Tags = tags
		r.NoteReuse(sn.Tree, pack.TreeBlob)
		rs, err := a.replace(ctx, r, sess, sn, nsn)
		if err != nil {
			return res, fmt.Errorf("tag snapshot %s: %w", sn.ShortID(), err)
		}
		res.Changed = append(res.Changed, rs)
		if rs.Kept != nil {
			res.Kept = append(res.Kept, *rs.Kept)
		}
		if req.Changed != nil {
			req.Changed(rs)
		}
	}
	return res, nil
}

// replacement is a copy of sn to save in its place, recording sn (or sn's
// own original) as its original.
func replacement(sn *snapshot.Snapshot) *snapshot.Snapshot {
	nsn := *sn
	nsn.Tags = slices.Clone(sn.Tags)
	orig := sn.ID
	if sn.Original != nil {
		orig = *sn.Original
	}
	nsn.Original = &orig
	nsn.ID = snapshot.ID{}
	return &nsn
}

// replace commits nsn in sess, then removes old (see removeReplaced).
func (a *App) replace(ctx context.Context, r *repository.Repository, sess *repository.Session, old, nsn *snapshot.Snapshot) (ReplacedSnapshot, error) {
	if _, err := sess.CommitAndContinue(ctx, nsn); err != nil {
		return ReplacedSnapshot{}, err
	}
	kept, err := a.removeReplaced(ctx, r, old)
	if err != nil {
		return ReplacedSnapshot{}, fmt.Errorf("new snapshot %s saved, but: %w", nsn.ShortID(), err)
	}
	return ReplacedSnapshot{Old: old, New: nsn, Kept: kept}, nil
}

// removeReplaced removes old, whose replacement is committed. A store
// that keeps it (Object Lock, append-only access) is no error: the
// original is warned about and returned as kept.
func (a *App) removeReplaced(ctx context.Context, r *repository.Repository, old *snapshot.Snapshot) (*KeptOriginal, error) {
	h := storage.Handle{Type: storage.SnapshotFile, Name: pack.Name(old.ID)}
	until, err := r.RetainedUntil(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", old.ShortID(), err)
	}
	var kept *KeptOriginal
	switch {
	case until.After(time.Now()):
		kept = &KeptOriginal{Snapshot: old, Until: until, Reason: "under Object Lock until " + until.Local().Format("2006-01-02 15:04")}
	case r.Backend().Features().AppendOnly:
		kept = &KeptOriginal{Snapshot: old, Reason: "the store is append-only for this credential"}
	default:
		err := snapshot.Remove(ctx, r, old.ID)
		if errors.Is(err, storage.ErrPermission) {
			kept = &KeptOriginal{Snapshot: old, Reason: "the store refused to delete it (append-only access or a locked object)"}
		} else if err != nil {
			return nil, fmt.Errorf("remove original snapshot %s: %w", old.ShortID(), err)
		}
	}
	if kept != nil {
		a.warnf("original snapshot %s is kept next to its replacement: %s", old.ShortID(), kept.Reason)
	}
	return kept, nil
}
