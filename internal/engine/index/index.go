package index

import (
	"slices"
	"sync"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
)

// Location is where one blob lives.
type Location struct {
	Pack ID
	pack.Entry
}

// entry is the in-memory form: 32+1+4*4 bytes.
type entry struct {
	id     ID
	typ    pack.BlobType
	pack   uint32
	offset uint32
	length uint32
	raw    uint32
}

func (e *entry) less(o *entry) int {
	if c := compareID(e.id, o.id); c != 0 {
		return c
	}
	return int(e.typ) - int(o.typ)
}

type key struct {
	id  ID
	typ pack.BlobType
}

// Index is the in-memory blob index. It is safe for concurrent use.
type Index struct {
	mu       sync.RWMutex
	packs    []ID
	packNum  map[ID]uint32
	excluded []bool  // per pack: tombstoned by a maintenance plan, or known lost
	main     []entry // sorted by (id, type); duplicates allowed
	recent   map[key]entry
	dupes    []entry // recent additions whose key was already in recent
}

// New returns an empty index.
func New() *Index {
	return &Index{packNum: map[ID]uint32{}, recent: map[key]entry{}}
}

func (x *Index) packNumber(p ID) uint32 {
	n, ok := x.packNum[p]
	if !ok {
		n = uint32(len(x.packs))
		x.packs = append(x.packs, p)
		x.excluded = append(x.excluded, false)
		x.packNum[p] = n
	}
	return n
}

// AddPack records the blobs of one pack.
func (x *Index) AddPack(packID ID, entries []pack.Entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := x.packNumber(packID)
	for _, en := range entries {
		x.addLocked(entry{id: en.ID, typ: en.Type, pack: n, offset: en.Offset, length: en.Length, raw: en.RawLength})
	}
	x.maybeMergeLocked()
}

// AddFile records every entry of a decoded index file.
func (x *Index) AddFile(f *File) { x.AddFiles([]*File{f}) }

// AddFiles records the entries of several index files. Large batches are
// appended to the sorted array and sorted once, which is far cheaper than
// hashing each entry or re-sorting per file.
func (x *Index) AddFiles(files []*File) {
	x.mu.Lock()
	defer x.mu.Unlock()
	total := 0
	for _, f := range files {
		total += len(f.Entries)
	}
	big := total > 1024
	if big {
		x.main = slices.Grow(x.main, total)
	}
	for _, f := range files {
		nums := make([]uint32, len(f.Packs))
		for i, p := range f.Packs {
			nums[i] = x.packNumber(p)
		}
		for _, en := range f.Entries {
			e := entry{id: en.ID, typ: en.Type, pack: nums[en.Pack], offset: en.Offset, length: en.Length, raw: en.RawLength}
			if big {
				x.main = append(x.main, e)
			} else {
				x.addLocked(e)
			}
		}
	}
	if big {
		x.sortMainLocked()
		return
	}
	x.maybeMergeLocked()
}

func (x *Index) sortMainLocked() {
	slices.SortFunc(x.main, func(a, b entry) int { return a.less(&b) })
}

func (x *Index) addLocked(e entry) {
	k := key{e.id, e.typ}
	if old, ok := x.recent[k]; ok {
		if old.pack == e.pack && old.offset == e.offset {
			return
		}
		x.dupes = append(x.dupes, e)
		return
	}
	x.recent[k] = e
}

func (x *Index) maybeMergeLocked() {
	if len(x.recent)+len(x.dupes) < max(4096, len(x.main)/4) {
		return
	}
	x.mergeLocked()
}

func (x *Index) mergeLocked() {
	if len(x.recent) == 0 && len(x.dupes) == 0 {
		return
	}
	add := make([]entry, 0, len(x.recent)+len(x.dupes))
	for _, e := range x.recent {
		add = append(add, e)
	}
	add = append(add, x.dupes...)
	slices.SortFunc(add, func(a, b entry) int { return a.less(&b) })
	merged := make([]entry, 0, len(x.main)+len(add))
	i, j := 0, 0
	for i < len(x.main) && j < len(add) {
		if x.main[i].less(&add[j]) <= 0 {
			merged = append(merged, x.main[i])
			i++
		} else {
			merged = append(merged, add[j])
			j++
		}
	}
	merged = append(merged, x.main[i:]...)
	merged = append(merged, add[j:]...)
	x.main = merged
	clear(x.recent)
	x.dupes = x.dupes[:0]
}

// Lookup returns a location of the blob in a pack that is not excluded.
func (x *Index) Lookup(id ID, t pack.BlobType) (Location, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.lookupLocked(id, t, nil)
	if !ok {
		return Location{}, false
	}
	return x.location(e), true
}

// LookupAll returns every location of the blob, excluded ones too.
func (x *Index) LookupAll(id ID, t pack.BlobType) []Location {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []Location
	x.lookupLocked(id, t, func(e entry) { out = append(out, x.location(e)) })
	return out
}

func (x *Index) location(e entry) Location {
	return Location{Pack: x.packs[e.pack], Entry: pack.Entry{Type: e.typ, ID: e.id, Offset: e.offset, Length: e.length, RawLength: e.raw}}
}

// lookupLocked returns the first usable entry; when all is non-nil it is
// called for every entry, usable or not.
func (x *Index) lookupLocked(id ID, t pack.BlobType, all func(entry)) (entry, bool) {
	var found entry
	ok := false
	consider := func(e entry) {
		if all != nil {
			all(e)
		}
		if !ok && !x.excluded[e.pack] {
			found, ok = e, true
		}
	}
	probe := entry{id: id, typ: t}
	i, _ := slices.BinarySearchFunc(x.main, probe, func(a, b entry) int { return a.less(&b) })
	for ; i < len(x.main) && x.main[i].id == id && x.main[i].typ == t; i++ {
		consider(x.main[i])
	}
	if e, has := x.recent[key{id, t}]; has {
		consider(e)
		for _, d := range x.dupes {
			if d.id == id && d.typ == t {
				consider(d)
			}
		}
	}
	return found, ok
}

// Has reports whether a usable copy of the blob is indexed.
func (x *Index) Has(id ID, t pack.BlobType) bool {
	_, ok := x.Lookup(id, t)
	return ok
}

// ExcludePack marks a pack's entries unusable (tombstoned by a maintenance
// plan, or found missing). The entries stay visible to LookupAll and Each.
func (x *Index) ExcludePack(p ID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.excluded[x.packNumber(p)] = true
}

// Excluded reports whether the pack is excluded.
func (x *Index) Excluded(p ID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n, ok := x.packNum[p]
	return ok && x.excluded[n]
}

// Packs returns the IDs of every pack with entries (or mentioned).
func (x *Index) Packs() []ID {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return slices.Clone(x.packs)
}

// HasPack reports whether the index knows the pack.
func (x *Index) HasPack(p ID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, ok := x.packNum[p]
	return ok
}

// Len is the number of entries (duplicates counted).
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.main) + len(x.recent) + len(x.dupes)
}

// Each calls fn for every entry, excluded ones too, in ID order. fn must not
// call back into the index.
func (x *Index) Each(fn func(Location) bool) {
	x.mu.Lock()
	x.mergeLocked()
	x.mu.Unlock()
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, e := range x.main {
		if !fn(x.location(e)) {
			return
		}
	}
}

// PackContents groups the entries by pack.
func (x *Index) PackContents() map[ID][]pack.Entry {
	out := map[ID][]pack.Entry{}
	x.Each(func(l Location) bool {
		out[l.Pack] = append(out[l.Pack], l.Entry)
		return true
	})
	return out
}
