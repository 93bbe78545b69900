package index

import (
	"fmt"
	"slices"

	"github.com/bits-and-blooms/bitset"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
)

// View is a fixed picture of an Index's entries, for maintenance at the
// scale of a hundred million blobs: every entry has a position in
// [0, Len()), so that a caller keeps a bit per entry (reachable or not)
// where a set of blob IDs would take 50 bytes or more per blob. Entries
// added to the index after View was called are not in it. A View is safe
// for concurrent reads.
type View struct {
	main  []entry
	dir   []uint32
	bits  int
	exact []full
	packs []ID
	table packTable
}

// View returns a picture of the entries the index holds now.
func (x *Index) View() *View {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.mergeLocked()
	return &View{
		main: x.main, dir: x.dir, bits: x.dirBits,
		exact: slices.Clone(x.exact),
		packs: x.packs[:len(x.packs):len(x.packs)],
		table: packTable{seed: x.packNum.seed, slots: slices.Clone(x.packNum.slots), n: x.packNum.n},
	}
}

// Slot is where the entry at a position places its blob. The blob's full
// ID is not resident: EachIn reads it back.
type Slot struct {
	Pack      uint32 // pack number, see View.Pack
	Type      pack.BlobType
	Offset    uint32
	Length    uint32
	RawLength uint32
}

// Len is the number of positions (entries, duplicates counted).
func (v *View) Len() int { return len(v.main) + len(v.exact) }

// At returns the slot of the entry at pos.
func (v *View) At(pos int) Slot {
	if pos < len(v.main) {
		e := &v.main[pos]
		pk, off, length, raw := e.fields()
		return Slot{Pack: pk, Type: e.typ(), Offset: off, Length: length, RawLength: raw}
	}
	f := &v.exact[pos-len(v.main)]
	return Slot{Pack: f.pack, Type: f.typ, Offset: f.offset, Length: f.length, RawLength: f.raw}
}

// NumPacks is the number of packs the view knows; pack numbers run from 0
// to NumPacks()-1.
func (v *View) NumPacks() int { return len(v.packs) }

// Pack returns the ID of pack number n.
func (v *View) Pack(n uint32) ID { return v.packs[n] }

// PackNumber returns the number of the pack, if the view knows it.
func (v *View) PackNumber(p ID) (uint32, bool) { return v.table.find(v.packs, p) }

// Find calls fn with every position of the blob (excluded packs too). The
// resident array keeps a prefix of each ID, so Find may also report the
// positions of another blob with the same prefix that was indexed apart
// from this one (doc.go, "Prefixes"), never fewer than the blob's own: use
// it where reporting too many is safe, as marking blobs to keep is.
func (v *View) Find(id ID, t pack.BlobType, fn func(pos int)) {
	p := prefixOf(id)
	for i := search(v.main, v.dir, v.bits, p, t); i < len(v.main) && v.main[i].pre() == p && v.main[i].typ() == t; i++ {
		fn(i)
	}
	if len(v.exact) > 0 {
		i, _ := slices.BinarySearchFunc(v.exact, full{id: id, typ: t}, func(a, b full) int { return compareFull(&a, &b) })
		for ; i < len(v.exact) && v.exact[i].id == id && v.exact[i].typ == t; i++ {
			fn(len(v.main) + i)
		}
	}
}

// EachIn calls fn, in position order, for every position want accepts,
// with the entry's full ID read from src as Each does (with the same
// errors). It needs 18 bytes and 4 bytes per accepted position of the
// resident array while it runs.
func (v *View) EachIn(src Source, want func(pos int) bool, fn func(pos int, l Location) bool) error {
	var sel []uint32
	for i := range v.main {
		if want(i) {
			sel = append(sel, uint32(i))
		}
	}
	sufs, err := v.match(src, sel)
	if err != nil {
		return err
	}
	for k, i := range sel {
		if !fn(int(i), entryLocation(v.packs, &v.main[i], joinID(v.main[i].pre(), sufs[k]))) {
			return nil
		}
	}
	for j := range v.exact {
		if pos := len(v.main) + j; want(pos) && !fn(pos, fullLocation(v.packs, &v.exact[j])) {
			return nil
		}
	}
	return nil
}

// match reads the full IDs of resident entries from src: of the ones
// sel lists (ascending), or of every one when sel is nil. A file entry
// names a resident entry equal to its own resident form (prefix, type,
// pack, offset, lengths). It returns the suffixes in sel's order (or the
// array's).
func (v *View) match(src Source, sel []uint32) ([]suffix, error) {
	n := len(v.main)
	slot := func(i int) (int, bool) { return i, true }
	if sel != nil {
		n = len(sel)
		slot = func(i int) (int, bool) { return slices.BinarySearch(sel, uint32(i)) }
	}
	at := func(k int) int {
		if sel != nil {
			return int(sel[k])
		}
		return k
	}
	sufs := make([]suffix, n)
	if n == 0 {
		return sufs, nil
	}
	seen := bitset.New(uint(n))
	clashes, clash, clashID := 0, 0, ID{}
	if src == nil {
		src = Files()
	}
	main := v.main
	err := src(func(f *File) error {
		fnums := make([]int64, len(f.Packs))
		for i, p := range f.Packs {
			fnums[i] = -1
			if pn, ok := v.table.find(v.packs, p); ok {
				fnums[i] = int64(pn)
			}
		}
		for _, en := range f.Entries {
			if int(en.Pack) >= len(fnums) || fnums[en.Pack] < 0 {
				continue
			}
			pk := uint32(fnums[en.Pack])
			fe, ok := compact(full{id: en.ID, typ: en.Type, pack: pk, offset: en.Offset, length: en.Length, raw: en.RawLength})
			if !ok {
				continue // kept exact, with its full ID
			}
			p := prefixOf(en.ID)
			// The entry names one resident entry equal to it: the first
			// not named yet, or one named with this ID. (Equal resident
			// entries come from several files, which may name several
			// blobs there: each keeps one name.)
			s := suffixOf(en.ID)
			free, same, other := -1, false, -1
			for i := search(main, v.dir, v.bits, p, en.Type); i < len(main) && main[i].pre() == p && main[i].typ() == en.Type; i++ {
				if main[i] != fe {
					continue
				}
				k, ok := slot(i)
				switch {
				case !ok:
				case !seen.Test(uint(k)):
					if free < 0 {
						free = k
					}
				case sufs[k] == s:
					same = true
				default:
					other = k
				}
			}
			switch {
			case free >= 0:
				sufs[free] = s
				seen.Set(uint(free))
			case !same && other >= 0:
				// More files name blobs at this place than the index
				// holds entries for, with another ID: one of them lies,
				// and which is not for the index to guess (a file planted
				// after the index was loaded would otherwise rename a
				// real blob).
				if clashes == 0 {
					clash, clashID = other, en.ID
				}
				clashes++
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index: read the full blob IDs: %w", err)
	}
	if clashes > 0 {
		e := &main[at(clash)]
		pk, off, _, _ := e.fields()
		return nil, fmt.Errorf("index: the index files disagree about %d blob locations: %s blob %s in pack %s at offset %d is also named %s; 'bunker check' reads the pack",
			clashes, e.typ(), joinID(e.pre(), sufs[clash]), v.packs[pk].Short(), off, clashID)
	}
	// An entry no file named by itself is equal to one a file named: one
	// file's entry added twice (by the writer that uploaded the pack, and
	// again from the file it saved) or files gone since. It has that name.
	for k := range n {
		if seen.Test(uint(k)) {
			continue
		}
		i := at(k)
		p, t := main[i].pre(), main[i].typ()
		for j := search(main, v.dir, v.bits, p, t); j < len(main) && main[j].pre() == p && main[j].typ() == t; j++ {
			if kj, ok := slot(j); ok && j != i && main[j] == main[i] && seen.Test(uint(kj)) {
				sufs[k] = sufs[kj]
				seen.Set(uint(k))
				break
			}
		}
	}
	missing, first := 0, -1
	for k := range n {
		if !seen.Test(uint(k)) {
			missing++
			if first < 0 {
				first = k
			}
		}
	}
	if missing > 0 {
		e := &main[at(first)]
		pk, off, _, _ := e.fields()
		return nil, fmt.Errorf("index: the index files read do not name %d of the %d indexed blobs (the first: %s blob %016x%012x… in pack %s at offset %d)",
			missing, n, e.typ(), e.pre().hi, e.pre().lo>>16, v.packs[pk].Short(), off)
	}
	return sufs, nil
}
