package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
)

func TestEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(entry{}); n != 29 {
		t.Fatalf("resident entry is %d bytes, want 29", n)
	}
	if n := unsafe.Sizeof([4]entry{}); n != 4*29 {
		t.Fatalf("entries are padded: 4 take %d bytes", n)
	}
}

// TestEntryFields checks that the packed fields give back what went in, at
// their limits, and that a location beyond them is kept whole instead.
func TestEntryFields(t *testing.T) {
	id := testID(3)
	for _, f := range []full{
		{id: id, typ: pack.DataBlob, pack: 0, offset: 8, length: 29, raw: 0},
		{id: id, typ: pack.TreeBlob, pack: maxPackNum, offset: maxOffset, length: maxLength, raw: pack.MaxBlobSize},
		{id: id, typ: pack.DataBlob, pack: 0x5555_5555, offset: 0x2aaa_aaaa, length: 0x1555_5555, raw: 0x0aaa_aaaa},
		{id: id, typ: pack.TreeBlob, pack: 1, offset: 1 << 29, length: 1 << 28, raw: 1<<28 - 1},
	} {
		e, ok := compact(f)
		if !ok {
			t.Fatalf("%+v does not fit", f)
		}
		pk, off, length, raw := e.fields()
		if e.pre() != prefixOf(id) || e.typ() != f.typ || e.pack() != f.pack || pk != f.pack || off != f.offset || length != f.length || raw != f.raw {
			t.Fatalf("%+v comes back as %v %d %d %d %d", f, e.typ(), pk, off, length, raw)
		}
	}
	for _, f := range []full{
		{id: id, typ: pack.DataBlob, pack: maxPackNum + 1, offset: 8, length: 100},
		{id: id, typ: pack.DataBlob, offset: maxOffset + 1, length: 100},
		{id: id, typ: pack.DataBlob, offset: 8, length: maxLength + 1},
		{id: id, typ: pack.DataBlob, offset: 8, length: 100, raw: maxLength + 1},
		{id: id, typ: pack.BlobType(3), offset: 8, length: 100},
	} {
		if _, ok := compact(f); ok {
			t.Fatalf("%+v fits", f)
		}
	}
	// An index file may place a blob anywhere in a pack of up to 4 GiB.
	x := New()
	var ad added
	far := pack.Entry{Type: pack.DataBlob, ID: testID(5), Offset: 3 << 30, Length: 1<<32 - 1, RawLength: 7}
	f := &File{Packs: []ID{packID(1)}, Entries: []FileEntry{{Entry: far}}}
	for k := uint64(10); k < 2000; k++ {
		f.Entries = append(f.Entries, FileEntry{Entry: tEntry(k, pack.DataBlob, 8+uint32(k))})
	}
	ad.file(x, f)
	if l, ok := x.Lookup(far.ID, pack.DataBlob); !ok || l.Entry != far || len(x.exact) != 1 {
		t.Fatalf("far entry: %+v %v (%d exact)", l, ok, len(x.exact))
	}
	n := 0
	mustEach(t, x, ad.src(), func(l Location) bool {
		if l.ID == far.ID && l.Entry != far {
			t.Fatalf("Each gives %+v", l)
		}
		n++
		return true
	})
	if n != len(f.Entries) {
		t.Fatalf("Each gives %d entries", n)
	}
}

// TestPrefixBoundary checks where the resident prefix ends: an ID splits
// into 14 bytes of prefix and 18 of suffix and joins back, an entry's
// prefix is read back without the location bytes after it, and IDs that
// differ in byte 13, the prefix's last, are kept apart without the exact
// table.
func TestPrefixBoundary(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 18))
	var prev ID
	for range 1000 {
		var id ID
		for k := 0; k < len(id); k += 8 {
			binary.LittleEndian.PutUint64(id[k:], rng.Uint64())
		}
		p, s := prefixOf(id), suffixOf(id)
		if p.lo&0xffff != 0 || joinID(p, s) != id {
			t.Fatalf("%x splits into %x %x", id, p, s)
		}
		if c := compareSuffix(s, suffixOf(prev)); c != bytes.Compare(id[prefixLen:], prev[prefixLen:]) {
			t.Fatalf("compareSuffix(%x, %x) = %d", id[prefixLen:], prev[prefixLen:], c)
		}
		f := full{id: id, typ: pack.TreeBlob, pack: maxPackNum, offset: maxOffset, length: maxLength, raw: maxLength}
		e, ok := compact(f)
		if !ok || e.pre() != p || e.typ() != f.typ {
			t.Fatalf("%x: entry gives prefix %x, type %v", id, e.pre(), e.typ())
		}
		if pk, off, length, raw := e.fields(); pk != f.pack || off != f.offset || length != f.length || raw != f.raw {
			t.Fatalf("%x: entry gives %d %d %d %d", id, pk, off, length, raw)
		}
		prev = id
	}
	x := New()
	var ad added
	a, b := testID(7), nearID(7, prefixLen-1, 1)
	f := &File{Packs: []ID{packID(1)}, Entries: []FileEntry{{Entry: entryOf(a, pack.DataBlob, 8)}, {Entry: entryOf(b, pack.DataBlob, 200)}}}
	want := map[ID][]Location{a: {{Pack: packID(1), Entry: entryOf(a, pack.DataBlob, 8)}}, b: {{Pack: packID(1), Entry: entryOf(b, pack.DataBlob, 200)}}}
	for k := uint64(100); k < 3000; k++ {
		e := entryOf(testID(k), pack.DataBlob, 300+uint32(k)*100)
		f.Entries = append(f.Entries, FileEntry{Entry: e})
		want[e.ID] = []Location{{Pack: packID(1), Entry: e}}
	}
	ad.file(x, f)
	checkExact(t, x, ad.src(), want)
	if len(x.collided) != 0 || len(x.exact) != 0 {
		t.Fatalf("IDs differing in byte %d taken for a collision: %d prefixes, %d exact entries", prefixLen-1, len(x.collided), len(x.exact))
	}
}

// collidingID returns an ID sharing testID(n)'s 14-byte prefix and
// differing in the rest: what two blobs would look like whose keyed hashes
// happen to agree in their first 112 bits.
func collidingID(n uint64, salt byte) ID {
	id := testID(n)
	id[20] ^= salt
	id[31] ^= 0x5a
	return id
}

// nearID returns testID(n) with byte at flipped by salt: with at 14 or 15
// (bytes a 16-byte prefix held) it shares the resident prefix, with at 13
// it does not.
func nearID(n uint64, at int, salt byte) ID {
	id := testID(n)
	id[at] ^= salt
	return id
}

func entryOf(id ID, t pack.BlobType, off uint32) pack.Entry {
	return pack.Entry{Type: t, ID: id, Offset: off, Length: 100, RawLength: 60}
}

// checkExact asserts that every blob of want is found exactly: in its own
// packs only, by Lookup, LookupAll and Has, and by Each with its full ID.
func checkExact(t *testing.T, x *Index, src Source, want map[ID][]Location) {
	t.Helper()
	for id, locs := range want {
		got := x.LookupAll(id, pack.DataBlob)
		if len(got) != len(locs) {
			t.Fatalf("blob %x: LookupAll gives %d locations, want %d: %+v", id[prefixLen:], len(got), len(locs), got)
		}
		for _, l := range locs {
			if !slices.Contains(got, l) {
				t.Fatalf("blob %x: location %+v missing from %+v", id[prefixLen:], l, got)
			}
		}
		l, ok := x.Lookup(id, pack.DataBlob)
		if !ok || !slices.Contains(locs, l) || !x.Has(id, pack.DataBlob) {
			t.Fatalf("blob %x: Lookup gives %+v %v", id[prefixLen:], l, ok)
		}
	}
	seen := map[ID]int{}
	var prev Location
	n := 0
	mustEach(t, x, src, func(l Location) bool {
		if n > 0 && (compareID(prev.ID, l.ID) > 0 || prev.ID == l.ID && prev.Type > l.Type) {
			t.Fatalf("Each out of order: %x after %x", l.ID, prev.ID)
		}
		if !slices.Contains(want[l.ID], l) {
			t.Fatalf("Each gives %+v, not a location of that blob", l)
		}
		prev = l
		seen[l.ID]++
		n++
		return true
	})
	for id, locs := range want {
		if seen[id] != len(locs) {
			t.Fatalf("Each gives blob %x %d times, want %d", id[prefixLen:], seen[id], len(locs))
		}
	}
}

// TestPrefixCollision forces two blob IDs that share their 14-byte prefix
// into the index through each way entries come in, and checks that both
// are answered exactly. The IDs differ in bytes 20 and 31, or only in byte
// 14 or 15, which were prefix when the index kept 16 bytes.
func TestPrefixCollision(t *testing.T) {
	for _, at := range []int{20, 14, 15} {
		collide := func(salt byte) ID { return nearID(7, at, salt) }
		if at == 20 {
			collide = func(salt byte) ID { return collidingID(7, salt) }
		}
		t.Run(fmt.Sprintf("byte %d", at), func(t *testing.T) { testPrefixCollision(t, collide) })
	}
}

func testPrefixCollision(t *testing.T, collide func(salt byte) ID) {
	a, b := collide(1), collide(2)
	pa, pb, pc := packID(1), packID(2), packID(3)
	loc := func(id, pk ID, off uint32) Location {
		return Location{Pack: pk, Entry: entryOf(id, pack.DataBlob, off)}
	}
	for _, way := range []string{"large batch", "small file", "packs"} {
		t.Run(way, func(t *testing.T) {
			x := New()
			var ad added
			want := map[ID][]Location{a: {loc(a, pa, 8)}, b: {loc(b, pb, 8)}}
			switch way {
			case "large batch":
				// Enough other entries that AddFiles sorts the batch into
				// the array instead of using the recent buffer.
				f := &File{Packs: []ID{pa, pb, pc}}
				f.Entries = append(f.Entries, FileEntry{Pack: 0, Entry: entryOf(a, pack.DataBlob, 8)}, FileEntry{Pack: 1, Entry: entryOf(b, pack.DataBlob, 8)})
				for k := uint64(100); k < 3000; k++ {
					e := entryOf(testID(k), pack.DataBlob, 8+uint32(k)*100)
					f.Entries = append(f.Entries, FileEntry{Pack: 2, Entry: e})
					want[e.ID] = []Location{{Pack: pc, Entry: e}}
				}
				ad.file(x, f)
			case "small file":
				ad.file(x, &File{Packs: []ID{pa, pb}, Entries: []FileEntry{{Pack: 0, Entry: entryOf(a, pack.DataBlob, 8)}, {Pack: 1, Entry: entryOf(b, pack.DataBlob, 8)}}})
			case "packs":
				ad.pack(x, pa, []pack.Entry{entryOf(a, pack.DataBlob, 8)})
				ad.pack(x, pb, []pack.Entry{entryOf(b, pack.DataBlob, 8)})
			}
			checkExact(t, x, ad.src(), want)
			// Each merged the recent buffer: the collision is known now.
			if len(x.collided) != 1 || len(x.exact) != 2 {
				t.Fatalf("collision not recorded: %d prefixes, %d exact entries", len(x.collided), len(x.exact))
			}
			// Once known, later entries under the prefix stay exact too: a
			// second copy of a, a third blob c, and a's copy excluded.
			c := collide(3)
			ad.pack(x, pc, []pack.Entry{entryOf(a, pack.DataBlob, 900), entryOf(c, pack.DataBlob, 1000)})
			want[a] = append(want[a], loc(a, pc, 900))
			want[c] = []Location{loc(c, pc, 1000)}
			checkExact(t, x, ad.src(), want)
			x.ExcludePack(pa)
			if l, ok := x.Lookup(a, pack.DataBlob); !ok || l != loc(a, pc, 900) {
				t.Fatalf("a with its first copy excluded: %+v %v", l, ok)
			}
			x.ExcludePack(pb)
			if x.Has(b, pack.DataBlob) || len(x.LookupAll(b, pack.DataBlob)) != 1 {
				t.Fatal("b in an excluded pack only is usable")
			}
			// A blob never added that shares the prefix is not found.
			if x.Has(collide(4), pack.DataBlob) || x.LookupAll(collide(4), pack.DataBlob) != nil {
				t.Fatal("an unknown blob under a collided prefix is found")
			}
			if x.Len() != len(want)+1 {
				t.Fatalf("Len %d, want %d", x.Len(), len(want)+1)
			}
		})
	}
}

// TestUnseenCollision is the residual case doc.go describes: a blob added
// after another with the same prefix was merged, with no single batch
// naming both. The index takes it for a copy of the first; Each still
// gives every entry its own full ID, because it matches the files' entries
// by pack and offset.
func TestUnseenCollision(t *testing.T) {
	a, b := collidingID(9, 1), collidingID(9, 2)
	x := New()
	var ad added
	ad.pack(x, packID(1), []pack.Entry{entryOf(a, pack.DataBlob, 8)})
	mustEach(t, x, ad.src(), func(Location) bool { return true }) // merges a
	ad.pack(x, packID(2), []pack.Entry{entryOf(b, pack.DataBlob, 8)})
	mustEach(t, x, ad.src(), func(Location) bool { return true })
	if len(x.collided) != 0 {
		t.Fatal("a collision across batches cannot be seen")
	}
	if got := x.LookupAll(b, pack.DataBlob); len(got) != 2 {
		t.Fatalf("b's lookup should give both entries under the prefix, got %+v", got)
	}
	var ids []ID
	mustEach(t, x, ad.src(), func(l Location) bool { ids = append(ids, l.ID); return true })
	if !slices.Contains(ids, a) || !slices.Contains(ids, b) || compareID(ids[0], ids[1]) > 0 {
		t.Fatalf("Each gives %x, want a and b in order", ids)
	}
}

// TestEachNeedsSource checks that Each says so when its Source misses an
// entry, or fails, instead of giving a blob a made-up ID.
func TestEachNeedsSource(t *testing.T) {
	x := New()
	x.AddPack(packID(1), []pack.Entry{tEntry(1, pack.DataBlob, 8), tEntry(2, pack.DataBlob, 300)})
	part := Files(&File{Packs: []ID{packID(1)}, Entries: []FileEntry{{Pack: 0, Entry: tEntry(1, pack.DataBlob, 8)}}})
	err := x.Each(part, func(Location) bool { t.Fatal("Each called fn despite a missing ID"); return false })
	if err == nil || !strings.Contains(err.Error(), "do not name 1 of the 2") || !strings.Contains(err.Error(), packID(1).Short()) {
		t.Fatalf("Each with a partial source: %v", err)
	}
	if _, err := x.PackContents(nil); err == nil {
		t.Fatal("PackContents without a source succeeded")
	}
	failing := func(func(*File) error) error { return errTest }
	if err := x.Each(failing, func(Location) bool { return true }); err == nil || !strings.Contains(err.Error(), errTest.Error()) {
		t.Fatalf("Each with a failing source: %v", err)
	}
}

var errTest = errors.New("source broke")

// TestSkewedIDs fills a few directory buckets with most of the entries (as
// a planted index file of chosen IDs could) and checks that lookups still
// find every blob, both types, and nothing else.
func TestSkewedIDs(t *testing.T) {
	x := New()
	var ad added
	f := &File{Packs: []ID{packID(1), packID(2)}}
	var ids []ID
	for k := uint64(0); k < 20000; k++ {
		id := testID(k)
		if k%10 != 0 {
			// Most IDs share their top 40 bits, in one of two runs.
			id[0], id[1], id[2], id[3], id[4] = 0x80, 0, 0, byte(k%2), 0
		}
		binary.BigEndian.PutUint64(id[6:], k) // unique prefixes
		ids = append(ids, id)
		f.Entries = append(f.Entries, FileEntry{Pack: uint32(k % 2), Entry: entryOf(id, pack.BlobType(1+k%3%2), 8+uint32(k))})
	}
	ad.file(x, f)
	if len(x.exact) != 0 {
		t.Fatal("distinct prefixes taken for collisions")
	}
	for k, id := range ids {
		want := pack.BlobType(1 + k%3%2)
		l, ok := x.Lookup(id, want)
		if !ok || l.ID != id || l.Type != want || l.Offset != 8+uint32(k) {
			t.Fatalf("blob %d: %+v %v", k, l, ok)
		}
		other := pack.TreeBlob + pack.DataBlob - want
		if x.Has(id, other) {
			t.Fatalf("blob %d found as %s", k, other)
		}
		miss := id
		miss[prefixLen-1] ^= 0x40
		if x.Has(miss, want) {
			t.Fatalf("a blob next to blob %d is found", k)
		}
	}
	n := 0
	mustEach(t, x, ad.src(), func(Location) bool { n++; return true })
	if n != len(ids) {
		t.Fatalf("Each gives %d", n)
	}
}

// TestEachRefusesDisagreeingFiles plants, after the index was loaded, a
// file that names another blob (same prefix, other suffix) at a real
// blob's pack and offset, as a concurrent compaction makes the source read
// every file stored now: Each and PackContents must refuse, naming both
// IDs, rather than hand the real blob's location out under the planted ID.
func TestEachRefusesDisagreeingFiles(t *testing.T) {
	x := New()
	real := &File{Packs: []ID{packID(1)}}
	for k := uint64(1); k <= 2000; k++ {
		real.Entries = append(real.Entries, FileEntry{Entry: tEntry(k, pack.DataBlob, uint32(k)*200)})
	}
	x.AddFiles([]*File{real})
	victim := real.Entries[700].Entry
	planted := &File{Packs: []ID{packID(1)}, Entries: []FileEntry{{Entry: victim}}}
	planted.Entries[0].ID = collidingID(701, 9)
	for _, src := range []Source{Files(real, planted), Files(planted, real)} {
		err := x.Each(src, func(Location) bool { return true })
		if err == nil || !strings.Contains(err.Error(), "disagree") || !strings.Contains(err.Error(), planted.Entries[0].ID.String()) || !strings.Contains(err.Error(), victim.ID.String()) {
			t.Fatalf("Each with a planted file: %v", err)
		}
		if _, err := x.PackContents(src); err == nil {
			t.Fatal("PackContents accepted the planted file")
		}
	}
	// The same blob named again at the same place (a compaction's copy
	// of an entry) is no disagreement.
	again := &File{Packs: []ID{packID(1)}, Entries: []FileEntry{{Entry: victim}}}
	if _, err := x.PackContents(Files(real, again)); err != nil {
		t.Fatal(err)
	}
}
