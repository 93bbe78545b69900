package repository_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
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

// TestLoadIndexStreamed checks what the streamed load keeps of each file:
// a pack that only a superseded file names is excluded (readable as a last
// resort, never deduplicated against), packs a current file names are not,
// whichever order the files stream in; a damaged file is skipped by a
// lenient load, an error naming it for a strict one, and reported by
// LoadIndexChecked; a later load adds only the files that appeared since.
func TestLoadIndexStreamed(t *testing.T) {
	ctx := context.Background()
	w := newCommitWorld(t)
	r0 := w.open(nil)
	save := func(b []byte) pack.ID {
		t.Helper()
		id := pack.Hash(b)
		check(t, r0.Backend().Save(ctx, storage.Handle{Type: storage.IndexFile, Name: pack.Name(id)}, b, storage.SaveOptions{}))
		return id
	}
	blob := func(n byte) pack.Entry {
		return pack.Entry{Type: pack.DataBlob, ID: pack.ID{n, 1, 2, 3}, Offset: 100 * uint32(n), Length: 80, RawLength: 50}
	}
	p1, p2, p3 := pack.ID{0xa1}, pack.ID{0xa2}, pack.ID{0xa3}
	a := save(index.EncodeFile(r0.Key(), &index.File{Packs: []pack.ID{p1, p2}, Entries: []index.FileEntry{{Pack: 0, Entry: blob(1)}, {Pack: 1, Entry: blob(2)}}}))
	save(index.EncodeFile(r0.Key(), &index.File{Packs: []pack.ID{p1}, Supersedes: []pack.ID{a}, Entries: []index.FileEntry{{Pack: 0, Entry: blob(1)}}}))
	save(index.EncodeFile(r0.Key(), &index.File{Packs: []pack.ID{p3}, Entries: []index.FileEntry{{Pack: 0, Entry: blob(3)}}}))
	damaged := save(crypto.Random(300))

	if err := w.open(nil).LoadIndex(ctx, true); err == nil || !strings.Contains(err.Error(), damaged.Short()) {
		t.Fatalf("strict load with a damaged file: %v", err)
	}
	errs, err := w.open(nil).LoadIndexChecked(ctx)
	check(t, err)
	if len(errs) != 1 || errs[pack.Name(damaged)] == nil {
		t.Fatalf("LoadIndexChecked reports %v, want the damaged file", errs)
	}
	r := w.open(nil)
	check(t, r.LoadIndex(ctx, false))
	x := r.Index()
	if !x.Excluded(p2) || x.Excluded(p1) || x.Excluded(p3) {
		t.Fatalf("excluded: p1 %v p2 %v p3 %v, want only p2", x.Excluded(p1), x.Excluded(p2), x.Excluded(p3))
	}
	if _, ok := x.Lookup(blob(2).ID, pack.DataBlob); ok || len(x.LookupAll(blob(2).ID, pack.DataBlob)) != 1 {
		t.Fatal("the blob only a superseded file names is usable, or gone")
	}
	for _, n := range []byte{1, 3} {
		if l, ok := x.Lookup(blob(n).ID, pack.DataBlob); !ok || l.Entry != blob(n) {
			t.Fatalf("blob %d: %+v %v", n, l, ok)
		}
	}
	before := x.Len()
	save(index.EncodeFile(r0.Key(), &index.File{Packs: []pack.ID{p3}, Entries: []index.FileEntry{{Pack: 0, Entry: blob(4)}}}))
	check(t, r.LoadIndex(ctx, false))
	if got := x.Len(); got != before+1 {
		t.Fatalf("a second load holds %d entries, want %d (the new file's only)", got, before+1)
	}
}
