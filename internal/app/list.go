package app

import (
	"context"
	"path"

	"github.com/bunkerbackup/bunker/internal/engine/restorer"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
)

// SnapshotsRequest lists snapshots.
type SnapshotsRequest struct {
	Repo Repo
	// Filter selects the snapshots (all when empty); Snapshots, when
	// given, names them instead ("latest", IDs or prefixes, resolved
	// under Filter).
	Filter    snapshot.Filter
	Snapshots []string
	// GroupBy groups them (snapshot.Group's fields: "host,paths", …;
	// "" is one group).
	GroupBy string
	// Latest keeps only the last Latest snapshots of each group (0:
	// all).
	Latest int
	// HideArchives leaves out the snapshots of log archives (WAL,
	// binlogs, oplog: KindContinuous), which can number thousands,
	// unless snapshots are named.
	HideArchives bool
}

// SnapshotGroup is one group of listed snapshots.
type SnapshotGroup struct {
	Key       snapshot.GroupKey
	Snapshots []*snapshot.Snapshot
}

// SnapshotsResult is the listed snapshots, oldest first.
type SnapshotsResult struct {
	// Snapshots are the listed snapshots, ungrouped (the last Latest).
	Snapshots []*snapshot.Snapshot
	// Groups are the listed snapshots by group (the last Latest of
	// each), in the order their first snapshot came.
	Groups []SnapshotGroup
	// Hidden counts the log archive snapshots left out.
	Hidden int
}

// Snapshots lists the snapshots req selects, grouped. Snapshots that
// cannot be read are warned about and left out.
func (a *App) Snapshots(ctx context.Context, req SnapshotsRequest) (*SnapshotsResult, error) {
	_, list, err := a.openChosen(ctx, req.Repo, req.Filter, req.Snapshots)
	if err != nil {
		return nil, err
	}
	res := &SnapshotsResult{}
	if req.HideArchives && len(req.Snapshots) == 0 {
		var keep []*snapshot.Snapshot
		for _, sn := range list {
			if sn.Kind == KindContinuous {
				res.Hidden++
				continue
			}
			keep = append(keep, sn)
		}
		list = keep
	}
	keys, groups, err := snapshot.Group(list, req.GroupBy)
	if err != nil {
		return nil, err
	}
	res.Snapshots = lastN(list, req.Latest)
	for _, k := range keys {
		res.Groups = append(res.Groups, SnapshotGroup{Key: k, Snapshots: lastN(groups[k.String()], req.Latest)})
	}
	return res, nil
}

// lastN is the last n of s (all for n <= 0).
func lastN(s []*snapshot.Snapshot, n int) []*snapshot.Snapshot {
	if n > 0 && len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// ListRequest lists the files of a snapshot.
type ListRequest struct {
	Repo Repo
	// Snapshot names the snapshot ("latest", an ID or a prefix),
	// resolved under Filter.
	Snapshot string
	Filter   snapshot.Filter
	// Path is where in the snapshot to list ("" or "/": everything).
	Path string
	// Recursive lists the subdirectories' contents too.
	Recursive bool
	// Found, when set, is called with the snapshot once it and Path
	// are found, before the first Node.
	Found func(sn *snapshot.Snapshot)
	// Node is called for each node listed, in path order: the one at
	// Path when it is not a directory, else what it holds.
	Node func(p string, n *tree.Node)
}

// ListResult is what was listed.
type ListResult struct {
	Snapshot *snapshot.Snapshot
	// Path is the path listed, cleaned ("/dir").
	Path string
}

// List lists the nodes at req.Path in a snapshot. Snapshots that cannot
// be read are warned about.
func (a *App) List(ctx context.Context, req ListRequest) (*ListResult, error) {
	r, err := a.OpenIndexed(ctx, req.Repo)
	if err != nil {
		return nil, err
	}
	all, err := a.LoadSnapshots(ctx, r)
	if err != nil {
		return nil, err
	}
	sn, err := snapshot.Find(all, req.Snapshot, req.Filter)
	if err != nil {
		return nil, err
	}
	start := path.Clean("/" + req.Path)
	node, err := restorer.FindNode(ctx, r, sn.Tree, start)
	if err != nil {
		return nil, err
	}
	res := &ListResult{Snapshot: sn, Path: start}
	if req.Found != nil {
		req.Found(sn)
	}
	emit := func(p string, n *tree.Node) {
		if req.Node != nil {
			req.Node(p, n)
		}
	}
	if node.Type != tree.TypeDir {
		emit(start, node)
		return res, nil
	}
	err = walker.Walk(ctx, r, *node.Subtree, start, func(p string, n *tree.Node) error {
		emit(p, n)
		if n.Type == tree.TypeDir && !req.Recursive {
			return walker.ErrSkipDir
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}
