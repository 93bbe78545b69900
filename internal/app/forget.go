package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/maintenance"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// KindContinuous marks the snapshots of a log archive (WAL, binlogs,
// oplog): a retention policy leaves them alone (a gap breaks every
// recovery through it); their retention follows the base backups.
const KindContinuous = "continuous"

// ForgetRequest is a removal of snapshots: the named ones, or those a
// retention policy does not keep.
type ForgetRequest struct {
	Repo Repo
	// Opened, when set, is the repository, already opened; Repo is then
	// not used (forget --prune prunes the repository forget opened).
	Opened *repository.Repository
	// Snapshots names snapshots to remove (IDs or prefixes), as asked;
	// when empty, Policy decides.
	Snapshots []string
	// Policy is applied to each group of the snapshots Filter selects,
	// grouped by GroupBy (snapshot.Group's fields, e.g. "host,paths").
	Policy  snapshot.Policy
	Filter  snapshot.Filter
	GroupBy string
	// DryRun decides and removes nothing.
	DryRun bool
	// AllowRemoveAll lets the policy remove every snapshot of a group;
	// without it such a policy is refused and nothing is removed (a typo
	// in a --keep-tag must not empty the repository).
	AllowRemoveAll bool
	// Prune, when set, prunes with these options afterwards, when a
	// snapshot was to be removed or on a dry run.
	Prune *maintenance.Options
}

// ForgetGroup is the policy's decisions for one group of snapshots.
type ForgetGroup struct {
	Key    snapshot.GroupKey   `json:"group_key"`
	Keep   []snapshot.Decision `json:"keep"`
	Remove []snapshot.Decision `json:"remove"`
	// Decisions are all of them, in the policy's order.
	Decisions []snapshot.Decision `json:"-"`
}

// LockedSnapshot is a snapshot the store keeps under Object Lock: a
// forget after Until removes it.
type LockedSnapshot struct {
	Snapshot *snapshot.Snapshot
	Until    time.Time
}

// ForgetResult is what a forget decided and did.
type ForgetResult struct {
	// Groups are the policy's decisions (none when snapshots were
	// named).
	Groups []ForgetGroup
	// LogArchives counts the log archive snapshots the policy left
	// alone.
	LogArchives int
	// Remove are the snapshots to remove; Removed counts those removed
	// (none on a dry run) and Locked those the store keeps for now.
	Remove  []*snapshot.Snapshot
	Removed int
	Locked  []LockedSnapshot
	// Prune is what the prune afterwards did, if one ran.
	Prune *PruneResult
}

// Forget removes the snapshots req names, or applies its policy to every
// group of snapshots and removes those it does not keep. Once the
// snapshots to remove are decided, the result is returned even with an
// error (a refused policy, a removal that failed), so that callers can
// show the decisions; before that it is nil.
func (a *App) Forget(ctx context.Context, req ForgetRequest) (*ForgetResult, error) {
	r := req.Opened
	if r == nil {
		var err error
		if r, err = a.Open(ctx, req.Repo); err != nil {
			return nil, err
		}
	}
	all, err := a.LoadSnapshots(ctx, r)
	if err != nil {
		return nil, err
	}
	res := &ForgetResult{}
	if len(req.Snapshots) > 0 {
		for _, ref := range req.Snapshots {
			sn, err := snapshot.Find(all, ref, snapshot.Filter{})
			if err != nil {
				return nil, err
			}
			res.Remove = append(res.Remove, sn)
		}
	} else {
		if req.Policy.Empty() {
			return nil, errors.New("nothing to do: name snapshots or give a retention policy")
		}
		var backups []*snapshot.Snapshot
		for _, sn := range req.Filter.Apply(all) {
			if sn.Kind == KindContinuous {
				res.LogArchives++
				continue
			}
			backups = append(backups, sn)
		}
		if res.LogArchives > 0 {
			a.infof("%d log archive snapshot(s) (WAL, binlogs) are left to their own retention (e.g. bunker pg wal-expire)", res.LogArchives)
		}
		keys, groups, err := snapshot.Group(backups, req.GroupBy)
		if err != nil {
			return nil, err
		}
		var emptied []string
		for _, k := range keys {
			g := ForgetGroup{Key: k, Keep: []snapshot.Decision{}, Remove: []snapshot.Decision{}}
			g.Decisions = req.Policy.Apply(groups[k.String()])
			for _, d := range g.Decisions {
				if d.Keep {
					g.Keep = append(g.Keep, d)
				} else {
					res.Remove = append(res.Remove, d.Snapshot)
					g.Remove = append(g.Remove, d)
				}
			}
			res.Groups = append(res.Groups, g)
			if len(g.Keep) == 0 && len(g.Remove) > 0 {
				emptied = append(emptied, fmt.Sprintf("host %q paths %v tags %v", k.Hostname, k.Paths, k.Tags))
			}
		}
		if len(emptied) > 0 && !req.AllowRemoveAll {
			return res, fmt.Errorf("refusing to forget: the policy (%s) would remove every snapshot of %s; nothing was removed (check the --keep-* flags, or give --unsafe-allow-remove-all if that is meant)",
				req.Policy, strings.Join(emptied, ", "))
		}
	}
	if !req.DryRun {
		if err := checkMaintenanceAccess(r, "forget"); err != nil {
			return res, err
		}
		now := time.Now()
		for _, sn := range res.Remove {
			until, err := r.RetainedUntil(ctx, storage.Handle{Type: storage.SnapshotFile, Name: pack.Name(sn.ID)})
			if err != nil {
				return res, fmt.Errorf("snapshot %s: %w", sn.ShortID(), err)
			}
			if until.After(now) {
				res.Locked = append(res.Locked, LockedSnapshot{Snapshot: sn, Until: until})
				continue
			}
			if err := snapshot.Remove(ctx, r, sn.ID); err != nil {
				return res, maintenanceRefused("forget", fmt.Errorf("remove snapshot %s: %w", sn.ShortID(), err))
			}
			res.Removed++
		}
	}
	if req.Prune != nil && (len(res.Remove) > 0 || req.DryRun) {
		opts := *req.Prune
		opts.DryRun = req.DryRun
		res.Prune, err = a.Prune(ctx, PruneRequest{Opened: r, Options: opts})
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// PruneRequest is a prune: deleting the data no snapshot references.
type PruneRequest struct {
	Repo Repo
	// Opened, when set, is the repository, already opened; Repo is then
	// not used.
	Opened  *repository.Repository
	Options maintenance.Options
}

// PruneResult is what a prune did.
type PruneResult struct {
	maintenance.Result
	Duration time.Duration
}

// Prune deletes the packs no snapshot references and repacks those with
// too much unused space. Its phases are noted as Info unless
// Options.Progress is set. Unless it is a dry run, a store that says it
// is append-only is refused up front.
func (a *App) Prune(ctx context.Context, req PruneRequest) (*PruneResult, error) {
	r := req.Opened
	if r == nil {
		var err error
		if r, err = a.Open(ctx, req.Repo); err != nil {
			return nil, err
		}
	}
	opts := req.Options
	start := time.Now()
	if opts.Progress == nil {
		opts.Progress = func(phase string) {
			a.infof("prune: %s", phase)
			a.progress(Progress{Op: "prune", Current: phase, Elapsed: time.Since(start)})
		}
	}
	if !opts.DryRun {
		if err := checkMaintenanceAccess(r, "prune"); err != nil {
			return nil, err
		}
	}
	res, err := maintenance.Prune(ctx, r, opts)
	if err != nil {
		return nil, maintenanceRefused("prune", fmt.Errorf("prune: %w", err))
	}
	return &PruneResult{Result: *res, Duration: time.Since(start)}, nil
}

// checkMaintenanceAccess refuses forget and prune up front on a store that
// says it is append-only.
func checkMaintenanceAccess(r *repository.Repository, op string) error {
	if r.Backend().Features().AppendOnly {
		return fmt.Errorf("%s: %s is append-only for this credential: backups work, but %s deletes data and needs a maintenance credential (a bunker serve without --append-only, or store credentials that may delete): %w",
			op, r.Backend().Location(), op, storage.ErrPermission)
	}
	return nil
}

// maintenanceRefused explains a deletion the store refused.
func maintenanceRefused(op string, err error) error {
	if !errors.Is(err, storage.ErrPermission) {
		return err
	}
	return fmt.Errorf("%w\nthe store refused to delete: this credential may only add data (append-only access). Backups keep working; %s needs a maintenance credential that may delete", err, op)
}
