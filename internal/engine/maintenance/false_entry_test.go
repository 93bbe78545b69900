package maintenance

import (
	"context"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// TestFalseEntryOutlivingItsBlob: a backup host with the key and an
// append-only credential plants an index entry placing a blob in another
// stored pack, at an offset inside it, while the real copy exists. Once no
// snapshot needs the blob, prune deletes the real copy; the false entry
// must go with it, or it would be the blob's only entry and the next
// backup of that content would deduplicate against bytes that are not
// there (seen in TestAttackerSimulation: a restore failing on the blob).
func TestFalseEntryOutlivingItsBlob(t *testing.T) {
	ctx := context.Background()
	w := newPlanWorld(t)
	a, pa, _ := w.backup([]int{0})
	_, pb, _ := w.backup([]int{3, 4, 5, 6})

	r := w.repo()
	if err := r.LoadIndex(ctx, false); err != nil {
		t.Fatal(err)
	}
	real, ok := r.LookupBlob(pack.DataBlob, r.Hash(w.pool[0]))
	if !ok || real.Pack != pa[0] {
		t.Fatalf("pool 0 not in its own pack: %v %v", real, ok)
	}
	lie := real.Entry
	lie.Offset = format.HeaderSize
	f := &index.File{Packs: []pack.ID{pb[0]}, Entries: []index.FileEntry{{Pack: 0, Entry: lie}}}
	enc := index.EncodeFile(r.Key(), f)
	attacker := appendOnly{w.store}
	if err := attacker.Save(ctx, storage.Handle{Type: storage.IndexFile, Name: pack.Name(pack.Hash(enc))}, enc, storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}

	if err := snapshot.Remove(ctx, w.repo(), a); err != nil {
		t.Fatal(err)
	}
	// No repacking: the false entry makes B's pack look partly unused,
	// and a repack would delete the pack and the entry with it.
	res, err := Prune(ctx, w.repo(), Options{MaxUnused: -1})
	if err != nil {
		t.Fatal(err)
	}
	if w.packExists(pa[0]) || !w.packExists(pb[0]) {
		t.Fatal("want the pack of pool 0 deleted, the pack of B kept")
	}
	if res.FalseEntries != 1 {
		t.Errorf("prune dropped %d false entries, want 1: %+v", res.FalseEntries, res)
	}
	// The content comes back in a later backup: it must be stored again.
	w.backup([]int{0})
	w.verifyAll()
}

// TestPlantedNameDuringPrune: while a prune marks, a backup host with the
// key and an append-only credential stores an index file naming another
// blob ID (the real one's resident prefix, another rest) at the place of a
// blob a kept snapshot needs, in a pack that is to be repacked. The prune
// loads that file after the index it planned with was merged; taking the
// planted name for the real blob would leave the real blob behind when
// the pack is repacked. The prune may refuse (naming both IDs) or keep
// the pack; every snapshot must restore. The next prune, loading every
// file at once, tells the two IDs apart: it copies the real blob, drops
// the lie, and check finds nothing.
func TestPlantedNameDuringPrune(t *testing.T) {
	ctx := context.Background()
	w := newPlanWorld(t)
	b, pa, _ := w.backup([]int{0, 1})
	w.backup([]int{0}) // keeps pool 0 reachable, stored once
	if err := snapshot.Remove(ctx, w.repo(), b); err != nil {
		t.Fatal(err)
	}
	r := w.repo()
	if err := r.LoadIndex(ctx, false); err != nil {
		t.Fatal(err)
	}
	real, ok := r.LookupBlob(pack.DataBlob, r.Hash(w.pool[0]))
	if !ok || real.Pack != pa[0] {
		t.Fatalf("pool 0 not in its own pack: %v %v", real, ok)
	}
	lie := real.Entry
	lie.ID[31] ^= 1
	f := &index.File{Packs: []pack.ID{real.Pack}, Entries: []index.FileEntry{{Pack: 0, Entry: lie}}}
	enc := index.EncodeFile(r.Key(), f)
	if err := (appendOnly{w.store}).Save(ctx, storage.Handle{Type: storage.IndexFile, Name: pack.Name(pack.Hash(enc))}, enc, storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	plan, err := PlanPrune(ctx, r, Options{})
	if err != nil {
		if !strings.Contains(err.Error(), "disagree") || !strings.Contains(err.Error(), lie.ID.String()) || !strings.Contains(err.Error(), real.ID.String()) {
			t.Fatalf("prune planning with a planted name: %v", err)
		}
	} else {
		res, err := plan.Execute(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !w.packExists(pa[0]) && res.BlobsRepacked == 0 {
			t.Fatalf("the pack of pool 0 was deleted without a copy: %+v", res)
		}
	}
	verify := w.repo()
	if err := verify.LoadIndex(ctx, true); err != nil {
		t.Fatal(err)
	}
	all, _, err := snapshot.LoadAll(ctx, verify)
	if err != nil {
		t.Fatal(err)
	}
	for _, sn := range all {
		if err := verifySnapshot(ctx, verify, w.pool, sn, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Prune(ctx, w.repo(), Options{}); err != nil {
		t.Fatal(err)
	}
	if w.packExists(pa[0]) {
		t.Fatal("the pack of pool 0 (with the lie) was not repacked")
	}
	w.verifyAll()
}
