package index

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
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

// prefixLen is how many bytes of a blob ID the resident index keeps
// (doc.go, "Prefixes", argues the odds of two IDs sharing them).
const prefixLen = 14

// prefix holds the first 14 bytes of a blob ID as two big-endian words,
// lo's low 16 bits zero, so that comparing two of them is two integer
// comparisons.
type prefix struct{ hi, lo uint64 }

// loMask keeps the 6 prefix bytes of the ID's second word.
const loMask = ^uint64(0xffff)

func prefixOf(id ID) prefix {
	return prefix{binary.BigEndian.Uint64(id[0:]), binary.BigEndian.Uint64(id[8:]) & loMask}
}

// suffix is the rest of a blob ID after its resident prefix: 18 bytes,
// which Each holds for every entry while it runs.
type suffix [len(ID{}) - prefixLen]byte

func suffixOf(id ID) suffix {
	return suffix(id[prefixLen:])
}

func joinID(pre prefix, suf suffix) ID {
	var id ID
	binary.BigEndian.PutUint64(id[0:], pre.hi)
	binary.BigEndian.PutUint64(id[8:], pre.lo)
	copy(id[prefixLen:], suf[:])
	return id
}

func compareSuffix(a, b suffix) int { return bytes.Compare(a[:], b[:]) }

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

// entry is the resident form of one blob location: 29 bytes, with no
// padding between entries. Bytes 0-13 are the first 14 bytes of the blob
// ID (see doc.go for why that is enough, and where the full ID comes from
// when a caller needs it). Bytes 14-28 hold a 120-bit little-endian word:
//
//	bit 0        blob type: 0 data, 1 tree
//	bits 1-31    pack number
//	bits 32-61   offset in the pack
//	bits 62-90   sealed length
//	bits 91-119  plaintext length
//
// Every location a conforming writer makes fits: a plaintext is at most
// pack.MaxBlobSize (2^28), a sealed blob a little more, and a pack ends
// within 1 GiB (pack_size ≤ 512 MiB plus one last blob). A location that
// does not fit (an index file may claim offsets up to 4 GiB) is kept whole
// in the exact table instead, so nothing is refused or truncated.
type entry [prefixLen + 15]byte

const (
	maxPackNum = 1<<31 - 1
	maxOffset  = 1<<30 - 1
	maxLength  = 1<<29 - 1
)

// pre reads the prefix back; the second word's low 16 bits are the
// location's first bytes, masked off.
func (e *entry) pre() prefix {
	return prefix{binary.BigEndian.Uint64(e[0:]), binary.BigEndian.Uint64(e[8:]) & loMask}
}

// words returns the low 64 and the high 56 bits of the packed fields.
func (e *entry) words() (lo, hi uint64) {
	return binary.LittleEndian.Uint64(e[prefixLen:]), binary.LittleEndian.Uint64(e[prefixLen+7:]) >> 8
}

func (e *entry) typ() pack.BlobType { return pack.BlobType(e[prefixLen]&1) + pack.DataBlob }

func (e *entry) pack() uint32 {
	lo, _ := e.words()
	return uint32(lo>>1) & maxPackNum
}

func (e *entry) fields() (pk, offset, length, raw uint32) {
	lo, hi := e.words()
	return uint32(lo>>1) & maxPackNum, uint32(lo>>32) & maxOffset, uint32(lo>>62|hi<<2) & maxLength, uint32(hi>>27) & maxLength
}

func compareEntry(a, b *entry) int {
	if c := comparePrefix(a.pre(), b.pre()); c != 0 {
		return c
	}
	return int(a[prefixLen]&1) - int(b[prefixLen]&1)
}

// probe is an entry that sorts first among those of (p, t).
func probe(p prefix, t pack.BlobType) entry {
	var e entry
	binary.BigEndian.PutUint64(e[0:], p.hi)
	// p.lo's low 16 bits are zero: the location's bytes start clear.
	binary.BigEndian.PutUint64(e[8:], p.lo)
	e[prefixLen] = byte(t-pack.DataBlob) & 1
	return e
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
// fit it; such an entry is kept exact instead.
func compact(f full) (entry, bool) {
	if !f.typ.Valid() || f.pack > maxPackNum || f.offset > maxOffset || f.length > maxLength || f.raw > maxLength {
		return entry{}, false
	}
	e := probe(prefixOf(f.id), f.typ)
	lo := uint64(e[prefixLen]&1) | uint64(f.pack)<<1 | uint64(f.offset)<<32 | uint64(f.length)<<62
	hi := uint64(f.length)>>2 | uint64(f.raw)<<27
	binary.LittleEndian.PutUint64(e[prefixLen:], lo)
	var w [8]byte
	binary.LittleEndian.PutUint64(w[:], hi)
	copy(e[prefixLen+8:], w[:7])
	return e, true
}

type key struct {
	id  ID
	typ pack.BlobType
}

// Index is the in-memory blob index. It is safe for concurrent use.
type Index struct {
	mu       sync.RWMutex
	packs    []ID
	packNum  packTable
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
	return &Index{packNum: packTable{seed: maphash.MakeSeed()}, recent: map[key]full{}, collided: map[prefix]struct{}{}}
}

// packTable finds a pack's number by its ID: an open-addressing hash table
// of pack numbers (plus one; zero is an empty slot) over Index.packs,
// 5 to 11 bytes per pack where a Go map took about 60. The hash is seeded
// per index, so pack names chosen to collide cannot be prepared.
type packTable struct {
	seed  maphash.Seed
	slots []uint32
	n     int
}

func (t *packTable) find(packs []ID, p ID) (uint32, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	mask := uint64(len(t.slots) - 1)
	for i := maphash.Comparable(t.seed, p) & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return 0, false
		}
		if packs[s-1] == p {
			return s - 1, true
		}
	}
}

// insert adds pack number n (packs[n] is not in the table yet).
func (t *packTable) insert(packs []ID, n uint32) {
	if (t.n+1)*4 > len(t.slots)*3 {
		old := t.slots
		t.slots = make([]uint32, max(64, 2*len(old)))
		t.n = 0
		for _, s := range old {
			if s != 0 {
				t.insert(packs, s-1)
			}
		}
	}
	mask := uint64(len(t.slots) - 1)
	i := maphash.Comparable(t.seed, packs[n]) & mask
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = n + 1
	t.n++
}

func (x *Index) packNumber(p ID) uint32 {
	n, ok := x.packNum.find(x.packs, p)
	if !ok {
		n = uint32(len(x.packs))
		x.packs = append(x.packs, p)
		x.excluded = append(x.excluded, false)
		x.packNum.insert(x.packs, n)
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
	total := 0
	for _, f := range files {
		total += len(f.Entries)
	}
	if total <= 1024 {
		x.mu.Lock()
		defer x.mu.Unlock()
		for _, f := range files {
			nums := x.packNumbersLocked(f)
			for _, en := range f.Entries {
				x.addLocked(full{id: en.ID, typ: en.Type, pack: nums[en.Pack], offset: en.Offset, length: en.Length, raw: en.RawLength})
			}
		}
		x.maybeMergeLocked()
		return
	}
	b := x.NewBatch(total)
	for _, f := range files {
		b.Add(f)
	}
	// The files are at hand: reading them again cannot fail.
	_ = b.Finish(Files(files...))
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

// addExactLocked keeps entries with their full IDs. Like the recent
// buffer, it records an entry repeated at the same pack and offset once.
// It sorts once per call: a hostile file of entries that do not fit the
// resident form costs a sort, not a quadratic series of inserts.
func (x *Index) addExactLocked(fs ...full) {
	if len(fs) == 0 {
		return
	}
	x.exact = append(x.exact, fs...)
	slices.SortStableFunc(x.exact, func(a, b full) int { return compareFull(&a, &b) })
	out := x.exact[:0]
	for i, f := range x.exact {
		dup := false
		for j := len(out) - 1; j >= 0 && out[j].id == f.id && out[j].typ == f.typ; j-- {
			if out[j].pack == f.pack && out[j].offset == f.offset {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, x.exact[i])
		}
	}
	clear(x.exact[len(out):])
	x.exact = out
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
	// A new map: a cleared one keeps the memory of its largest size.
	x.recent = map[key]full{}
	x.dupes = nil
	slices.SortFunc(fulls, func(a, b full) int { return compareFull(&a, &b) })
	add := make([]entry, 0, len(fulls))
	var exact []full
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
				exact = append(exact, f)
			} else {
				add = append(add, e)
			}
		}
		i = j
	}
	x.addExactLocked(exact...)
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

// dirSpan is the least mean number of entries per directory bucket: a
// bucket of 32 to 64 entries is searched within 1 to 2 KiB, and the
// directory costs at most an eighth of a byte per blob.
const dirSpan = 32

// buildDirLocked indexes the sorted array by the top bits of the prefix,
// so that a lookup searches one bucket instead of the whole array. IDs
// are keyed hashes, spread evenly; a skewed set only makes some buckets
// longer.
func (x *Index) buildDirLocked() {
	n := len(x.main)
	if n > math.MaxUint32 {
		x.dir, x.dirBits = nil, 0
		return
	}
	bits := 0
	for bits < 32 && n>>(bits+1) >= dirSpan {
		bits++
	}
	buckets := 1 << bits
	dir := make([]uint32, buckets+1)
	j := 0
	for b := range buckets {
		for j < n && bucketOf(x.main[j].pre().hi, bits) < b {
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
	pr := probe(p, t)
	less := func(i int) bool { return compareEntry(&main[i], &pr) < 0 }
	if hi-lo > 4 {
		// IDs are keyed hashes, so the prefix's bits below the bucket's
		// say where in the bucket it falls: look there first, then widen
		// the step each time (a skewed bucket costs a binary search).
		g := lo + int(uint64(hi-lo)*((p.hi<<bits)>>32)>>32)
		// The guess is off by a few entries: walk to the answer through
		// adjacent memory first.
		if less(g) {
			for k := 0; k < 8 && g+1 < hi && less(g+1); k++ {
				g++
			}
			if g+1 >= hi || !less(g+1) {
				return g + 1
			}
		} else {
			for k := 0; k < 8 && g > lo && !less(g-1); k++ {
				g--
			}
			if g == lo || less(g-1) {
				return g
			}
		}
		step := 1
		if less(g) {
			for g+step < hi && less(g+step) {
				g += step
				step *= 2
			}
			lo, hi = g+1, min(hi, g+step)
		} else {
			for g-step >= lo && !less(g-step) {
				g -= step
				step *= 2
			}
			lo, hi = max(lo, g-step+1), g
		}
	}
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if less(m) {
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

func fullLocation(packs []ID, f *full) Location {
	return Location{Pack: packs[f.pack], Entry: pack.Entry{Type: f.typ, ID: f.id, Offset: f.offset, Length: f.length, RawLength: f.raw}}
}

func entryLocation(packs []ID, e *entry, id ID) Location {
	pk, offset, length, raw := e.fields()
	return Location{Pack: packs[pk], Entry: pack.Entry{Type: e.typ(), ID: id, Offset: offset, Length: length, RawLength: raw}}
}

// lookupLocked returns the first usable location; when all is non-nil it
// is called for every location, usable or not. Exact entries come first:
// for a collided prefix the sorted array can only hold entries added
// before the collision was seen, whose full IDs are unknown.
func (x *Index) lookupLocked(id ID, t pack.BlobType, all func(Location)) (Location, bool) {
	var found Location
	ok := false
	consider := func(pk uint32, l func() Location) {
		if all != nil {
			all(l())
		}
		if !ok && !x.excluded[pk] {
			found, ok = l(), true
		}
	}
	if len(x.exact) > 0 {
		pr := full{id: id, typ: t}
		i, _ := slices.BinarySearchFunc(x.exact, pr, func(a, b full) int { return compareFull(&a, &b) })
		for ; i < len(x.exact) && x.exact[i].id == id && x.exact[i].typ == t; i++ {
			f := &x.exact[i]
			consider(f.pack, func() Location { return fullLocation(x.packs, f) })
		}
	}
	p := prefixOf(id)
	for i := search(x.main, x.dir, x.dirBits, p, t); i < len(x.main) && x.main[i].pre() == p && x.main[i].typ() == t; i++ {
		e := &x.main[i]
		consider(e.pack(), func() Location { return entryLocation(x.packs, e, id) })
	}
	if len(x.recent) > 0 {
		if f, has := x.recent[key{id, t}]; has {
			consider(f.pack, func() Location { return fullLocation(x.packs, &f) })
			for i := range x.dupes {
				if d := &x.dupes[i]; d.id == id && d.typ == t {
					consider(d.pack, func() Location { return fullLocation(x.packs, d) })
				}
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
	n, ok := x.packNum.find(x.packs, p)
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
	_, ok := x.packNum.find(x.packs, p)
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
// files and packs added to it); it matches a file's entry to the resident
// one equal to it (prefix, type, pack, offset, lengths). More files naming
// different blobs at one place than the index holds entries for there are
// an error that names two of them: Each does not guess which file lies.
// It holds no lock while src or fn run and sees the entries added before
// it was called. Besides the resident index it needs 18 bytes and a bit
// per entry while it runs.
func (x *Index) Each(src Source, fn func(Location) bool) error {
	v := x.View()
	main, exact, packs := v.main, v.exact, v.packs
	sufs, err := v.match(src, nil)
	if err != nil {
		return err
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
			slices.SortStableFunc(group, func(a, b int) int { return compareSuffix(sufs[a], sufs[b]) })
		}
		for _, g := range group {
			l := entryLocation(packs, &main[g], joinID(main[g].pre(), sufs[g]))
			for j < len(exact) && compareFull(&exact[j], &full{id: l.ID, typ: l.Type}) < 0 {
				if !fn(fullLocation(packs, &exact[j])) {
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
		if !fn(fullLocation(packs, &exact[j])) {
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
