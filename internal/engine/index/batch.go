package index

import (
	"bytes"
	"fmt"
	"slices"
)

// Batch adds index files to an Index one at a time, as one batch: the
// files are not kept, so loading a repository's index needs the resident
// array and one file at a time, not every decoded file at once (about 52
// bytes per blob more). Like AddFiles it finds two different IDs of the
// batch that share a prefix and keeps them exact; the full IDs it needs
// for that are read again from the files, only when two entries of a
// prefix place it differently. A Batch is not safe for concurrent use;
// the Index stays usable while it is filled.
type Batch struct {
	x     *Index
	add   []entry
	exact []full
}

// NewBatch starts a batch of about expect entries: the resident array is
// allocated once at that size (more entries make it grow).
func (x *Index) NewBatch(expect int) *Batch {
	return &Batch{x: x, add: make([]entry, 0, max(expect, 0))}
}

// ExpectEntries is an upper bound of the entries index files of size
// bytes in all hold, for NewBatch.
func ExpectEntries(size int64) int { return int(size / fileEntrySize) }

// Add records the entries of f and returns the numbers of its packs.
func (b *Batch) Add(f *File) []uint32 {
	x := b.x
	x.mu.Lock()
	defer x.mu.Unlock()
	nums := x.packNumbersLocked(f)
	for _, en := range f.Entries {
		fe := full{id: en.ID, typ: en.Type, pack: nums[en.Pack], offset: en.Offset, length: en.Length, raw: en.RawLength}
		if _, ok := x.collided[prefixOf(en.ID)]; ok {
			b.exact = append(b.exact, fe)
			continue
		}
		e, ok := compact(fe)
		if !ok {
			b.exact = append(b.exact, fe)
			continue
		}
		b.add = append(b.add, e)
	}
	return nums
}

// Exclude marks pack number n unusable (see ExcludePack).
func (b *Batch) Exclude(n uint32) {
	b.x.mu.Lock()
	defer b.x.mu.Unlock()
	b.x.excluded[n] = true
}

// Finish merges the batch into the index. src must stream the files added
// (it is read only when two entries of a prefix place it differently). A
// file src no longer finds (storage.ErrNotExist from a compaction that
// removed it meanwhile) is for src to skip: its entries are then taken
// for copies of one blob, as entries added apart are (doc.go).
func (b *Batch) Finish(src Source) error {
	x := b.x
	add := b.add
	b.add = nil
	// Sorted by (prefix, type) as the array is, and by the location after
	// that, so that identical entries are adjacent.
	slices.SortFunc(add, func(a, b entry) int {
		if c := compareEntry(&a, &b); c != 0 {
			return c
		}
		return bytes.Compare(a[:], b[:])
	})
	// A prefix held by entries that differ is either one blob stored
	// twice (or as both types) or two blobs that collide: the files tell.
	// Identical entries (two files naming one entry: a compaction's file
	// beside the ones it supersedes) stay as they are, without reading
	// the files again; Each gives each of them the name of one file.
	var tied map[prefix]map[ID]bool
	for i := 1; i < len(add); i++ {
		if p := add[i].pre(); p == add[i-1].pre() && add[i] != add[i-1] {
			if tied == nil {
				tied = map[prefix]map[ID]bool{}
			}
			tied[p] = map[ID]bool{}
		}
	}
	var exact []full
	if tied != nil {
		var cand []full
		x.mu.RLock()
		packs, table := x.packs[:len(x.packs):len(x.packs)], packTable{seed: x.packNum.seed, slots: slices.Clone(x.packNum.slots), n: x.packNum.n}
		x.mu.RUnlock()
		err := src(func(f *File) error {
			for _, en := range f.Entries {
				ids, ok := tied[prefixOf(en.ID)]
				if !ok || int(en.Pack) >= len(f.Packs) {
					continue
				}
				pk, ok := table.find(packs, f.Packs[en.Pack])
				if !ok {
					continue
				}
				ids[en.ID] = true
				cand = append(cand, full{id: en.ID, typ: en.Type, pack: pk, offset: en.Offset, length: en.Length, raw: en.RawLength})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("index: read the full IDs of prefixes held twice: %w", err)
		}
		hit := map[prefix]bool{}
		for p, ids := range tied {
			if len(ids) > 1 {
				hit[p] = true
			}
		}
		if len(hit) > 0 {
			add = slices.DeleteFunc(add, func(e entry) bool { return hit[e.pre()] })
			for _, f := range cand {
				if hit[prefixOf(f.id)] {
					exact = append(exact, f)
				}
			}
		}
		x.mu.Lock()
		for p := range hit {
			x.collided[p] = struct{}{}
		}
		x.mu.Unlock()
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if cap(x.packs)-len(x.packs) > len(x.packs)/8 {
		// append's slack would cost up to half of 32 bytes per pack for good.
		x.packs = slices.Clone(x.packs)
		x.excluded = slices.Clone(x.excluded)
	}
	x.addExactLocked(append(b.exact, exact...)...)
	b.exact = nil
	x.mergeMainLocked(add)
	return nil
}
