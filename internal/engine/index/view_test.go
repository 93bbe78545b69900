package index

import (
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
)

// TestView checks that a view numbers every entry, resident or exact, that
// Find reports each blob's positions and At their slots, and that EachIn
// gives the full IDs of the positions asked for only.
func TestView(t *testing.T) {
	x := New()
	var ad added
	f := &File{Packs: []ID{packID(1), packID(2)}}
	for k := uint64(1); k <= 3000; k++ {
		f.Entries = append(f.Entries, FileEntry{Pack: uint32(k % 2), Entry: tEntry(k, pack.DataBlob, uint32(k)*10)})
	}
	// Two IDs sharing a prefix are kept exact; a copy of blob 5 elsewhere.
	f.Entries = append(f.Entries,
		FileEntry{Pack: 0, Entry: entryOf(collidingID(7, 1), pack.DataBlob, 99_999)},
		FileEntry{Pack: 0, Entry: tEntry(5, pack.DataBlob, 88_888)})
	ad.file(x, f)
	ad.pack(x, packID(3), []pack.Entry{tEntry(9000, pack.TreeBlob, 8)}) // recent, merged by View
	v := x.View()
	if v.Len() != len(f.Entries)+1 || v.NumPacks() != 3 {
		t.Fatalf("view of %d entries, %d packs", v.Len(), v.NumPacks())
	}
	want := map[ID]int{}
	for _, e := range f.Entries {
		want[e.ID]++
	}
	want[testID(9000)] = 1
	for id, n := range want {
		typ := pack.DataBlob
		if id == testID(9000) {
			typ = pack.TreeBlob
		}
		var got []int
		v.Find(id, typ, func(pos int) { got = append(got, pos) })
		if len(got) != n {
			t.Fatalf("Find %x: %d positions, want %d", id[:4], len(got), n)
		}
		for _, pos := range got {
			s := v.At(pos)
			l, ok := x.Lookup(id, typ)
			if !ok || s.Type != typ || (n == 1 && (v.Pack(s.Pack) != l.Pack || s.Offset != l.Offset || s.Length != l.Length || s.RawLength != l.RawLength)) {
				t.Fatalf("At(%d) = %+v, Lookup %+v", pos, s, l)
			}
		}
	}
	if pn, ok := v.PackNumber(packID(3)); !ok || v.Pack(pn) != packID(3) {
		t.Fatal("PackNumber of pack 3")
	}
	// EachIn over pack 2's positions: every blob of pack 2, none else.
	p2, _ := v.PackNumber(packID(2))
	seen := map[ID]bool{}
	err := v.EachIn(ad.src(), func(pos int) bool { return v.At(pos).Pack == p2 }, func(pos int, l Location) bool {
		if l.Pack != packID(2) || v.At(pos).Offset != l.Offset {
			t.Fatalf("EachIn gives %+v at %d", l, pos)
		}
		seen[l.ID] = true
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1500 {
		t.Fatalf("EachIn gives %d blobs of pack 2, want 1500", len(seen))
	}
	// The exact entry comes with its full ID.
	var got []ID
	if err := v.EachIn(ad.src(), func(pos int) bool { return pos >= len(v.main) }, func(_ int, l Location) bool {
		got = append(got, l.ID)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(v.exact) || len(got) < 2 {
		t.Fatalf("EachIn over the exact entries gives %d", len(got))
	}
}
