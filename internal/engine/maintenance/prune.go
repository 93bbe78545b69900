package maintenance

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/bits-and-blooms/bitset"
	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// ID of a blob or pack.
type ID = format.ID

// Options for Prune.
type Options struct {
	DryRun bool
	// MaxUnused is the share of unused bytes in partly used packs that is
	// tolerated before they are repacked (0.05 = 5%). Negative disables
	// repacking.
	MaxUnused float64
	// SafetyWindow is the minimum age (store time) of a plan before it is
	// swept. Zero relies on the store's read-after-write consistency.
	SafetyWindow time.Duration
	// Progress reports phases (may be nil).
	Progress func(phase string)
}

// Phases of Prune, as Progress reports them, after which it holds
// different things in memory: the index files while it loads them, a bit
// per index entry while it marks and plans, and while it sweeps, sets of
// blob IDs and every index entry with its full ID (the sweep is not yet
// built for a hundred million blobs).
const (
	PhaseLoadIndex = "loading index"
	PhaseMark      = "finding reachable blobs"
	PhaseSweep     = "sweeping"
)

// progress reports a phase to Progress, if set.
func (o Options) progress(phase string) {
	if o.Progress != nil {
		o.Progress(phase)
	}
}

// Result reports what prune did.
type Result struct {
	Snapshots     int   `json:"snapshots"`
	PacksTotal    int   `json:"packs_total"`
	PacksPlanned  int   `json:"packs_planned"`
	BytesPlanned  int64 `json:"bytes_planned"`
	PacksRepacked int   `json:"packs_repacked"`
	BlobsRepacked int   `json:"blobs_repacked"`
	PacksDeleted  int   `json:"packs_deleted"`
	BytesDeleted  int64 `json:"bytes_deleted"`
	PacksKept     int   `json:"packs_resurrected"`
	// UnreadablePlanned counts planned packs whose trailer could not be
	// authenticated; only the index spoke for them.
	UnreadablePlanned int `json:"planned_packs_unreadable,omitempty"`
	// UnreadablePlans names maintenance plans that could not be read
	// (damaged or planted): ignored; 'bunker repair maint' removes them.
	UnreadablePlans []string `json:"unreadable_plans,omitempty"`
	// RepackFailed counts packs left alone because a reachable blob in
	// them could not be read back (check names it).
	RepackFailed int `json:"repack_failed,omitempty"`
	// FalseEntries counts index entries dropped by compaction because
	// they placed a blob that lost a copy in a pack that does not hold it.
	FalseEntries    int      `json:"false_index_entries_dropped,omitempty"`
	IndexCompacted  bool     `json:"index_compacted"`
	IndexFilesGone  int      `json:"index_files_removed"`
	PlansSwept      int      `json:"plans_swept"`
	PlansWaiting    int      `json:"plans_waiting"`
	WaitingSessions []string `json:"waiting_sessions,omitempty"`
	UnusedBytes     int64    `json:"unused_bytes_after"`
	SessionsRemoved int      `json:"dead_sessions_removed"`
	TempRemoved     int      `json:"temp_files_removed"`
	DryRun          bool     `json:"dry_run"`
	// Object lock: unused packs the store does not let go of yet, and
	// when the last of them may be deleted.
	LockedPacks       int       `json:"locked_packs,omitempty"`
	LockedBytes       int64     `json:"locked_bytes,omitempty"`
	LockedUntil       time.Time `json:"locked_until,omitzero"`
	IndexFilesLocked  int       `json:"index_files_locked,omitempty"`
	RetentionExtended int       `json:"retention_extended,omitempty"`
}

// lockedUntil returns until when object lock keeps h, zero if it is free
// to delete now.
func lockedUntil(ctx context.Context, r *repository.Repository, h storage.Handle, now time.Time) (time.Time, error) {
	if r.Lock() == nil {
		return time.Time{}, nil
	}
	until, err := r.RetainedUntil(ctx, h)
	if err != nil {
		return time.Time{}, err
	}
	if until.After(now) {
		return until, nil
	}
	return time.Time{}, nil
}

// removeUnlessLocked deletes h unless the store keeps it under Object
// Lock. locked reports that it stays, with until when (zero if the store
// refused without our knowing the date).
func removeUnlessLocked(ctx context.Context, r *repository.Repository, h storage.Handle, now time.Time) (locked bool, until time.Time, err error) {
	until, err = lockedUntil(ctx, r, h, now)
	if err != nil {
		return false, until, err
	}
	if !until.IsZero() {
		return true, until, nil
	}
	err = r.Backend().Remove(ctx, h)
	if r.Lock() != nil && errors.Is(err, storage.ErrPermission) {
		return true, until, nil
	}
	return false, until, err
}

// noteLocked records a pack kept by its lock in res.
func (res *Result) noteLocked(size int64, until time.Time) {
	res.LockedPacks++
	res.LockedBytes += size
	if until.After(res.LockedUntil) {
		res.LockedUntil = until
	}
}

// LeaseTTL is how long a maintenance lease stays valid without refresh.
const LeaseTTL = 10 * time.Minute

const leaseName = "lease"

// ErrBusy means another prune holds the maintenance lease.
var ErrBusy = errors.New("another prune is running")

type lease struct {
	r    *repository.Repository
	stop chan struct{}
	done chan struct{}
}

// storeNow learns the store's clock by writing and reading a probe object.
func storeNow(ctx context.Context, r *repository.Repository) (time.Time, error) {
	h := storage.Handle{Type: storage.MaintFile, Name: "clock-" + hex.EncodeToString(crypto.Random(8))}
	be := r.Backend()
	if err := be.Save(ctx, h, []byte("clock"), storage.SaveOptions{}); err != nil {
		return time.Time{}, fmt.Errorf("probe store clock: %w", err)
	}
	fi, err := be.Stat(ctx, h)
	_ = be.Remove(ctx, h)
	if err != nil {
		return time.Time{}, fmt.Errorf("probe store clock: %w", err)
	}
	return fi.ModTime, nil
}

func acquireLease(ctx context.Context, r *repository.Repository) (*lease, error) {
	h := storage.Handle{Type: storage.MaintFile, Name: leaseName}
	info := repository.SessionInfo{Command: "prune", Started: time.Now().UTC()}
	for attempt := 0; attempt < 2; attempt++ {
		err := r.SaveJSONNamed(ctx, storage.MaintFile, leaseName, info, storage.SaveOptions{IfNotExists: true})
		if err == nil {
			l := &lease{r: r, stop: make(chan struct{}), done: make(chan struct{})}
			go l.refresh(info)
			return l, nil
		}
		if !errors.Is(err, storage.ErrExists) {
			return nil, err
		}
		fi, serr := r.Backend().Stat(ctx, h)
		if serr != nil {
			if errors.Is(serr, storage.ErrNotExist) {
				continue
			}
			return nil, serr
		}
		var held repository.SessionInfo
		if lerr := r.LoadJSON(ctx, storage.MaintFile, leaseName, &held); lerr != nil && repository.IsDecodeError(lerr) {
			// Not a lease any prune wrote (those are sealed with the
			// key): damaged or planted. It must not keep maintenance
			// away; take it over.
			r.Logger().Warn("replacing an unreadable maintenance lease", "object", "maint/"+leaseName, "err", lerr)
			if err := r.Backend().Remove(ctx, h); err != nil {
				return nil, fmt.Errorf("remove unreadable maintenance lease: %w", err)
			}
			continue
		}
		now, nerr := storeNow(ctx, r)
		if nerr != nil {
			return nil, nerr
		}
		if now.Sub(fi.ModTime) < LeaseTTL {
			return nil, fmt.Errorf("%w (lease taken %s ago; it expires by itself %s after its last refresh)", ErrBusy, now.Sub(fi.ModTime).Round(time.Second), LeaseTTL)
		}
		// Stale lease of a prune that died: take it over.
		if err := r.Backend().Remove(ctx, h); err != nil {
			return nil, err
		}
	}
	return nil, ErrBusy
}

func (l *lease) refresh(info repository.SessionInfo) {
	defer close(l.done)
	t := time.NewTicker(LeaseTTL / 4)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_ = l.r.SaveJSONNamed(ctx, storage.MaintFile, leaseName, info, storage.SaveOptions{})
			cancel()
		}
	}
}

func (l *lease) release(ctx context.Context) {
	close(l.stop)
	<-l.done
	_ = l.r.Backend().Remove(ctx, storage.Handle{Type: storage.MaintFile, Name: leaseName})
}

// Prune sweeps plans that are due and plans what is unreferenced now. r
// must be opened but its index not loaded. Under one maintenance lease it
// sweeps, removes dead sessions, then plans as PlanPrune does and
// executes the plan as PrunePlan.Execute does (a dry run stops after
// planning).
func Prune(ctx context.Context, r *repository.Repository, opts Options) (*Result, error) {
	progress := opts.progress
	res := &Result{DryRun: opts.DryRun}
	if !opts.DryRun {
		l, err := acquireLease(ctx, r)
		if err != nil {
			return nil, err
		}
		defer func() {
			rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			l.release(rctx)
			cancel()
		}()
	}
	progress(PhaseLoadIndex)
	if err := r.LoadIndex(ctx, false); err != nil {
		return nil, err
	}
	// Sweep due plans.
	if !opts.DryRun {
		if err := sweep(ctx, r, opts, res, progress); err != nil {
			return nil, err
		}
	}
	if !opts.DryRun {
		if err := cleanup(ctx, r, res); err != nil {
			return nil, err
		}
	}
	plan, err := planPrune(ctx, r, opts, res)
	if err != nil {
		return nil, err
	}
	if opts.DryRun {
		return res, nil
	}
	if err := plan.execute(ctx, res); err != nil {
		return nil, err
	}
	return res, nil
}

// PrunePlan is the outcome of the mark phase: which packs a prune would
// plan for deletion, directly or after copying their reachable blobs
// elsewhere. Computing it writes nothing; Execute carries it out. (The
// shape is restic's PlanPrune and Execute.)
type PrunePlan struct {
	// Delete lists the packs that hold no reachable blob, and the packs no
	// index names (left by interrupted writers).
	Delete []ID
	// Repack lists the partly used packs whose reachable blobs are copied
	// into new packs before they are planned too.
	Repack []ID
	// Stats are the mark's findings: Snapshots, PacksTotal, PacksPlanned,
	// BytesPlanned, PacksRepacked, UnusedBytes, and the Locked* fields for
	// packs that Object Lock keeps out of the plan.
	Stats Result

	r    *repository.Repository
	opts Options
	// contents lists the reachable blobs of each pack to repack.
	contents map[ID][]pack.Entry
}

// PlanPrune computes what a prune of r would plan now, without sweeping
// due plans or writing anything: r must be opened; its index is loaded.
// Packs already planned by an existing plan are left out. Prune plans
// the same way after sweeping the plans that are due.
func PlanPrune(ctx context.Context, r *repository.Repository, opts Options) (*PrunePlan, error) {
	if err := r.LoadIndex(ctx, false); err != nil {
		return nil, err
	}
	res := &Result{DryRun: opts.DryRun}
	p, err := planPrune(ctx, r, opts, res)
	if err != nil {
		return nil, err
	}
	p.Stats = *res
	return p, nil
}

// Execute carries the plan out (see the package documentation, steps 3
// and 4): it extends Object Lock retention when due, repacks, writes a
// maintenance plan with the sessions live now, and sweeps it at once when
// no writer was live and the safety window is zero. The packs are deleted
// only by a sweep, which first checks again which of them the snapshots
// existing then still need, so a plan that has become stale (a snapshot
// committed since PlanPrune reuses its packs) loses nothing. Execute takes
// the maintenance lease (ErrBusy if another prune holds it). It returns
// Stats with what it did added.
func (p *PrunePlan) Execute(ctx context.Context) (*Result, error) {
	if p.opts.DryRun {
		return nil, errors.New("prune: a dry run's plan cannot be executed")
	}
	l, err := acquireLease(ctx, p.r)
	if err != nil {
		return nil, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		l.release(rctx)
		cancel()
	}()
	res := p.Stats
	res.WaitingSessions = slices.Clone(res.WaitingSessions)
	res.UnreadablePlans = slices.Clone(res.UnreadablePlans)
	if err := p.execute(ctx, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// planPrune is the mark phase of Prune, on r's loaded index, recording
// what it finds in res. It keeps a bit per index entry (reachable or not)
// and two counters per pack, not sets of blob IDs: a repository of 100
// million blobs plans in little more than its loaded index (docs/
// PERFORMANCE.md, "Maintenance at scale").
func planPrune(ctx context.Context, r *repository.Repository, opts Options, res *Result) (*PrunePlan, error) {
	progress := opts.progress
	progress(PhaseMark)
	snaps, err := loadSnapshots(ctx, r)
	if err != nil {
		return nil, err
	}
	res.Snapshots = len(snaps)
	v, reach, err := markReachable(ctx, r, snaps)
	if err != nil {
		return nil, err
	}
	infos, err := r.List(ctx, storage.PackFile)
	if err != nil {
		return nil, err
	}
	plans, err := r.Plans(ctx)
	if err != nil {
		return nil, err
	}
	planned := repository.PlannedPacks(plans)
	// Bytes of reachable and of unreachable entries per pack of the view.
	np := v.NumPacks()
	used, unused := make([]int64, np), make([]int64, np)
	indexed := bitset.New(uint(np))
	for pos := range v.Len() {
		sl := v.At(pos)
		indexed.Set(uint(sl.Pack))
		if reach.Test(uint(pos)) {
			used[sl.Pack] += int64(sl.Length)
		} else {
			unused[sl.Pack] += int64(sl.Length)
		}
	}
	type packUse struct {
		id           ID
		num          uint32
		unused, size int64
	}
	var deletable []ID
	var partly []packUse
	var totalUnused, totalSize int64
	sizes := map[ID]int64{} // of the packs planned below
	listed := bitset.New(uint(np))
	for _, fi := range infos {
		pk, err := format.ParseID(fi.Name)
		if err != nil {
			continue
		}
		res.PacksTotal++
		if planned[pk] {
			continue
		}
		n, known := v.PackNumber(pk)
		if !known || !indexed.Test(uint(n)) {
			if _, dup := sizes[pk]; dup {
				continue
			}
			deletable = append(deletable, pk) // unindexed: interrupted writer
			sizes[pk] = fi.Size
			res.BytesPlanned += fi.Size
			continue
		}
		if listed.Test(uint(n)) {
			continue
		}
		listed.Set(uint(n))
		totalSize += fi.Size
		switch {
		case used[n] == 0:
			deletable = append(deletable, pk)
			sizes[pk] = fi.Size
			res.BytesPlanned += fi.Size
		case unused[n] > 0:
			partly = append(partly, packUse{id: pk, num: n, unused: unused[n], size: fi.Size})
			totalUnused += unused[n]
		}
	}
	used, unused = nil, nil
	// Repack partly used packs with the most waste first, until the unused
	// share is within MaxUnused.
	var repack []ID
	repackNums := bitset.New(uint(np))
	if opts.MaxUnused >= 0 && totalSize > 0 {
		sort.Slice(partly, func(i, j int) bool {
			return float64(partly[i].unused)/float64(partly[i].size) > float64(partly[j].unused)/float64(partly[j].size)
		})
		for _, u := range partly {
			if float64(totalUnused) <= opts.MaxUnused*float64(totalSize) {
				break
			}
			repack = append(repack, u.id)
			repackNums.Set(uint(u.num))
			sizes[u.id] = u.size
			totalUnused -= u.unused
			res.BytesPlanned += u.size
		}
	}
	partly = nil
	if r.Lock() != nil {
		// Never try to delete (or repack, which ends in a delete) a pack
		// the store still keeps: leave it for a prune after its lock ends.
		now := time.Now()
		free := func(ids []ID) ([]ID, error) {
			var out []ID
			for _, pk := range ids {
				until, err := lockedUntil(ctx, r, storage.Handle{Type: storage.PackFile, Name: pack.Name(pk)}, now)
				if err != nil {
					return nil, err
				}
				if until.IsZero() {
					out = append(out, pk)
					continue
				}
				res.noteLocked(sizes[pk], until)
				res.BytesPlanned -= sizes[pk]
			}
			return out, nil
		}
		progress("checking object locks")
		if deletable, err = free(deletable); err != nil {
			return nil, err
		}
		if repack, err = free(repack); err != nil {
			return nil, err
		}
	}
	res.UnusedBytes = totalUnused
	res.PacksPlanned = len(deletable) + len(repack)
	res.PacksRepacked = len(repack)
	plan := &PrunePlan{Delete: deletable, Repack: repack, r: r, opts: opts}
	if len(repack) > 0 && !opts.DryRun {
		// The reachable blobs of the packs to repack, with their full IDs.
		progress("reading the blobs to repack")
		plan.contents = map[ID][]pack.Entry{}
		err := v.EachIn(r.IndexSource(ctx), func(pos int) bool {
			return reach.Test(uint(pos)) && repackNums.Test(uint(v.At(pos).Pack))
		}, func(_ int, l index.Location) bool {
			plan.contents[l.Pack] = append(plan.contents[l.Pack], l.Entry)
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// markReachable marks the index entries of every blob reachable from
// snaps, in a view of r's index taken after the index files that the
// snapshots' writers saved were loaded. A tree found only by loading
// index files saved later (the view cannot mark its blobs) starts the
// mark again on a new view.
func markReachable(ctx context.Context, r *repository.Repository, snaps []*snapshot.Snapshot) (*index.View, *bitset.BitSet, error) {
	for range 3 {
		if err := r.RefreshIndex(ctx); err != nil {
			return nil, nil, err
		}
		v := r.Index().View()
		reach := bitset.New(uint(v.Len()))
		missed := false
		unindexed := newBlobSet() // trees the view does not hold: walked once
		err := walk(ctx, r, snaps, func(id ID, t pack.BlobType) bool {
			fresh, found := false, false
			v.Find(id, t, func(pos int) {
				found = true
				if !reach.Test(uint(pos)) {
					reach.Set(uint(pos))
					fresh = true
				}
			})
			if !found && t == pack.TreeBlob {
				missed = true
				return unindexed.add(id, t)
			}
			return fresh
		})
		if err != nil {
			return nil, nil, err
		}
		if !missed {
			return v, reach, nil
		}
	}
	return nil, nil, errors.New("prune: index files keep appearing for trees of snapshots listed before them; run prune again")
}

// execute is Execute under the lease, adding to res.
func (p *PrunePlan) execute(ctx context.Context, res *Result) error {
	r, opts, progress := p.r, p.opts, p.opts.progress
	deletable, repack := slices.Clone(p.Delete), slices.Clone(p.Repack)
	if r.Lock() != nil {
		if err := extendRetention(ctx, r, append(slices.Clone(deletable), repack...), res, progress); err != nil {
			return err
		}
	}
	if res.PacksPlanned == 0 {
		return nil
	}
	if len(repack) > 0 {
		progress("repacking")
		n, failed, err := repackBlobs(ctx, r, repack, p.contents)
		if err != nil {
			return err
		}
		res.BlobsRepacked = n
		if len(failed) > 0 {
			repack = slices.DeleteFunc(repack, func(pk ID) bool { return failed[pk] })
			res.PacksRepacked = len(repack)
			res.PacksPlanned = len(deletable) + len(repack)
			res.RepackFailed = len(failed)
		}
	}
	plan := &repository.Plan{Created: time.Now().UTC(), Packs: append(deletable, repack...), Bytes: res.BytesPlanned}
	now, err := storeNow(ctx, r)
	if err != nil {
		return err
	}
	// Sessions not refreshed for SessionTTL belong to writers that died
	// (or stalled: those check every pack they rely on before indexing
	// or committing anything). Only live ones hold a plan back.
	live := func(s repository.LiveSession) bool { return now.Sub(s.ModTime) < repository.SessionTTL }
	before, err := r.Sessions(ctx)
	if err != nil {
		return err
	}
	for _, s := range before {
		if live(s) {
			plan.Sessions = append(plan.Sessions, s.Name)
		}
	}
	progress("writing plan")
	if err := r.SavePlan(ctx, plan); err != nil {
		return err
	}
	// Sessions must be listed after the plan is visible: a writer whose
	// session is not in this list wrote it later, so it reads the plan.
	after, err := r.Sessions(ctx)
	if err != nil {
		return err
	}
	changed := false
	for _, s := range after {
		if !slices.Contains(plan.Sessions, s.Name) && (live(s) || s.ModTime.After(now)) {
			plan.Sessions = append(plan.Sessions, s.Name)
			changed = true
		}
	}
	if changed {
		if err := r.SaveJSONNamed(ctx, storage.MaintFile, plan.Name, plan, storage.SaveOptions{}); err != nil {
			return err
		}
	}
	if len(plan.Sessions) == 0 && opts.SafetyWindow == 0 {
		// Nobody was writing when the plan became visible: anyone starting
		// now sees it, so it can be swept right away.
		if err := sweep(ctx, r, opts, res, progress); err != nil {
			return err
		}
	}
	return nil
}

func storedPacks(ctx context.Context, r *repository.Repository) (map[ID]int64, error) {
	infos, err := r.List(ctx, storage.PackFile)
	if err != nil {
		return nil, err
	}
	out := make(map[ID]int64, len(infos))
	for _, fi := range infos {
		if id, err := format.ParseID(fi.Name); err == nil {
			out[id] = fi.Size
		}
	}
	return out, nil
}

// repackBlobs copies the reachable blobs of the given packs (contents
// lists them) into new packs and saves their index. It returns how many
// blobs were copied and the packs whose reachable blobs could not all be
// read back: those must not be planned (the sweep would keep them anyway).
func repackBlobs(ctx context.Context, r *repository.Repository, packs []ID, contents map[ID][]pack.Entry) (int, map[ID]bool, error) {
	for _, pk := range packs {
		r.Index().ExcludePack(pk) // so SaveBlob stores fresh copies
	}
	n := 0
	failed := map[ID]bool{}
	var buf []byte
	for _, pk := range packs {
		for _, e := range contents[pk] {
			if r.Index().Has(e.ID, e.Type) {
				continue
			}
			var err error
			buf, err = r.LoadBlob(ctx, e.Type, e.ID, buf)
			if err != nil {
				if ctx.Err() != nil {
					return n, nil, err
				}
				// No copy reads back right (damaged, or the index lies):
				// leave the pack alone; check reports the blob.
				r.Logger().Warn("repack: blob cannot be read, its pack stays", "pack", pk.Short(), "blob", e.ID.Short(), "err", err)
				failed[pk] = true
				continue
			}
			if _, _, err := r.SaveBlobWithID(ctx, e.Type, e.ID, buf); err != nil {
				return n, nil, fmt.Errorf("repack: %w", err)
			}
			n++
		}
	}
	if err := r.Flush(ctx); err != nil {
		return n, nil, fmt.Errorf("repack: %w", err)
	}
	return n, failed, nil
}

// sweep carries out every plan that is due.
func sweep(ctx context.Context, r *repository.Repository, opts Options, res *Result, progress func(string)) error {
	plans, damaged, err := r.PlansChecked(ctx)
	if err != nil {
		return err
	}
	res.UnreadablePlans = res.UnreadablePlans[:0]
	for name := range damaged {
		res.UnreadablePlans = append(res.UnreadablePlans, name)
	}
	slices.Sort(res.UnreadablePlans)
	if len(plans) == 0 {
		return nil
	}
	sessions, err := r.Sessions(ctx)
	if err != nil {
		return err
	}
	now, err := storeNow(ctx, r)
	if err != nil {
		return err
	}
	alive := map[string]bool{}
	began := map[string]time.Time{} // zero: unknown
	for _, s := range sessions {
		if now.Sub(s.ModTime) < repository.SessionTTL {
			alive[s.Name] = true
			if began[s.Name], err = r.FirstSeen(ctx, s.Name); err != nil {
				return err
			}
		}
	}
	var due []*repository.Plan
	for _, p := range plans {
		waiting := false
		wait := func(s string) {
			waiting = true
			if !slices.Contains(res.WaitingSessions, s) {
				res.WaitingSessions = append(res.WaitingSessions, s)
			}
		}
		for _, s := range p.Sessions {
			if alive[s] {
				wait(s)
			}
		}
		// A plan's session list is only as honest as whoever wrote the
		// plan: also wait for every live writer that may have begun before
		// the plan was visible (and so does not honour its tombstones).
		// Store times have a granularity of up to a second.
		for s := range alive {
			if b := began[s]; b.IsZero() || !b.After(p.ModTime.Add(time.Second)) {
				wait(s)
			}
		}
		if now.Sub(p.ModTime) < opts.SafetyWindow {
			waiting = true
		}
		if waiting {
			res.PlansWaiting++
			continue
		}
		due = append(due, p)
	}
	if len(due) == 0 {
		return nil
	}
	progress(PhaseSweep)
	// Re-mark against the snapshots that exist now, with a fresh index
	// that includes whatever writers committed meanwhile. Every index file
	// counts as evidence, superseded or not: a claim to supersede is only
	// as trustworthy as whoever wrote it.
	// The files are not kept: src reads them again where full IDs are
	// needed (the planned packs' entries, the survivors of a lost copy,
	// the compaction).
	fresh, src, loaded, err := r.IndexOfEveryFile(ctx)
	if err != nil {
		return err
	}
	view := fresh.View()
	reach, err := reachable(ctx, r, view)
	if err != nil {
		return err
	}
	doomed := map[ID]bool{}
	for _, p := range due {
		for _, pk := range p.Packs {
			doomed[pk] = true
		}
	}
	stored, err := storedPacks(ctx, r)
	if err != nil {
		return err
	}
	// Resurrect planned packs that hold a reachable blob, by their own
	// trailer or by any index file, with no proven copy outside the doomed
	// packs.
	contents, err := packContents(view, src, doomed)
	if err != nil {
		return err
	}
	prover := &copyProver{r: r, idx: fresh, doomed: maps.Clone(doomed), stored: stored, proven: map[[33]byte]bool{}}
	verdicts, err := prover.judgeAll(ctx, contents, reach)
	if err != nil {
		return err
	}
	// The entries kept packs' own trailers add, as the rest of fresh's
	// source (it keeps only a prefix of each blob ID).
	adopted := &index.File{}
	for pk, v := range verdicts {
		if v.unreadable != nil {
			res.UnreadablePlanned++
		}
		if !v.keep {
			continue
		}
		delete(doomed, pk)
		res.PacksKept++
		if len(v.unindexed) > 0 {
			fresh.AddPack(pk, v.unindexed)
			adopted.Packs = append(adopted.Packs, pk)
			for _, e := range v.unindexed {
				adopted.Entries = append(adopted.Entries, index.FileEntry{Pack: uint32(len(adopted.Packs) - 1), Entry: e})
			}
		}
	}
	planned := map[ID]bool{}
	for _, p := range plans {
		for _, pk := range p.Packs {
			if !doomed[pk] {
				planned[pk] = true
			}
		}
	}
	// Entries that would outlive a deleted copy must be true ones.
	untrue, err := prover.falseSurvivors(ctx, view, src, contents, doomed)
	if err != nil {
		return err
	}
	res.FalseEntries = len(untrue)
	be := r.Backend()
	now = time.Now()
	for pk := range doomed {
		if size, ok := stored[pk]; ok {
			locked, until, err := removeUnlessLocked(ctx, r, storage.Handle{Type: storage.PackFile, Name: pack.Name(pk)}, now)
			if locked {
				// Locked longer than planned: left unindexed, a later
				// prune deletes it when the lock ends.
				res.noteLocked(size, until)
				continue
			}
			if err != nil {
				return fmt.Errorf("delete pack %s: %w", pk.Short(), err)
			}
			res.PacksDeleted++
			res.BytesDeleted += size
		}
	}
	// Compact: index files with every entry of a pack still stored (or
	// planned by a plan not yet due), the last of them superseding every
	// file loaded above. Each file is saved as soon as it is full, so the
	// compaction holds one file's entries at a time; until the last one is
	// saved the others are only copies of entries that still stand.
	progress("compacting index")
	var f, dropped fileBuilder
	drop := func(l index.Location) bool {
		dropped.add(l)
		return true
	}
	written := map[ID]bool{}
	save := func(part *index.File) error {
		b := index.EncodeFile(r.Key(), part)
		id := pack.Hash(b)
		if err := be.Save(ctx, storage.Handle{Type: storage.IndexFile, Name: pack.Name(id)}, b, storage.SaveOptions{}); err != nil {
			return fmt.Errorf("save compacted index: %w", err)
		}
		written[id] = true
		return nil
	}
	var saveErr error
	withAdopted := func(yield func(*index.File) error) error {
		if err := src(yield); err != nil {
			return err
		}
		return yield(adopted)
	}
	err = fresh.Each(withAdopted, func(l index.Location) bool {
		if doomed[l.Pack] || untrue[entryAt{l.Pack, key(l.ID, l.Type), l.Offset}] {
			return drop(l)
		}
		if _, ok := stored[l.Pack]; !ok && !planned[l.Pack] {
			// Entries of a pack that is gone (indexed by a writer counted
			// dead after the pack was deleted): drop them. Entries of packs
			// of plans not yet due stay, as their tombstones.
			return drop(l)
		}
		f.add(l)
		if len(f.Entries) == index.MaxFileEntries {
			saveErr = save(&f.File)
			f = fileBuilder{}
		}
		return saveErr == nil
	})
	if err == nil {
		err = saveErr
	}
	if err != nil {
		return err
	}
	f.Supersedes = loaded
	if err := save(&f.File); err != nil {
		return err
	}
	res.IndexCompacted = true
	// r's index, loaded before, may hold the dropped entries: the files
	// that named them go now, so r keeps them for its IndexSource.
	r.RetainIndexEntries(&dropped.File)
	for _, id := range loaded {
		if written[id] {
			continue
		}
		locked, _, err := removeUnlessLocked(ctx, r, storage.Handle{Type: storage.IndexFile, Name: pack.Name(id)}, now)
		if locked {
			// Superseded, so ignored by readers; removed by a later prune.
			res.IndexFilesLocked++
			continue
		}
		if err != nil {
			return fmt.Errorf("remove superseded index %s: %w", id.Short(), err)
		}
		res.IndexFilesGone++
	}
	for _, p := range due {
		if err := r.RemovePlan(ctx, p); err != nil {
			return fmt.Errorf("remove plan: %w", err)
		}
		res.PlansSwept++
	}
	return nil
}

// fileBuilder gathers index entries into an index file, numbering the
// packs they name in the order they come.
type fileBuilder struct {
	index.File
	num map[ID]uint32
}

func (b *fileBuilder) add(l index.Location) {
	n, ok := b.num[l.Pack]
	if !ok {
		if b.num == nil {
			b.num = map[ID]uint32{}
		}
		n = uint32(len(b.Packs))
		b.num[l.Pack] = n
		b.Packs = append(b.Packs, l.Pack)
	}
	b.Entries = append(b.Entries, index.FileEntry{Pack: n, Entry: l.Entry})
}

// blobSet is a set of (type, ID).
type blobSet struct {
	m map[[33]byte]struct{}
}

func newBlobSet() *blobSet { return &blobSet{m: map[[33]byte]struct{}{}} }

func key(id ID, t pack.BlobType) (k [33]byte) {
	copy(k[:], id[:])
	k[32] = byte(t)
	return k
}

func (s *blobSet) add(id ID, t pack.BlobType) bool {
	k := key(id, t)
	if _, ok := s.m[k]; ok {
		return false
	}
	s.m[k] = struct{}{}
	return true
}

func (s *blobSet) has(id ID, t pack.BlobType) bool {
	_, ok := s.m[key(id, t)]
	return ok
}

// reachSet is the sweep's re-mark: every blob reachable from the
// snapshots that exist now. Trees are kept by full ID, so that the walk
// descends into every reachable tree exactly once; data blobs by the
// positions of the view that match them, which costs a bit per index
// entry instead of an ID per blob. A position matches by the resident
// prefix, so a data blob sharing a prefix with a reachable one counts as
// reachable too: the set can only keep too much. Reachable data blobs
// the view does not hold are kept by full ID.
type reachSet struct {
	v     *index.View
	bits  *bitset.BitSet
	trees *blobSet
	other *blobSet
}

// has reports whether the blob may be reachable.
func (s *reachSet) has(id ID, t pack.BlobType) bool {
	if t == pack.TreeBlob {
		return s.trees.has(id, t)
	}
	found := false
	s.v.Find(id, t, func(pos int) { found = found || s.bits.Test(uint(pos)) })
	return found || s.other.has(id, t)
}

// mark adds a blob and reports whether it was new (what walk descends on,
// for trees).
func (s *reachSet) mark(id ID, t pack.BlobType) bool {
	if t == pack.TreeBlob {
		return s.trees.add(id, t)
	}
	found := false
	s.v.Find(id, t, func(pos int) {
		found = true
		s.bits.Set(uint(pos))
	})
	if !found {
		s.other.add(id, t)
	}
	return true
}

// reachable computes every blob reachable from the snapshots that exist
// now, on v, a view of the sweep's own index.
func reachable(ctx context.Context, r *repository.Repository, v *index.View) (*reachSet, error) {
	snaps, err := loadSnapshots(ctx, r)
	if err != nil {
		return nil, err
	}
	set := &reachSet{v: v, bits: bitset.New(uint(v.Len())), trees: newBlobSet(), other: newBlobSet()}
	return set, walk(ctx, r, snaps, set.mark)
}

// packContents returns the entries v holds of the given packs, with full
// IDs read from src.
func packContents(v *index.View, src index.Source, packs map[ID]bool) (map[ID][]pack.Entry, error) {
	nums := bitset.New(uint(v.NumPacks()))
	for pk := range packs {
		if n, ok := v.PackNumber(pk); ok {
			nums.Set(uint(n))
		}
	}
	out := map[ID][]pack.Entry{}
	if nums.None() {
		return out, nil
	}
	err := v.EachIn(src, func(pos int) bool { return nums.Test(uint(v.At(pos).Pack)) }, func(_ int, l index.Location) bool {
		out[l.Pack] = append(out[l.Pack], l.Entry)
		return true
	})
	return out, err
}

// loadSnapshots loads every snapshot that exists now. A snapshot that
// cannot be read might reference anything: that is an error.
func loadSnapshots(ctx context.Context, r *repository.Repository) ([]*snapshot.Snapshot, error) {
	snaps, errs, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return nil, err
	}
	for name, e := range errs {
		// Refuse to delete on guesswork. (The name comes from the store
		// and may be shorter than an ID.)
		return nil, fmt.Errorf("snapshot %.8s cannot be read (%v); run 'bunker check' and 'bunker repair snapshots' first", name, e)
	}
	return snaps, nil
}

// walk calls mark for every blob reachable from snaps, loading trees
// through r. mark reports whether it saw the blob for the first time; a
// tree seen before is not walked again.
func walk(ctx context.Context, r *repository.Repository, snaps []*snapshot.Snapshot, mark func(id ID, t pack.BlobType) bool) error {
	var load func(id ID) error
	load = func(id ID) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !mark(id, pack.TreeBlob) {
			return nil
		}
		t, chunks, err := tree.Load(id, func(id ID) ([]byte, error) { return loadTree(ctx, r, id) })
		if err != nil {
			return fmt.Errorf("tree %s: %w (refusing to prune with unreadable trees; run 'bunker check')", id.Short(), err)
		}
		for _, c := range chunks {
			mark(c, pack.TreeBlob)
		}
		for _, n := range t.Nodes {
			for _, c := range n.Content {
				mark(c, pack.DataBlob)
			}
			if n.Subtree != nil {
				if err := load(*n.Subtree); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, sn := range snaps {
		if err := load(sn.Tree); err != nil {
			return err
		}
	}
	return nil
}

func loadTree(ctx context.Context, r *repository.Repository, id ID) ([]byte, error) {
	b, err := r.LoadBlob(ctx, pack.TreeBlob, id, nil)
	if err == nil || !errors.Is(err, repository.ErrBlobNotFound) {
		return b, err
	}
	// A snapshot committed after the index was loaded: pick up the index
	// files its writer saved.
	if err := r.RefreshIndex(ctx); err != nil {
		return nil, err
	}
	return r.LoadBlob(ctx, pack.TreeBlob, id, nil)
}

// DeadSessionAge is the store-time age after which a session object that
// was never removed (its writer crashed) is deleted by prune.
const DeadSessionAge = 24 * time.Hour

// cleanup removes session objects of writers long dead and temporary files
// left by crashed writers of backends that have them.
func cleanup(ctx context.Context, r *repository.Repository, res *Result) error {
	sessions, err := r.Sessions(ctx)
	if err != nil {
		return err
	}
	if len(sessions) > 0 {
		now, err := storeNow(ctx, r)
		if err != nil {
			return err
		}
		for _, s := range sessions {
			if now.Sub(s.ModTime) > DeadSessionAge {
				if err := r.Backend().Remove(ctx, storage.Handle{Type: storage.SessionFile, Name: s.Name}); err != nil {
					return fmt.Errorf("remove dead session %s: %w", s.Name, err)
				}
				res.SessionsRemoved++
			}
		}
	}
	if t, ok := storage.Find[storage.TempCleaner](r.Backend()); ok {
		n, err := t.RemoveStaleTemp(ctx, DeadSessionAge)
		if err != nil {
			return fmt.Errorf("remove stale temporary files: %w", err)
		}
		res.TempRemoved = n
	}
	return nil
}

// extendRetention extends the object lock of everything still needed —
// the packs in stored but not in unused, every index file, snapshot and
// key, and the config — when the last extension leaves less than half the
// retention period.
func extendRetention(ctx context.Context, r *repository.Repository, unused []ID, res *Result, progress func(string)) error {
	now := time.Now()
	due, err := r.ExtensionDue(ctx, now)
	if err != nil || !due {
		return err
	}
	stored, err := storedPacks(ctx, r)
	if err != nil {
		return err
	}
	progress("extending object retention")
	gone := map[ID]bool{}
	for _, pk := range unused {
		gone[pk] = true
	}
	keep := []storage.Handle{{Type: storage.ConfigFile}}
	for pk := range stored {
		if !gone[pk] {
			keep = append(keep, storage.Handle{Type: storage.PackFile, Name: pack.Name(pk)})
		}
	}
	for _, t := range []storage.FileType{storage.IndexFile, storage.SnapshotFile, storage.KeyFile} {
		infos, err := r.List(ctx, t)
		if err != nil {
			return err
		}
		for _, fi := range infos {
			keep = append(keep, storage.Handle{Type: t, Name: fi.Name})
		}
	}
	if err := r.ExtendRetention(ctx, keep, now, nil); err != nil {
		return err
	}
	res.RetentionExtended = len(keep)
	return nil
}
