package index

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
)

// Location is where one blob lives.
type Location struct {
	Pack ID
	pack.Entry
}

// prefix holds 16 bytes of a blob ID as two big-endian words, so that
// comparing two of them is two integer comparisons.
type prefix struct{ hi, lo uint64 }

func prefixOf(id ID) prefix {
	return prefix{binary.BigEndian.Uint64(id[0:]), binary.BigEndian.Uint64(id[8:])}
}

// suffixOf is the other half of the ID, in the same form.
func suffixOf(id ID) prefix {
	return prefix{binary.BigEndian.Uint64(id[16:]), binary.BigEndian.Uint64(id[24:])}
}

func joinID(pre, suf prefix) ID {
	var id ID
	binary.BigEndian.PutUint64(id[0:], pre.hi)
	binary.BigEndian.PutUint64(id[8:], pre.lo)
	binary.BigEndian.PutUint64(id[16:], suf.hi)
	binary.BigEndian.PutUint64(id[24:], suf.lo)
	return id
}

func comparePrefix(a, b prefix) int {
	switch {
	case a.hi != b.hi:
		if a.hi < b.hi {
			return -1
		}
		return 1
	case a.lo != b.lo:
		if a.lo < b.lo {
			return -1
		}
		return 1
	}
	return 0
}

// The raw length and the blob type share a word: a raw length is at most
// pack.MaxBlobSize (2^28), so 30 bits hold it and the top two hold the type.
const (
	rawBits = 30
	rawMask = 1<<rawBits - 1
)

// entry is the resident form of one blob location: 32 bytes. It keeps the
// first 16 bytes of the blob ID; see doc.go for why that is enough and
// where the full ID comes from when a caller needs it.
type entry struct {
	pre    prefix
	pack   uint32
	offset uint32
	length uint32
	rawTyp uint32 // raw length in the low rawBits bits, the blob type above
}

func (e *entry) typ() pack.BlobType { return pack.BlobType(e.rawTyp >> rawBits) }
func (e *entry) raw() uint32        { return e.rawTyp & rawMask }

func compareEntry(a, b *entry) int {
	if c := comparePrefix(a.pre, b.pre); c != 0 {
		return c
	}
	return int(a.rawTyp>>rawBits) - int(b.rawTyp>>rawBits)
}

// full is a location with the whole blob ID: recent additions (whose full
// IDs are seen when they are merged), and the entries kept exact because
// their prefix is shared by two different IDs.
type full struct {
	id     ID
	typ    pack.BlobType
	pack   uint32
	offset uint32
	length uint32
	raw    uint32
}

func compareFull(a, b *full) int {
	if c := compareID(a.id, b.id); c != 0 {
		return c
	}
	return int(a.typ) - int(b.typ)
}

// compact returns the resident form of f, or false when a field does not
// fit it (a raw length or type no decoded index file or pack trailer
// accepts); such an entry is kept exact instead.
func compact(f full) (entry, bool) {
	if f.raw > rawMask || uint32(f.typ) > 3 {
		return entry{}, false
	}
	return entry{pre: prefixOf(f.id), pack: f.pack, offset: f.offset, length: f.length, rawTyp: f.raw | uint32(f.typ)<<rawBits}, true
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
	main     []entry // sorted by (prefix, type); duplicates allowed; never modified in place
	dir      []uint32
	dirBits  int
	recent   map[key]full
	dupes    []full // recent additions whose key was already in recent
	// collided holds the prefixes seen with two different full IDs;
	// entries added under them go to exact, sorted by (ID, type).
	collided map[prefix]struct{}
	exact    []full
}

// New returns an empty index.
func New() *Index {
	return &Index{packNum: map[ID]uint32{}, recent: map[key]full{}, collided: map[prefix]struct{}{}}
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
		x.addLocked(full{id: en.ID, typ: en.Type, pack: n, offset: en.Offset, length: en.Length, raw: en.RawLength})
	}
	x.maybeMergeLocked()
}

// AddFile records every entry of a decoded index file.
func (x *Index) AddFile(f *File) { x.AddFiles([]*File{f}) }

// AddFiles records the entries of several index files. Large batches are
// sorted on their own and merged into the sorted array, which is far
// cheaper than hashing each entry. The batch's full IDs are seen here, so
// two different IDs of the batch that share a prefix are found and kept
// exact.
func (x *Index) AddFiles(files []*File) {
	x.mu.Lock()
	defer x.mu.Unlock()
	total := 0
	for _, f := range files {
		total += len(f.Entries)
	}
	if total <= 1024 {
		for _, f := range files {
			nums := x.packNumbersLocked(f)
			for _, en := range f.Entries {
				x.addLocked(full{id: en.ID, typ: en.Type, pack: nums[en.Pack], offset: en.Offset, length: en.Length, raw: en.RawLength})
			}
		}
		x.maybeMergeLocked()
		return
	}
	add := make([]entry, 0, total)
	for _, f := range files {
		nums := x.packNumbersLocked(f)
		for _, en := range f.Entries {
			fe := full{id: en.ID, typ: en.Type, pack: nums[en.Pack], offset: en.Offset, length: en.Length, raw: en.RawLength}
			if _, ok := x.collided[prefixOf(en.ID)]; ok {
				x.addExactLocked(fe)
				continue
			}
			e, ok := compact(fe)
			if !ok {
				x.addExactLocked(fe)
				continue
			}
			add = append(add, e)
		}
	}
	slices.SortFunc(add, func(a, b entry) int { return compareEntry(&a, &b) })
	// A prefix held by more than one entry is either one blob stored
	// twice (or as both types) or two blobs that collide: the files tell.
	var tied map[prefix]map[ID]bool
	for i := 1; i < len(add); i++ {
		if add[i].pre == add[i-1].pre {
			if tied == nil {
				tied = map[prefix]map[ID]bool{}
			}
			tied[add[i].pre] = map[ID]bool{}
		}
	}
	if tied != nil {
		for _, f := range files {
			for _, en := range f.Entries {
				if ids, ok := tied[prefixOf(en.ID)]; ok {
					ids[en.ID] = true
				}
			}
		}
		var hit map[prefix]bool
		for p, ids := range tied {
			if len(ids) > 1 {
				if hit == nil {
					hit = map[prefix]bool{}
				}
				hit[p] = true
			}
		}
		if hit != nil {
			add = slices.DeleteFunc(add, func(e entry) bool { return hit[e.pre] })
			for p := range hit {
				x.collided[p] = struct{}{}
			}
			for _, f := range files {
				nums := x.packNumbersLocked(f)
				for _, en := range f.Entries {
					if hit[prefixOf(en.ID)] {
						x.addExactLocked(full{id: en.ID, typ: en.Type, pack: nums[en.Pack], offset: en.Offset, length: en.Length, raw: en.RawLength})
					}
				}
			}
		}
	}
	x.mergeMainLocked(add)
}

func (x *Index) packNumbersLocked(f *File) []uint32 {
	nums := make([]uint32, len(f.Packs))
	for i, p := range f.Packs {
		nums[i] = x.packNumber(p)
	}
	return nums
}

func (x *Index) addLocked(f full) {
	if _, ok := x.collided[prefixOf(f.id)]; ok {
		x.addExactLocked(f)
		return
	}
	k := key{f.id, f.typ}
	if old, ok := x.recent[k]; ok {
		if old.pack == f.pack && old.offset == f.offset {
			return
		}
		x.dupes = append(x.dupes, f)
		return
	}
	x.recent[k] = f
}

// addExactLocked keeps f with its full ID. Like the recent buffer, it
// records an entry repeated at the same pack and offset once.
func (x *Index) addExactLocked(f full) {
	i, _ := slices.BinarySearchFunc(x.exact, f, func(a, b full) int { return compareFull(&a, &b) })
	for j := i; j < len(x.exact) && x.exact[j].id == f.id && x.exact[j].typ == f.typ; j++ {
		if x.exact[j].pack == f.pack && x.exact[j].offset == f.offset {
			return
		}
	}
	x.exact = slices.Insert(x.exact, i, f)
}

func (x *Index) maybeMergeLocked() {
	if len(x.recent)+len(x.dupes) < max(4096, len(x.main)/4) {
		return
	}
	x.mergeLocked()
}

// mergeLocked moves the recent additions into the sorted array. Their
// full IDs are seen one last time here: two of them that share a prefix
// are kept exact.
func (x *Index) mergeLocked() {
	if len(x.recent) == 0 && len(x.dupes) == 0 {
		return
	}
	fulls := make([]full, 0, len(x.recent)+len(x.dupes))
	for _, f := range x.recent {
		fulls = append(fulls, f)
	}
	fulls = append(fulls, x.dupes...)
	clear(x.recent)
	x.dupes = x.dupes[:0]
	slices.SortFunc(fulls, func(a, b full) int { return compareFull(&a, &b) })
	add := make([]entry, 0, len(fulls))
	for i := 0; i < len(fulls); {
		// Sorted by full ID, the entries sharing a prefix are adjacent.
		p := prefixOf(fulls[i].id)
		j, clash := i+1, false
		for ; j < len(fulls) && prefixOf(fulls[j].id) == p; j++ {
			clash = clash || fulls[j].id != fulls[i].id
		}
		if clash {
			x.collided[p] = struct{}{}
		}
		for _, f := range fulls[i:j] {
			e, ok := compact(f)
			if clash || !ok {
				x.addExactLocked(f)
			} else {
				add = append(add, e)
			}
		}
		i = j
	}
	x.mergeMainLocked(add)
}

// mergeMainLocked merges sorted entries into the sorted array. The array
// is replaced, not modified, so that Each can read a snapshot of it
// without holding the lock.
func (x *Index) mergeMainLocked(add []entry) {
	if len(add) == 0 {
		return
	}
	if len(x.main) == 0 {
		x.main = slices.Clip(add)
		x.buildDirLocked()
		return
	}
	merged := make([]entry, 0, len(x.main)+len(add))
	i, j := 0, 0
	for i < len(x.main) && j < len(add) {
		if compareEntry(&x.main[i], &add[j]) <= 0 {
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
	x.buildDirLocked()
}

// buildDirLocked indexes the sorted array by the top bits of the prefix,
// about eight entries per bucket (half a byte per blob), so that a lookup
// searches one bucket instead of the whole array. IDs are keyed hashes,
// spread evenly; a skewed set only makes some buckets longer.
func (x *Index) buildDirLocked() {
	n := len(x.main)
	if n > math.MaxUint32 {
		x.dir, x.dirBits = nil, 0
		return
	}
	bits := 0
	for bits < 32 && n>>(bits+1) >= 8 {
		bits++
	}
	buckets := 1 << bits
	dir := make([]uint32, buckets+1)
	j := 0
	for b := range buckets {
		for j < n && bucketOf(x.main[j].pre.hi, bits) < b {
			j++
		}
		dir[b] = uint32(j)
	}
	dir[buckets] = uint32(n)
	x.dir, x.dirBits = dir, bits
}

func bucketOf(hi uint64, bits int) int {
	if bits == 0 {
		return 0
	}
	return int(hi >> (64 - bits))
}

// search returns the position of the first entry of main not less than
// (p, t).
func search(main []entry, dir []uint32, bits int, p prefix, t pack.BlobType) int {
	lo, hi := 0, len(main)
	if dir != nil {
		b := bucketOf(p.hi, bits)
		lo, hi = int(dir[b]), int(dir[b+1])
	}
	probe := entry{pre: p, rawTyp: uint32(t) << rawBits}
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if compareEntry(&main[m], &probe) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// Lookup returns a location of the blob in a pack that is not excluded.
func (x *Index) Lookup(id ID, t pack.BlobType) (Location, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.lookupLocked(id, t, nil)
}

// LookupAll returns every location of the blob, excluded ones too.
func (x *Index) LookupAll(id ID, t pack.BlobType) []Location {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []Location
	x.lookupLocked(id, t, func(l Location) { out = append(out, l) })
	return out
}

func (x *Index) fullLocation(f full) Location {
	return Location{Pack: x.packs[f.pack], Entry: pack.Entry{Type: f.typ, ID: f.id, Offset: f.offset, Length: f.length, RawLength: f.raw}}
}

// lookupLocked returns the first usable location; when all is non-nil it
// is called for every location, usable or not. Exact entries come first:
// for a collided prefix the sorted array can only hold entries added
// before the collision was seen, whose full IDs are unknown.
func (x *Index) lookupLocked(id ID, t pack.BlobType, all func(Location)) (Location, bool) {
	var found Location
	ok := false
	consider := func(l Location, pk uint32) {
		if all != nil {
			all(l)
		}
		if !ok && !x.excluded[pk] {
			found, ok = l, true
		}
	}
	if len(x.exact) > 0 {
		probe := full{id: id, typ: t}
		i, _ := slices.BinarySearchFunc(x.exact, probe, func(a, b full) int { return compareFull(&a, &b) })
		for ; i < len(x.exact) && x.exact[i].id == id && x.exact[i].typ == t; i++ {
			consider(x.fullLocation(x.exact[i]), x.exact[i].pack)
		}
	}
	p := prefixOf(id)
	for i := search(x.main, x.dir, x.dirBits, p, t); i < len(x.main) && x.main[i].pre == p && x.main[i].typ() == t; i++ {
		e := &x.main[i]
		consider(Location{Pack: x.packs[e.pack], Entry: pack.Entry{Type: t, ID: id, Offset: e.offset, Length: e.length, RawLength: e.raw()}}, e.pack)
	}
	if f, has := x.recent[key{id, t}]; has {
		consider(x.fullLocation(f), f.pack)
		for _, d := range x.dupes {
			if d.id == id && d.typ == t {
				consider(x.fullLocation(d), d.pack)
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
	return len(x.main) + len(x.recent) + len(x.dupes) + len(x.exact)
}

// Source streams the index files (or file-shaped batches of entries) an
// Index was built from, one at a time. The resident index keeps only a
// prefix of each blob ID; Each reads the rest from its Source.
type Source func(yield func(*File) error) error

// Files is a Source over files held in memory.
func Files(files ...*File) Source {
	return func(yield func(*File) error) error {
		for _, f := range files {
			if err := yield(f); err != nil {
				return err
			}
		}
		return nil
	}
}

// Each calls fn for every entry, excluded ones too, in ID order, with its
// full ID read from src, which must name every entry the index holds (the
// files and packs added to it). It holds no lock while src or fn run; it
// sees the entries added before it was called. Besides the resident
// index it needs 16 bytes and a bit per entry while it runs.
func (x *Index) Each(src Source, fn func(Location) bool) error {
	x.mu.Lock()
	x.mergeLocked()
	main, dir, bits := x.main, x.dir, x.dirBits
	exact := slices.Clone(x.exact)
	packs := x.packs[:len(x.packs):len(x.packs)]
	nums := maps.Clone(x.packNum)
	x.mu.Unlock()
	suffix := make([]prefix, len(main))
	seen := make([]uint64, (len(main)+63)/64)
	if len(main) > 0 {
		if src == nil {
			src = Files()
		}
		err := src(func(f *File) error {
			fnums := make([]int64, len(f.Packs))
			for i, p := range f.Packs {
				fnums[i] = -1
				if n, ok := nums[p]; ok {
					fnums[i] = int64(n)
				}
			}
			for _, en := range f.Entries {
				if int(en.Pack) >= len(fnums) || fnums[en.Pack] < 0 {
					continue
				}
				pk := uint32(fnums[en.Pack])
				p := prefixOf(en.ID)
				for i := search(main, dir, bits, p, en.Type); i < len(main) && main[i].pre == p && main[i].typ() == en.Type; i++ {
					if main[i].pack == pk && main[i].offset == en.Offset {
						suffix[i] = suffixOf(en.ID)
						seen[i/64] |= 1 << (i % 64)
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("index: read the full blob IDs: %w", err)
		}
		missing := 0
		first := -1
		for i := range main {
			if seen[i/64]&(1<<(i%64)) == 0 {
				missing++
				if first < 0 {
					first = i
				}
			}
		}
		if missing > 0 {
			e := &main[first]
			return fmt.Errorf("index: the index files read do not name %d of the %d indexed blobs (the first: %s blob %016x%016x… in pack %s at offset %d)",
				missing, len(main), e.typ(), e.pre.hi, e.pre.lo, packs[e.pack].Short(), e.offset)
		}
	}
	loc := func(i int) Location {
		e := &main[i]
		return Location{Pack: packs[e.pack], Entry: pack.Entry{Type: e.typ(), ID: joinID(e.pre, suffix[i]), Offset: e.offset, Length: e.length, RawLength: e.raw()}}
	}
	j := 0
	var group []int
	for i := 0; i < len(main); {
		// A run of equal (prefix, type) holds one blob's copies, unless a
		// collision went unseen; ordering it by suffix keeps ID order.
		k := i + 1
		for k < len(main) && compareEntry(&main[k], &main[i]) == 0 {
			k++
		}
		group = group[:0]
		for g := i; g < k; g++ {
			group = append(group, g)
		}
		if k-i > 1 {
			slices.SortStableFunc(group, func(a, b int) int { return comparePrefix(suffix[a], suffix[b]) })
		}
		for _, g := range group {
			l := loc(g)
			for j < len(exact) && compareFull(&exact[j], &full{id: l.ID, typ: l.Type}) < 0 {
				if !fn(Location{Pack: packs[exact[j].pack], Entry: pack.Entry{Type: exact[j].typ, ID: exact[j].id, Offset: exact[j].offset, Length: exact[j].length, RawLength: exact[j].raw}}) {
					return nil
				}
				j++
			}
			if !fn(l) {
				return nil
			}
		}
		i = k
	}
	for ; j < len(exact); j++ {
		if !fn(Location{Pack: packs[exact[j].pack], Entry: pack.Entry{Type: exact[j].typ, ID: exact[j].id, Offset: exact[j].offset, Length: exact[j].length, RawLength: exact[j].raw}}) {
			return nil
		}
	}
	return nil
}

// PackContents groups the entries by pack, with full IDs read from src
// (see Each).
func (x *Index) PackContents(src Source) (map[ID][]pack.Entry, error) {
	out := map[ID][]pack.Entry{}
	err := x.Each(src, func(l Location) bool {
		out[l.Pack] = append(out[l.Pack], l.Entry)
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
