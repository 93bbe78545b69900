package maintenance

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/checker"
	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// The attacker simulation: honest backups and the administrator's forget
// and prune run against one store while a backup host that holds the
// repository password but only an append-only credential does its worst,
// at random, for many seeds: index files that supersede the real ones and
// list nothing or lies, deletion plans for every pack, forged copies of
// existing blobs, garbage in every object type, replays of objects that
// maintenance removed earlier, sessions it keeps alive. Afterwards every
// snapshot the administrator did not forget must restore bit-exactly, and
// check --read-data must find nothing wrong with any honest snapshot
// (docs/SECURITY.md, "backup host with an append-only credential").
//
// What nothing can stop (docs/SECURITY.md): a writer with the key can
// store forged content under a blob ID, or an index entry placing it where
// it is not, and a later backup of that exact content may deduplicate
// against the forgery. So snapshots committed after the attacker's first
// forgery or false entry must restore exactly or fail with an error naming
// a blob it claimed — never restore wrong bytes; snapshots committed before
// it must restore exactly. TestFalseEntryOutlivingItsBlob pins what prune
// does against false entries planted while the real copy exists.

var (
	attackSeeds = flag.Int("attack.seeds", 30, "number of seeds for TestAttackerSimulation")
	attackFirst = flag.Int("attack.first", 1, "first seed for TestAttackerSimulation")
)

// appendOnly is the attacker's view of the store: it may read everything
// and create objects, never overwrite or delete one.
type appendOnly struct{ storage.Backend }

func (a appendOnly) Save(ctx context.Context, h storage.Handle, b []byte, o storage.SaveOptions) error {
	if _, err := a.Backend.Stat(ctx, h); err == nil {
		return fmt.Errorf("save %v: %w", h, storage.ErrPermission)
	}
	return a.Backend.Save(ctx, h, b, o)
}

func (a appendOnly) Remove(ctx context.Context, h storage.Handle) error {
	return fmt.Errorf("remove %v: %w", h, storage.ErrPermission)
}

func TestAttackerSimulation(t *testing.T) {
	n := *attackSeeds
	if testing.Short() {
		n = 8
	}
	runAttackSeeds(t, *attackFirst, n, true, func(ctx context.Context, t *testing.T, seed uint64) (*attackWorld, error) {
		clock, store, pool, open, err := newSimWorld(ctx, seed, 11)
		if err != nil {
			return nil, err
		}
		return &attackWorld{clock: clock, store: store, attackerBE: appendOnly{store}, pool: pool, open: open}, nil
	})
}

// attackWorld is one store seen by the administrator and the honest
// writers (store) and by the attacker (attackerBE, which may only create).
type attackWorld struct {
	clock      *simClock
	store      storage.Backend
	attackerBE storage.Backend
	pool       [][]byte
	open       func(storage.Backend) (*repository.Repository, error)
}

// runAttackSeeds runs the attacker simulation for n seeds from first on a world
// made by newWorld. With wantBoth, it also insists that prune both deleted
// and kept packs somewhere in the run (on real stores, whose clocks the
// simulation cannot advance, planted sessions may hold every sweep back).
func runAttackSeeds(t *testing.T, first, n int, wantBoth bool, newWorld func(context.Context, *testing.T, uint64) (*attackWorld, error)) {
	moves := map[string]int{}
	var deleted, kept int
	for seed := first; seed < first+n; seed++ {
		ctx, cancel := context.WithCancel(context.Background())
		w, err := newWorld(ctx, t, uint64(seed))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		st, err := runAttackSim(uint64(seed), moves, w)
		cancel() // closes the seed's repositories
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		deleted += st.deleted
		kept += st.kept
	}
	t.Logf("%d seeds: attacker moves %v; prune deleted %d packs and kept %d planned packs that held live data", n, moves, deleted, kept)
	if wantBoth && (deleted == 0 || kept == 0) {
		t.Fatal("prune never deleted a pack or never had to keep one: the simulation tests nothing")
	}
}

type attackStats struct{ deleted, kept int }

func runAttackSim(seed uint64, moves map[string]int, w *attackWorld) (attackStats, error) {
	var st attackStats
	ctx := context.Background()
	clock, store, pool, open := w.clock, w.store, w.pool, w.open
	rng := rand.New(rand.NewPCG(seed, 12))
	att := &attacker{rng: rand.New(rand.NewPCG(seed, 13)), be: w.attackerBE, open: open, seen: map[storage.Handle][]byte{}, moves: moves}
	var parents [3][]*tree.Node
	forgotten := map[format.ID]bool{}
	for round := 0; round < 14; round++ {
		switch rng.IntN(5) {
		case 0, 1: // an honest backup
			w := rng.IntN(3)
			nodes, err := simBackup(ctx, open, store, rng, pool, parents[w], clock, w, round%4)
			if err != nil && !errors.Is(err, repository.ErrStaleSession) {
				return st, fmt.Errorf("round %d: backup: %w", round, err)
			}
			if err == nil {
				parents[w] = nodes
			}
		case 2: // the administrator: forget some, prune
			r, err := open(store)
			if err != nil {
				return st, err
			}
			all, _, err := snapshot.LoadAll(ctx, r)
			if err != nil {
				return st, err
			}
			for _, sn := range all {
				if rng.IntN(3) == 0 {
					err := snapshot.Remove(ctx, r, sn.ID)
					if errors.Is(err, storage.ErrPermission) {
						continue // under Object Lock: forget leaves it alone
					}
					if err != nil {
						return st, err
					}
					forgotten[sn.ID] = true
				}
			}
			res, err := adminPrune(ctx, r, Options{MaxUnused: []float64{0, 0.05, -1}[rng.IntN(3)]})
			if err != nil {
				return st, fmt.Errorf("round %d: prune: %w", round, err)
			}
			st.deleted += res.PacksDeleted
			st.kept += res.PacksKept
		case 3:
			clock.Advance(time.Duration(rng.IntN(30)) * time.Minute)
		}
		for i := rng.IntN(3); i >= 0; i-- {
			if err := att.move(ctx); err != nil {
				return st, fmt.Errorf("round %d: attacker: %w", round, err)
			}
		}
	}
	// The administrator's routine maintenance after the attack.
	clock.Advance(2 * time.Hour)
	for i := 0; i < 3; i++ {
		r, err := open(store)
		if err != nil {
			return st, err
		}
		res, err := adminPrune(ctx, r, Options{MaxUnused: 0})
		if err != nil {
			return st, fmt.Errorf("final prune: %w", err)
		}
		st.deleted += res.PacksDeleted
		st.kept += res.PacksKept
	}
	// Every honest snapshot restores bit-exactly.
	r, err := open(store)
	if err != nil {
		return st, err
	}
	if err := r.LoadIndex(ctx, false); err != nil {
		return st, err
	}
	all, _, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return st, err
	}
	honest := map[string]bool{}
	for _, sn := range all {
		if sn.Hostname == "attacker" {
			continue
		}
		if att.preForge != nil && !att.preForge[sn.ID] {
			// Committed after a forgery: it may depend on a forged blob,
			// but never restores wrong bytes.
			excused := func(id format.ID) bool { return att.claimed[id] }
			if err := verifySnapshot(ctx, r, pool, sn, excused); err != nil {
				return st, err
			}
			continue
		}
		honest[sn.ID.String()] = true
		if err := verifySnapshot(ctx, r, pool, sn, nil); err != nil {
			return st, err
		}
	}
	// check --read-data: no honest snapshot is affected and no blob it
	// needs is missing.
	rc, err := open(store)
	if err != nil {
		return st, err
	}
	res, err := checker.New(rc, checker.Options{ReadData: true, BatchEntries: 40}).Run(ctx)
	if err != nil {
		return st, err
	}
	for _, a := range res.Affected {
		if honest[a.Snapshot] {
			return st, fmt.Errorf("check: honest snapshot %s affected at %s: %v", a.Snapshot[:8], a.Path, res.Problems)
		}
	}
	for _, p := range res.Problems {
		if id, err := format.ParseID(p.Object); err == nil && att.claimed[id] {
			continue // needed by a snapshot committed after its forgery
		}
		if p.Kind == "blob" || p.Kind == "tree" {
			return st, fmt.Errorf("check: %s", p)
		}
	}
	return st, nil
}

// adminPrune is what the administrator does: prune, and when prune
// refuses because a snapshot object cannot be read (check names it),
// 'bunker repair snapshots' removes the unreadable objects and prune runs
// again.
func adminPrune(ctx context.Context, r *repository.Repository, opts Options) (*Result, error) {
	_, unreadable, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return nil, err
	}
	for name := range unreadable {
		if err := r.Backend().Remove(ctx, storage.Handle{Type: storage.SnapshotFile, Name: name}); err != nil {
			return nil, err
		}
	}
	return Prune(ctx, r, opts)
}

// attacker is a backup host with the password and an append-only
// credential.
type attacker struct {
	rng   *rand.Rand
	be    storage.Backend
	open  func(storage.Backend) (*repository.Repository, error)
	seen  map[storage.Handle][]byte // objects captured for replays
	moves map[string]int
	// preForge holds the snapshots that existed at the first forgery.
	preForge map[format.ID]bool
	// claimed holds the blob IDs with a forged copy or a false entry.
	claimed map[format.ID]bool
}

func (a *attacker) move(ctx context.Context) error {
	r, err := a.open(a.be)
	if err != nil {
		return err
	}
	if err := r.LoadIndex(ctx, false); err != nil {
		return err
	}
	a.capture(ctx)
	kinds := []string{"supersede", "lie", "plan", "forge", "garbage", "replay", "session", "snapshot"}
	kind := kinds[a.rng.IntN(len(kinds))]
	a.moves[kind]++
	if (kind == "forge" || kind == "lie") && a.preForge == nil {
		a.preForge = map[format.ID]bool{}
		all, _, err := snapshot.LoadAll(ctx, r)
		if err != nil {
			return err
		}
		for _, sn := range all {
			a.preForge[sn.ID] = true
		}
	}
	var err2 error
	switch kind {
	case "supersede":
		err2 = a.supersede(ctx, r)
	case "lie":
		err2 = a.lie(ctx, r)
	case "plan":
		err2 = a.plan(ctx, r)
	case "forge":
		err2 = a.forge(ctx, r)
	case "garbage":
		err2 = a.garbage(ctx)
	case "replay":
		err2 = a.replay(ctx)
	case "session":
		err2 = r.SaveJSONNamed(ctx, storage.SessionFile, "s-"+hex.EncodeToString(crypto.Random(12)), repository.SessionInfo{Host: "attacker"}, storage.SaveOptions{})
	case "snapshot":
		// A snapshot of its own whose tree is an honest one: harmless, and
		// it keeps that tree alive.
		all, _, err := snapshot.LoadAll(ctx, r)
		if err == nil && len(all) > 0 {
			sn := snapshot.New([]string{"/x"}, nil, "attacker", time.Now())
			sn.Tree = all[a.rng.IntN(len(all))].Tree
			_, err = snapshot.Save(ctx, r, sn)
		}
		err2 = err
	}
	if err2 != nil && !errors.Is(err2, storage.ErrPermission) {
		return fmt.Errorf("%s: %w", kind, err2)
	}
	return nil
}

// capture remembers the objects of the types worth replaying.
func (a *attacker) capture(ctx context.Context) {
	for _, t := range []storage.FileType{storage.IndexFile, storage.MaintFile, storage.SessionFile} {
		_ = a.be.List(ctx, t, func(fi storage.FileInfo) error {
			h := storage.Handle{Type: t, Name: fi.Name}
			if _, ok := a.seen[h]; !ok {
				if b, err := storage.LoadAll(ctx, a.be, h); err == nil {
					a.seen[h] = b
				}
			}
			return nil
		})
	}
}

func (a *attacker) saveIndex(ctx context.Context, r *repository.Repository, f *index.File) error {
	b := index.EncodeFile(r.Key(), f)
	return a.be.Save(ctx, storage.Handle{Type: storage.IndexFile, Name: pack.Name(pack.Hash(b))}, b, storage.SaveOptions{})
}

func (a *attacker) indexNames(ctx context.Context) []format.ID {
	var ids []format.ID
	_ = a.be.List(ctx, storage.IndexFile, func(fi storage.FileInfo) error {
		if id, err := format.ParseID(fi.Name); err == nil {
			ids = append(ids, id)
		}
		return nil
	})
	return ids
}

// supersede writes an index file that claims to replace every index file
// and keeps only a random part of the real entries.
func (a *attacker) supersede(ctx context.Context, r *repository.Repository) error {
	f := &index.File{Supersedes: a.indexNames(ctx)}
	keep := a.rng.IntN(3) // 0: nothing, 1: some, 2: all but one pack
	var drop format.ID
	err := r.Index().Each(r.IndexSource(ctx), func(l index.Location) bool {
		if keep == 0 || (keep == 1 && a.rng.IntN(2) == 0) {
			return true
		}
		if drop == (format.ID{}) {
			drop = l.Pack
		}
		if keep == 2 && l.Pack == drop {
			return true
		}
		f.Packs = append(f.Packs, l.Pack)
		f.Entries = append(f.Entries, index.FileEntry{Pack: uint32(len(f.Packs) - 1), Entry: l.Entry})
		return true
	})
	if err != nil {
		return err
	}
	return a.saveIndex(ctx, r, f)
}

// lie writes an index file that places known blobs in the wrong packs at
// plausible offsets, and claims the packs it names hold nothing else.
func (a *attacker) lie(ctx context.Context, r *repository.Repository) error {
	packs := r.Index().Packs()
	if len(packs) == 0 {
		return nil
	}
	f := &index.File{}
	if a.rng.IntN(2) == 0 {
		f.Supersedes = a.indexNames(ctx)
	}
	err := r.Index().Each(r.IndexSource(ctx), func(l index.Location) bool {
		if a.rng.IntN(2) == 0 {
			return true
		}
		f.Packs = append(f.Packs, packs[a.rng.IntN(len(packs))])
		a.claim(l.ID)
		e := l.Entry
		e.Offset = format.HeaderSize + uint32(a.rng.IntN(512))
		f.Entries = append(f.Entries, index.FileEntry{Pack: uint32(len(f.Packs) - 1), Entry: e})
		return true
	})
	if err != nil {
		return err
	}
	return a.saveIndex(ctx, r, f)
}

// plan plants a deletion plan for every stored pack, or a random half,
// with no sessions to wait for.
func (a *attacker) plan(ctx context.Context, r *repository.Repository) error {
	p := &repository.Plan{Created: time.Unix(0, 0)}
	half := a.rng.IntN(2) == 0
	_ = a.be.List(ctx, storage.PackFile, func(fi storage.FileInfo) error {
		if id, err := format.ParseID(fi.Name); err == nil && (!half || a.rng.IntN(2) == 0) {
			p.Packs = append(p.Packs, id)
		}
		return nil
	})
	return r.SaveJSONNamed(ctx, storage.MaintFile, "plan-"+hex.EncodeToString(crypto.Random(12)), p, storage.SaveOptions{})
}

// forge stores forged content under the IDs of blobs that are stored
// already, in a pack and index of its own.
func (a *attacker) forge(ctx context.Context, r *repository.Repository) error {
	var victims []index.Location
	err := r.Index().Each(r.IndexSource(ctx), func(l index.Location) bool {
		if a.rng.IntN(4) == 0 {
			victims = append(victims, l)
		}
		return true
	})
	if err != nil {
		return err
	}
	for _, v := range victims {
		junk := make([]byte, v.RawLength)
		for i := range junk {
			junk[i] = byte(a.rng.IntN(256))
		}
		a.claim(v.ID)
		if _, _, err := forgeBlob(ctx, r, v.Type, v.ID, junk); err != nil {
			return err
		}
	}
	return r.Flush(ctx)
}

// claim records that the attacker forged a copy or an entry of the blob.
func (a *attacker) claim(id format.ID) {
	if a.claimed == nil {
		a.claimed = map[format.ID]bool{}
	}
	a.claimed[id] = true
}

// forgeBlob stores data under id whatever the index says (SaveBlobWithID
// skips IDs the index knows).
func forgeBlob(ctx context.Context, r *repository.Repository, t pack.BlobType, id format.ID, data []byte) (format.ID, bool, error) {
	for _, l := range r.Index().LookupAll(id, t) {
		r.Index().ExcludePack(l.Pack)
	}
	return r.SaveBlobWithID(ctx, t, id, data)
}

// garbage plants random bytes under plausible names of every type.
func (a *attacker) garbage(ctx context.Context) error {
	junk := make([]byte, 16+a.rng.IntN(200))
	for i := range junk {
		junk[i] = byte(a.rng.IntN(256))
	}
	if a.rng.IntN(2) == 0 {
		copy(junk, format.NewHeader(format.TypeMaint, 0).Bytes())
	}
	hashName := pack.Name(pack.Hash(junk))
	for _, h := range []storage.Handle{
		{Type: storage.IndexFile, Name: hashName},
		{Type: storage.SnapshotFile, Name: hashName},
		{Type: storage.PackFile, Name: hashName},
		{Type: storage.MaintFile, Name: "plan-" + hex.EncodeToString(junk[:12])},
		{Type: storage.MaintFile, Name: "lease"},
		{Type: storage.MaintFile, Name: "retention"},
		{Type: storage.SessionFile, Name: "s-" + hex.EncodeToString(junk[:12])},
	} {
		if err := a.be.Save(ctx, h, junk, storage.SaveOptions{}); err != nil && !errors.Is(err, storage.ErrPermission) {
			return err
		}
	}
	return nil
}

// replay uploads again objects that maintenance has removed since.
func (a *attacker) replay(ctx context.Context) error {
	hs := make([]storage.Handle, 0, len(a.seen))
	for h := range a.seen {
		hs = append(hs, h)
	}
	slices.SortFunc(hs, func(x, y storage.Handle) int {
		if c := stringsCompare(string(x.Type), string(y.Type)); c != 0 {
			return c
		}
		return stringsCompare(x.Name, y.Name)
	})
	for _, h := range hs {
		if a.rng.IntN(2) == 0 {
			continue
		}
		if err := a.be.Save(ctx, h, a.seen[h], storage.SaveOptions{}); err != nil && !errors.Is(err, storage.ErrPermission) {
			return err
		}
	}
	return nil
}

func stringsCompare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
