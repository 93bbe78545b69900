package repository_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// TestIndexSource checks that Each over IndexSource gives the full ID of
// every blob the index holds, wherever its entry came from: index files
// loaded, written by this repository, a pack uploaded but not yet in a file,
// and, after a compaction removed a loaded file, the file that replaced it.
func TestIndexSource(t *testing.T) {
	ctx := context.Background()
	w := newCommitWorld(t)
	var want []pack.Entry
	save := func(r *repository.Repository, s string) {
		t.Helper()
		id, _, err := r.SaveBlob(ctx, pack.DataBlob, []byte(s))
		check(t, err)
		want = append(want, pack.Entry{Type: pack.DataBlob, ID: id})
	}
	old := w.open(nil)
	for i := range 50 {
		save(old, fmt.Sprintf("loaded blob %d", i))
	}
	check(t, old.Flush(ctx))
	r := w.open(nil)
	check(t, r.LoadIndex(ctx, true))
	for i := range 50 {
		save(r, fmt.Sprintf("flushed blob %d", i))
	}
	check(t, r.Flush(ctx))
	// A blob bigger than a pack fills one: it is uploaded at once, and
	// indexed in memory, but in no index file until the next Flush.
	big := crypto.Random(1<<20 + 1000)
	save(r, string(big))
	for deadline := time.Now().Add(10 * time.Second); !r.Index().Has(want[len(want)-1].ID, pack.DataBlob); {
		if time.Now().After(deadline) {
			t.Fatal("the full pack was not uploaded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 5 {
		save(r, fmt.Sprintf("unflushed blob %d", i))
	}
	// Only uploaded packs are in the index; the open pack is not.
	want = want[:len(want)-5]
	list := func(src index.Source) []index.ID {
		t.Helper()
		var got []index.ID
		check(t, r.Index().Each(src, func(l index.Location) bool {
			got = append(got, l.ID)
			return true
		}))
		return got
	}
	got := list(r.IndexSource(ctx))
	if len(got) != len(want) {
		t.Fatalf("Each gives %d blobs, want %d", len(got), len(want))
	}
	for _, e := range want {
		if !slices.Contains(got, e.ID) {
			t.Fatalf("blob %s missing", e.ID.Short())
		}
	}
	// A compaction replaces the file r loaded with one naming the same
	// entries and removes it: the source finds the replacement.
	files, _, err := r.IndexFiles(ctx)
	check(t, err)
	all := &index.File{}
	var names []index.ID
	for id, f := range files {
		names = append(names, id)
		for _, e := range f.Entries {
			all.Packs = append(all.Packs, f.Packs[e.Pack])
			e.Pack = uint32(len(all.Packs) - 1)
			all.Entries = append(all.Entries, e)
		}
	}
	all.Supersedes = names
	b := index.EncodeFile(r.Key(), all)
	check(t, r.Backend().Save(ctx, storage.Handle{Type: storage.IndexFile, Name: pack.Name(pack.Hash(b))}, b, storage.SaveOptions{}))
	for _, id := range names {
		check(t, r.Backend().Remove(ctx, storage.Handle{Type: storage.IndexFile, Name: pack.Name(id)}))
	}
	if again := list(r.IndexSource(ctx)); !slices.Equal(again, got) {
		t.Fatalf("after the compaction Each gives %d blobs, before %d", len(again), len(got))
	}
	// Entries no file names any more are an error, not made-up IDs.
	check(t, r.Backend().Remove(ctx, storage.Handle{Type: storage.IndexFile, Name: pack.Name(pack.Hash(b))}))
	if err := r.Index().Each(r.IndexSource(ctx), func(index.Location) bool { return true }); err == nil {
		t.Fatal("Each succeeded with the index files gone")
	}
}
