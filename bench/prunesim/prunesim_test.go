package main

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/checker"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/maintenance"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// TestSimulatedRepository generates a small repository and checks that
// what the measurement runs sees it as the layout says: the planned
// deletions are the packs the layout leaves unreferenced, partly used
// packs are repacked, the checker finds nothing wrong, and a data pack
// cannot be read.
func TestSimulatedRepository(t *testing.T) {
	ctx := context.Background()
	lay := layout{Seed: 7, Blobs: 10_000, PerPack: 8, PerIndexFile: 4_000, Snapshots: 20,
		FilesPerDir: 16, DirsPerMid: 4, Window: 4, DeadMidShare: 0.10, DeadFilePercent: 8}
	if err := lay.validate(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "repo")
	if err := generate(ctx, dir, &lay); err != nil {
		t.Fatal(err)
	}
	want := lay.expect()
	if want.deletable == 0 || want.partly == 0 {
		t.Fatalf("layout has %d wholly and %d partly unused packs: want some of both", want.deletable, want.partly)
	}
	r, err := open(ctx, dir, &lay)
	if err != nil {
		t.Fatal(err)
	}
	p, err := maintenance.PlanPrune(ctx, r, maintenance.Options{DryRun: true, MaxUnused: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Delete) != want.deletable || len(p.Repack) == 0 || p.Stats.Snapshots != lay.Snapshots {
		t.Errorf("plan deletes %d packs (want %d), repacks %d (want some), saw %d snapshots (want %d)",
			len(p.Delete), want.deletable, len(p.Repack), p.Stats.Snapshots, lay.Snapshots)
	}
	for _, pk := range p.Delete {
		if _, ok := lay.packNumber(pk); !ok {
			t.Errorf("plan deletes pack %s, not a data pack", pk.Short())
		}
	}
	err = r.Backend().Load(ctx, storage.Handle{Type: storage.PackFile, Name: pack.Name(lay.packID(0))}, 0, 0, nil)
	if !errors.Is(err, errSynthetic) {
		t.Errorf("loading a data pack: %v, want errSynthetic", err)
	}

	r, err = open(ctx, dir, &lay)
	if err != nil {
		t.Fatal(err)
	}
	res, err := checker.New(r, checker.Options{}).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 0 || res.Snapshots != lay.Snapshots || res.Packs <= lay.packs() {
		t.Errorf("check: %d snapshots, %d packs (want %d, and %d data packs plus the trees'), problems %v",
			res.Snapshots, res.Packs, lay.Snapshots, lay.packs(), res.Problems)
	}
}

// TestPackNumber checks that a pack ID gives its number back and that
// other IDs give none.
func TestPackNumber(t *testing.T) {
	lay := layout{Seed: 3, Blobs: 1000, PerPack: 10}
	for _, p := range []int{0, 1, 57, 99} {
		if got, ok := lay.packNumber(lay.packID(p)); !ok || got != p {
			t.Errorf("pack %d: got %d, %v", p, got, ok)
		}
	}
	for _, id := range []pack.ID{lay.packID(100), lay.blobID(5), {}} {
		if p, ok := lay.packNumber(id); ok {
			t.Errorf("%s names pack %d, want none", id.Short(), p)
		}
	}
}

// TestSimulatedSweep runs a whole prune on a small generated repository:
// the sweep reads the computed trailers of the packs it deletes, deletes
// exactly the packs the layout leaves unreferenced, and leaves a
// repository that checks clean (also seen by a backend opened afterwards).
func TestSimulatedSweep(t *testing.T) {
	ctx := context.Background()
	t.Cleanup(func() { removed.packs = nil })
	lay := layout{Seed: 9, Blobs: 10_000, PerPack: 8, PerIndexFile: 4_000, Snapshots: 20,
		FilesPerDir: 16, DirsPerMid: 4, Window: 4, DeadMidShare: 0.10, DeadFilePercent: 8}
	dir := filepath.Join(t.TempDir(), "repo")
	if err := generate(ctx, dir, &lay); err != nil {
		t.Fatal(err)
	}
	want := lay.expect()
	r, err := open(ctx, dir, &lay)
	if err != nil {
		t.Fatal(err)
	}
	p, err := maintenance.PlanPrune(ctx, r, maintenance.Options{MaxUnused: -1})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Execute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.PacksDeleted != want.deletable || !res.IndexCompacted || res.PlansSwept != 1 {
		t.Errorf("prune deleted %d packs (want %d), compacted %t, swept %d plans (want 1)", res.PacksDeleted, want.deletable, res.IndexCompacted, res.PlansSwept)
	}
	r, err = open(ctx, dir, &lay)
	if err != nil {
		t.Fatal(err)
	}
	after, err := checker.New(r, checker.Options{}).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := countDataPacks(t, r.Backend(), &lay); len(after.Problems) != 0 || n != lay.packs()-want.deletable {
		t.Errorf("check after the prune: %d data packs listed (want %d), problems %v", n, lay.packs()-want.deletable, after.Problems)
	}
}

// countDataPacks counts the data packs be lists.
func countDataPacks(t *testing.T, be storage.Backend, lay *layout) int {
	t.Helper()
	n := 0
	err := be.List(context.Background(), storage.PackFile, func(fi storage.FileInfo) error {
		id, err := format.ParseID(fi.Name)
		if err == nil {
			if _, ok := lay.packNumber(id); ok {
				n++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
