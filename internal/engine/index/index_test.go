package index

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
)

func testID(n uint64) ID {
	var id ID
	// Spread IDs over the key space so that sorting matters.
	binary.BigEndian.PutUint64(id[:], n*0x9e3779b97f4a7c15)
	binary.BigEndian.PutUint64(id[24:], n)
	return id
}

func packID(n uint64) ID {
	id := testID(n)
	id[31] ^= 0xff
	id[0] ^= 0x5a
	return id
}

func tEntry(n uint64, t pack.BlobType, off uint32) pack.Entry {
	return pack.Entry{Type: t, ID: testID(n), Offset: off, Length: 100 + uint32(n%50), RawLength: uint32(n % 1000)}
}

// added records what a test adds to an index, as the Source its Each
// reads full IDs from. It records before adding, so that a concurrent
// Each always finds what the index holds.
type added struct {
	mu    sync.Mutex
	files []*File
}

func (a *added) pack(x *Index, p ID, entries []pack.Entry) {
	f := &File{Packs: []ID{p}}
	for _, e := range entries {
		f.Entries = append(f.Entries, FileEntry{Pack: 0, Entry: e})
	}
	a.mu.Lock()
	a.files = append(a.files, f)
	a.mu.Unlock()
	x.AddPack(p, entries)
}

func (a *added) file(x *Index, f *File) {
	a.mu.Lock()
	a.files = append(a.files, f)
	a.mu.Unlock()
	x.AddFile(f)
}

func (a *added) src() Source {
	return func(yield func(*File) error) error {
		a.mu.Lock()
		files := slices.Clone(a.files)
		a.mu.Unlock()
		return Files(files...)(yield)
	}
}

func TestLookupEmpty(t *testing.T) {
	x := New()
	if _, ok := x.Lookup(testID(1), pack.DataBlob); ok || x.Has(testID(1), pack.DataBlob) || x.LookupAll(testID(1), pack.DataBlob) != nil || x.Len() != 0 {
		t.Fatal("empty index finds something")
	}
	if err := x.Each(nil, func(Location) bool { t.Fatal("Each on an empty index"); return false }); err != nil {
		t.Fatal(err)
	}
}

func TestTypesAreSeparate(t *testing.T) {
	x := New()
	x.AddPack(packID(1), []pack.Entry{tEntry(1, pack.DataBlob, 8)})
	if x.Has(testID(1), pack.TreeBlob) {
		t.Fatal("a data blob is found as a tree blob")
	}
	x.AddPack(packID(2), []pack.Entry{tEntry(1, pack.TreeBlob, 8)})
	d, _ := x.Lookup(testID(1), pack.DataBlob)
	tr, _ := x.Lookup(testID(1), pack.TreeBlob)
	if d.Pack != packID(1) || tr.Pack != packID(2) {
		t.Fatalf("data in %s, tree in %s", d.Pack.Short(), tr.Pack.Short())
	}
}

func TestDuplicates(t *testing.T) {
	x := New()
	var ad added
	a, b, c := packID(1), packID(2), packID(3)
	ad.pack(x, a, []pack.Entry{tEntry(7, pack.DataBlob, 8)})
	// The same entry again (same pack and offset) is not a second copy.
	ad.pack(x, a, []pack.Entry{tEntry(7, pack.DataBlob, 8)})
	if n := len(x.LookupAll(testID(7), pack.DataBlob)); n != 1 {
		t.Fatalf("identical entry recorded %d times", n)
	}
	// Copies in other packs are.
	ad.pack(x, b, []pack.Entry{tEntry(7, pack.DataBlob, 500)})
	ad.pack(x, c, []pack.Entry{tEntry(7, pack.DataBlob, 900)})
	locs := x.LookupAll(testID(7), pack.DataBlob)
	var packs []ID
	for _, l := range locs {
		packs = append(packs, l.Pack)
	}
	if len(locs) != 3 || !slices.Contains(packs, a) || !slices.Contains(packs, b) || !slices.Contains(packs, c) {
		t.Fatalf("copies: %v", packs)
	}
	if x.Len() != 3 {
		t.Fatalf("Len %d, want 3 (duplicates counted)", x.Len())
	}
	// Each (which merges) sees every copy, in ID order.
	n := 0
	mustEach(t, x, ad.src(), func(l Location) bool { n++; return true })
	if n != 3 {
		t.Fatalf("Each saw %d entries", n)
	}
	// After the merge, copies are still all found.
	if got := x.LookupAll(testID(7), pack.DataBlob); len(got) != 3 {
		t.Fatalf("after merge: %d copies", len(got))
	}
	pc, err := x.PackContents(ad.src())
	if err != nil {
		t.Fatal(err)
	}
	if len(pc) != 3 || len(pc[a]) != 1 || pc[b][0].Offset != 500 {
		t.Fatalf("pack contents %v", pc)
	}
}

func TestExcludedPacks(t *testing.T) {
	x := New()
	var ad added
	a, b := packID(1), packID(2)
	ad.pack(x, a, []pack.Entry{tEntry(1, pack.DataBlob, 8), tEntry(2, pack.DataBlob, 200)})
	ad.pack(x, b, []pack.Entry{tEntry(1, pack.DataBlob, 8)})
	x.ExcludePack(a)
	if !x.Excluded(a) || x.Excluded(b) {
		t.Fatal("Excluded wrong")
	}
	if l, ok := x.Lookup(testID(1), pack.DataBlob); !ok || l.Pack != b {
		t.Fatalf("blob with a usable copy: %v %v", l.Pack.Short(), ok)
	}
	if x.Has(testID(2), pack.DataBlob) {
		t.Fatal("blob only in an excluded pack is usable")
	}
	if len(x.LookupAll(testID(2), pack.DataBlob)) != 1 || len(x.LookupAll(testID(1), pack.DataBlob)) != 2 {
		t.Fatal("LookupAll must return excluded copies too")
	}
	x.ExcludePack(b)
	if x.Has(testID(1), pack.DataBlob) {
		t.Fatal("blob in excluded packs only is usable")
	}
	n := 0
	mustEach(t, x, ad.src(), func(Location) bool { n++; return true })
	if n != 3 || x.Len() != 3 {
		t.Fatalf("excluded entries must stay visible to Each and Len: %d, %d", n, x.Len())
	}
	// Excluding a pack the index has not seen yet (a plan's tombstone read
	// before the index) makes it known and excluded, and its entries
	// added later are unusable.
	c := packID(3)
	if x.HasPack(c) || x.Excluded(c) {
		t.Fatal("unknown pack")
	}
	x.ExcludePack(c)
	if !x.HasPack(c) || !x.Excluded(c) {
		t.Fatal("tombstone of an unknown pack lost")
	}
	ad.pack(x, c, []pack.Entry{tEntry(9, pack.DataBlob, 8)})
	if x.Has(testID(9), pack.DataBlob) || len(x.LookupAll(testID(9), pack.DataBlob)) != 1 {
		t.Fatal("entries of a pack excluded before it was added are usable")
	}
	if !slices.Equal(x.Packs(), []ID{a, b, c}) {
		t.Fatal("Packs lists the packs in the order they became known")
	}
}

// TestMergeAtScale adds 200k entries in batches, through both AddPack
// (recent buffer, merged in batches) and AddFile (large files appended to
// the sorted array directly), with duplicates, and checks every lookup.
func TestMergeAtScale(t *testing.T) {
	n := 200_000
	if raceEnabled || testing.Short() {
		n = 50_000 // the race detector makes this test ten times slower
	}
	x := New()
	var ad added
	rng := rand.New(rand.NewPCG(1, 2))
	order := rng.Perm(n)
	want := make(map[uint64]Location, n)
	for start, batchNo := 0, 0; start < n; batchNo++ {
		// Mostly small batches (through the recent buffer), and every
		// 60th a file of 5000 entries (appended to the sorted array and
		// re-sorted: each such file costs a sort of the whole index).
		size := 1 + rng.IntN(1000)
		large := batchNo%60 == 59
		if large {
			size = 5000
		}
		batch := order[start:min(n, start+size)]
		p := packID(uint64(start))
		var entries []pack.Entry
		off := uint32(8)
		for _, k := range batch {
			e := tEntry(uint64(k), pack.DataBlob, off)
			off += e.Length
			entries = append(entries, e)
			want[uint64(k)] = Location{Pack: p, Entry: e}
		}
		if !large && rng.IntN(2) == 0 {
			ad.pack(x, p, entries)
		} else {
			f := &File{Packs: []ID{packID(999_999), p}}
			for _, e := range entries {
				f.Entries = append(f.Entries, FileEntry{Pack: 1, Entry: e})
			}
			ad.file(x, f)
		}
		start += len(batch)
	}
	if x.Len() != n {
		t.Fatalf("Len %d, want %d", x.Len(), n)
	}
	// Every eighth blob now (the race detector makes lookups slow), all
	// of them after the duplicates below.
	for k := uint64(0); k < uint64(n); k += 8 {
		got, ok := x.Lookup(testID(k), pack.DataBlob)
		if !ok || got != want[k] {
			t.Fatalf("blob %d: %+v %v, want %+v", k, got, ok, want[k])
		}
	}
	// Second copies of a tenth of the blobs, in a new pack each time.
	dup := packID(1_000_000)
	var dupEntries []pack.Entry
	for k := uint64(0); k < uint64(n); k += 10 {
		dupEntries = append(dupEntries, tEntry(k, pack.DataBlob, 8+uint32(k)))
	}
	ad.pack(x, dup, dupEntries)
	if x.Len() != n+n/10 {
		t.Fatalf("Len %d after duplicates", x.Len())
	}
	for k, loc := range want {
		got, ok := x.Lookup(testID(k), pack.DataBlob)
		if !ok || (got != loc && (k%10 != 0 || got.Pack != dup)) {
			t.Fatalf("blob %d with a second copy: %+v %v", k, got, ok)
		}
	}
	x.ExcludePack(want[0].Pack)
	if l, ok := x.Lookup(testID(0), pack.DataBlob); !ok || l.Pack != dup {
		t.Fatalf("blob 0 after excluding its first pack: %+v %v", l, ok)
	}
	// Each visits every entry once, sorted by (ID, type).
	var prev *Location
	count := 0
	mustEach(t, x, ad.src(), func(l Location) bool {
		if prev != nil && compareID(prev.ID, l.ID) > 0 {
			t.Fatalf("Each out of order at %d", count)
		}
		p := l
		prev = &p
		count++
		return true
	})
	if count != n+n/10 {
		t.Fatalf("Each saw %d entries", count)
	}
	stopped := 0
	mustEach(t, x, ad.src(), func(Location) bool { stopped++; return stopped < 5 })
	if stopped != 5 {
		t.Fatal("Each did not stop")
	}
}

func TestConcurrentUse(t *testing.T) {
	x := New()
	var ad added
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3000 {
				k := uint64(w*10000 + i)
				ad.pack(x, packID(k/100), []pack.Entry{tEntry(k, pack.DataBlob, 8+uint32(i))})
				if !x.Has(testID(k), pack.DataBlob) {
					t.Errorf("blob %d lost", k)
					return
				}
				_ = x.LookupAll(testID(k/2), pack.DataBlob)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			mustEach(t, x, ad.src(), func(Location) bool { return true })
			_ = x.Len()
		}
	}()
	wg.Wait()
	if x.Len() != 12000 {
		t.Fatalf("Len %d", x.Len())
	}
}

func TestFileRoundTrip(t *testing.T) {
	key, _ := crypto.NewKey(crypto.Random(32))
	f := &File{Packs: []ID{packID(1), packID(2)}, Supersedes: []ID{testID(99)}}
	for k := uint64(0); k < 3000; k++ {
		f.Entries = append(f.Entries, FileEntry{Pack: uint32(k % 2), Entry: tEntry(3000-k, pack.BlobType(1+k%2), 8)})
	}
	b := EncodeFile(key, f)
	g, err := DecodeFile(key, b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.Packs, f.Packs) || !slices.Equal(g.Supersedes, f.Supersedes) || !slices.Equal(g.Entries, f.Entries) {
		t.Fatal("round trip differs")
	}
	if !slices.IsSortedFunc(g.Entries, func(a, b FileEntry) int { return compareID(a.ID, b.ID) }) {
		t.Fatal("entries not sorted by ID")
	}
	// Damage anywhere is an authentication failure.
	for _, i := range []int{8, len(b) / 2, len(b) - 1} {
		bad := slices.Clone(b)
		bad[i] ^= 1
		if _, err := DecodeFile(key, bad); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	if _, err := DecodeFile(key, b[:7]); err == nil {
		t.Fatal("truncated header accepted")
	}
}

// mustEach is Each that fails the test on an error.
func mustEach(t *testing.T, x *Index, src Source, fn func(Location) bool) {
	t.Helper()
	if err := x.Each(src, fn); err != nil {
		t.Error(err)
	}
}

// TestFileSplit checks that a split keeps every entry with its pack, in
// order, names only each part's packs, and puts Supersedes on the last.
func TestFileSplit(t *testing.T) {
	f := &File{Packs: []ID{packID(1), packID(2), packID(3)}, Supersedes: []ID{testID(99)}}
	for k := uint64(0); k < 10; k++ {
		f.Entries = append(f.Entries, FileEntry{Pack: uint32(k % 3), Entry: tEntry(k, pack.DataBlob, 8)})
	}
	if got := f.Split(10); len(got) != 1 || got[0] != f {
		t.Fatal("a file within the limit is split")
	}
	parts := f.Split(4)
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	k := 0
	for i, p := range parts {
		if (i == len(parts)-1) != (len(p.Supersedes) == 1) {
			t.Fatalf("part %d supersedes %v", i, p.Supersedes)
		}
		for _, en := range p.Entries {
			want := f.Entries[k]
			if en.Entry != want.Entry || p.Packs[en.Pack] != f.Packs[want.Pack] {
				t.Fatalf("part %d: entry %+v, want %+v", i, en, want)
			}
			k++
		}
		if len(p.Packs) > len(p.Entries) {
			t.Fatalf("part %d names %d packs for %d entries", i, len(p.Packs), len(p.Entries))
		}
	}
	if k != len(f.Entries) {
		t.Fatalf("parts hold %d entries, want %d", k, len(f.Entries))
	}
}
