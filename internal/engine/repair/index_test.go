package repair_test

import (
	"context"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repair"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// TestIndexFromTrailers: with every index file gone and a planted pack of
// garbage, Index rebuilds one index file from the packs' trailers, leaves
// the garbage out (naming it), and every blob is found again.
func TestIndexFromTrailers(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	sn, files := w.backup(map[string]string{"a": "alpha content", "b": "beta content"})
	r := w.open()
	idx, err := r.List(ctx, storage.IndexFile)
	check(t, err)
	for _, fi := range idx {
		check(t, w.store.Remove(ctx, storage.Handle{Type: storage.IndexFile, Name: fi.Name}))
	}
	junk := []byte("not a pack at all, just bytes a writer planted")
	check(t, w.store.Save(ctx, storage.Handle{Type: storage.PackFile, Name: pack.Name(pack.Hash(junk))}, junk, storage.SaveOptions{}))

	var skipped []format.ID
	res, err := repair.Index(ctx, r, repair.IndexOptions{Skipped: func(pk format.ID, err error) { skipped = append(skipped, pk) }})
	check(t, err)
	if res.Damaged != 1 || len(skipped) != 1 || skipped[0] != pack.Hash(junk) {
		t.Fatalf("damaged %d, skipped %v: want the planted pack only", res.Damaged, skipped)
	}
	after, err := r.List(ctx, storage.IndexFile)
	check(t, err)
	if len(after) != 1 || after[0].Name != pack.Name(res.Index) {
		t.Fatalf("index files after: %v", after)
	}
	fresh := w.open()
	check(t, fresh.LoadIndex(ctx, true))
	for name, st := range files {
		if !fresh.Index().HasPack(st.pack) {
			t.Errorf("file %s: pack %s not indexed again", name, st.pack.Short())
		}
	}
	if _, ok := fresh.LookupBlob(pack.TreeBlob, sn.Tree); !ok {
		t.Error("the snapshot's tree is not indexed again")
	}
}

// TestMaintRemovesOnlyUnreadable: garbage under maint/ and sessions/ is
// found and removed; a live session of a writer stays.
func TestMaintRemovesOnlyUnreadable(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	r := w.open()
	sess, _, err := r.BeginWrite(ctx, "test")
	check(t, err)
	defer sess.End(ctx)
	for _, h := range []storage.Handle{{Type: storage.MaintFile, Name: "plan-0123456789ab"}, {Type: storage.SessionFile, Name: "s-0123456789ab"}, {Type: storage.MaintFile, Name: "whatever"}} {
		check(t, w.store.Save(ctx, h, []byte("garbage"), storage.SaveOptions{}))
	}
	dry, err := repair.Maint(ctx, r, true, nil)
	check(t, err)
	if len(dry) != 3 {
		t.Fatalf("dry run found %d objects, want 3: %v", len(dry), dry)
	}
	var reported int
	_, err = repair.Maint(ctx, r, false, func(u repository.Unreadable, removed bool) {
		if !removed {
			t.Errorf("%s/%s not removed", u.Type, u.Name)
		}
		reported++
	})
	check(t, err)
	left, err := repair.Maint(ctx, r, true, nil)
	check(t, err)
	if reported != 3 || len(left) != 0 {
		t.Fatalf("reported %d, left %v", reported, left)
	}
	sessions, err := r.Sessions(ctx)
	check(t, err)
	if len(sessions) != 1 {
		t.Fatalf("sessions after repair: %d, want the live one", len(sessions))
	}
}
