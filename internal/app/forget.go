package app

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/maintenance"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/source/mongodb"
	"github.com/bunkerbackup/bunker/internal/source/mysql"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
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
	// KeepLogArchives leaves the log archives (WAL, binlogs, oplog) to
	// their own expiry commands. By default a policy also forgets the
	// archive snapshots that no backup it keeps needs (ExpireLogs).
	KeepLogArchives bool
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
	// LogArchives counts the log archive snapshots the policy did not
	// judge itself.
	LogArchives int
	// ExpiredLogs are the log archive snapshots no kept backup needs any
	// more, which are removed with the backups (in Remove too).
	ExpiredLogs []ExpiredLog
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
		if len(emptied) == 0 || req.AllowRemoveAll {
			a.expireLogs(req, all, res)
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
		logsFrom := len(res.Remove) - len(res.ExpiredLogs)
		for i := 0; i < len(res.Remove); i++ {
			sn := res.Remove[i]
			if i == logsFrom && len(res.Locked) > 0 {
				// A backup the store keeps for now keeps its logs too.
				a.keepLogsOfLocked(all, res, logsFrom)
				if i >= len(res.Remove) {
					break
				}
				sn = res.Remove[i]
			}
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

// LogArchives are the databases' log archives, whose expiry a retention
// policy applies with the backups it keeps.
var LogArchives = []source.LogArchive{postgres.WALArchive{}, mysql.LogArchive{}, mongodb.LogArchive{}}

// ExpiredLog is a log archive snapshot no kept backup needs.
type ExpiredLog struct {
	Snapshot *snapshot.Snapshot
	// Archive names the archive ("WAL archive"); Why says what the
	// snapshot holds ("(WAL 00…A1..00…B7)").
	Archive, Why string
}

// ExpireLogs picks, from the snapshots a repository keeps, the log
// archive snapshots that no kept backup needs (each archive's
// source.LogArchive rule: a restore from any kept backup never reads
// them); notes say what is kept and why (unreadable metadata, a server
// without a base backup); total counts the archives' snapshots.
func ExpireLogs(kept []*snapshot.Snapshot, archives ...source.LogArchive) (expired []ExpiredLog, notes []string, total int) {
	infos := SnapshotInfos(kept)
	for _, la := range archives {
		x := la.Expire(infos)
		notes, total = append(notes, x.Notes...), total+x.Archives
		for _, e := range x.Expired {
			if sn := snapshotByID(kept, e.ID); sn != nil {
				expired = append(expired, ExpiredLog{Snapshot: sn, Archive: la.Name(), Why: e.Why})
			}
		}
	}
	return expired, notes, total
}

// expireLogs adds to res the log archive snapshots (of those req's
// filter selects) that only the backups the policy removes needed: a
// backup's logs expire with it, and no gap opens inside a kept backup's
// range (only logs older than every kept base backup of their server
// go). Logs no backup needed before this forget are left to the expire
// commands: a planted base backup (claiming a late start for a server
// whose base backups live elsewhere) cannot make a policy forget them.
func (a *App) expireLogs(req ForgetRequest, all []*snapshot.Snapshot, res *ForgetResult) {
	if req.KeepLogArchives || res.LogArchives == 0 {
		if res.LogArchives > 0 {
			a.infof("%d log archive snapshot(s) (WAL, binlogs, oplog) are left to their own expiry (e.g. bunker pg wal-expire)", res.LogArchives)
		}
		return
	}
	freed, notes := logsFreedBy(all, res.Remove)
	for _, n := range notes {
		a.infof("%s", n)
	}
	for _, e := range freed {
		if req.Filter.Match(e.Snapshot) {
			res.ExpiredLogs = append(res.ExpiredLogs, e)
			res.Remove = append(res.Remove, e.Snapshot)
		}
	}
}

// logsFreedBy returns the log archive snapshots of all that no backup
// needs once removed is gone, but that one of removed needed: the logs
// whose expiry removing them causes.
func logsFreedBy(all, removed []*snapshot.Snapshot) ([]ExpiredLog, []string) {
	gone := map[*snapshot.Snapshot]bool{}
	for _, sn := range removed {
		gone[sn] = true
	}
	var kept []*snapshot.Snapshot
	for _, sn := range all {
		if !gone[sn] {
			kept = append(kept, sn)
		}
	}
	before, _, _ := ExpireLogs(all, LogArchives...)
	already := map[*snapshot.Snapshot]bool{}
	for _, e := range before {
		already[e.Snapshot] = true
	}
	after, notes, _ := ExpireLogs(kept, LogArchives...)
	var freed []ExpiredLog
	for _, e := range after {
		if !already[e.Snapshot] {
			freed = append(freed, e)
		}
	}
	return freed, notes
}

// keepLogsOfLocked drops from res's expired logs (Remove[logsFrom:])
// those a backup the store keeps under Object Lock still needs.
func (a *App) keepLogsOfLocked(all []*snapshot.Snapshot, res *ForgetResult, logsFrom int) {
	locked := map[*snapshot.Snapshot]bool{}
	for _, l := range res.Locked {
		locked[l.Snapshot] = true
	}
	var removed []*snapshot.Snapshot
	for _, sn := range res.Remove[:logsFrom] {
		if !locked[sn] {
			removed = append(removed, sn)
		}
	}
	still, _ := logsFreedBy(all, removed)
	ok := map[*snapshot.Snapshot]bool{}
	for _, e := range still {
		ok[e.Snapshot] = true
	}
	remove, logs := res.Remove[:logsFrom], res.ExpiredLogs[:0]
	for _, e := range res.ExpiredLogs {
		if ok[e.Snapshot] {
			remove, logs = append(remove, e.Snapshot), append(logs, e)
		}
	}
	if n := len(res.ExpiredLogs) - len(logs); n > 0 {
		a.infof("kept %d log archive snapshot(s) that a backup under Object Lock still needs", n)
	}
	res.Remove, res.ExpiredLogs = remove, logs
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
	budget, sweepBudget, err := a.maintenanceBudget(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	if budget > 0 {
		// The limit follows the phase: the index's size while loading
		// and planning; while sweeping, room for the sweep's own index
		// beside it and the full IDs its compaction reads back.
		report := opts.Progress
		opts.Progress = func(phase string) {
			switch phase {
			case maintenance.PhaseLoadIndex, maintenance.PhaseMark:
				debug.SetMemoryLimit(budget)
			case maintenance.PhaseSweep:
				debug.SetMemoryLimit(sweepBudget)
			}
			report(phase)
		}
		// Whatever limit the process had (a daemon's next job) comes back.
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
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
