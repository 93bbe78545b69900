package checker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path"
	"slices"
	"sort"
	"sync"

	"github.com/bunkerbackup/bunker/internal/bufpool"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// ID of a blob, pack or snapshot.
type ID = format.ID

// Problem is one finding.
type Problem struct {
	Kind    string `json:"kind"` // index, pack, snapshot, tree, blob, maint, session
	Object  string `json:"object"`
	Message string `json:"message"`
	// Harmless problems (unreferenced packs left by an interrupted backup)
	// do not make the check fail.
	Harmless bool `json:"harmless,omitempty"`
}

func (p Problem) String() string { return fmt.Sprintf("%s %s: %s", p.Kind, p.Object, p.Message) }

// Affected names a file hurt by damaged or missing blobs.
type Affected struct {
	Snapshot string `json:"snapshot"`
	Path     string `json:"path"`
}

// Result of a check.
type Result struct {
	Problems     []Problem  `json:"problems"`
	DamagedPacks []string   `json:"damaged_packs,omitempty"`
	Affected     []Affected `json:"affected,omitempty"`
	Snapshots    int        `json:"snapshots"`
	Packs        int        `json:"packs"`
	PacksRead    int        `json:"packs_read"`
	BytesRead    int64      `json:"bytes_read"`
	Blobs        int        `json:"blobs"`
}

// Harmful counts the problems that make the check fail.
func (r *Result) Harmful() int {
	n := 0
	for _, p := range r.Problems {
		if !p.Harmless {
			n++
		}
	}
	return n
}

// OK reports whether no harmful problem was found.
func (r *Result) OK() bool { return r.Harmful() == 0 }

// Options for a check.
type Options struct {
	ReadData bool
	// Subset selects packs to read: when Total > 0, packs whose position in
	// name order modulo Total equals Part-1 (a rotation that reads every
	// pack in Total runs); when Percent > 0, that share of the packs (at
	// least one), chosen at random on every run, as restic does; when
	// Bytes > 0, random packs as long as they hold no more than that many
	// bytes (at least one).
	SubsetPart, SubsetTotal int
	SubsetPercent           float64
	SubsetBytes             int64
	// Progress is called after each pack read (may be nil).
	Progress func(done, total int, bytes int64)
	Workers  int
	// BatchEntries bounds the index entries held at once while reading
	// data (0: maxBatchEntries); tests lower it.
	BatchEntries int
}

// Checker checks one repository.
type Checker struct {
	r    *repository.Repository
	opts Options
	res  Result
	mu   sync.Mutex
}

// New returns a checker.
func New(r *repository.Repository, opts Options) *Checker {
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.BatchEntries <= 0 {
		opts.BatchEntries = maxBatchEntries
	}
	return &Checker{r: r, opts: opts}
}

func (c *Checker) add(p Problem) {
	c.mu.Lock()
	c.res.Problems = append(c.res.Problems, p)
	c.mu.Unlock()
}

// Run performs the check. The repository's index must not be loaded yet.
func (c *Checker) Run(ctx context.Context) (*Result, error) {
	r := c.r
	// 1. Index files, streamed into r's index. Every index file counts,
	// superseded or not (a supersede claim comes from whoever wrote the
	// file): a blob any of them locates is found.
	errs, err := r.LoadIndexChecked(ctx)
	if err != nil {
		return nil, err
	}
	for name, e := range errs {
		c.add(Problem{Kind: "index", Object: name, Message: e.Error()})
	}
	plans, err := c.maintObjects(ctx)
	if err != nil {
		return nil, err
	}
	planned := repository.PlannedPacks(plans)
	// 2. Packs: indexed packs must exist and be long enough. The entries
	// are counted per pack number of a view of the index (no full IDs:
	// a check of 100 million blobs keeps little more than the index).
	stored := map[ID]int64{}
	infos, err := r.List(ctx, storage.PackFile)
	if err != nil {
		return nil, err
	}
	for _, fi := range infos {
		id, err := format.ParseID(fi.Name)
		if err != nil {
			c.add(Problem{Kind: "pack", Object: fi.Name, Message: "name is not a pack ID", Harmless: true})
			continue
		}
		stored[id] = fi.Size
	}
	c.res.Packs = len(stored)
	v := r.Index().View()
	counts, ends := make([]int32, v.NumPacks()), make([]int64, v.NumPacks())
	for pos := range v.Len() {
		sl := v.At(pos)
		counts[sl.Pack]++
		ends[sl.Pack] = max(ends[sl.Pack], int64(sl.Offset)+int64(sl.Length))
	}
	indexed := func(pk ID) bool {
		n, ok := v.PackNumber(pk)
		return ok && counts[n] > 0
	}
	for n := range counts {
		if counts[n] == 0 {
			continue
		}
		pk := v.Pack(uint32(n))
		size, ok := stored[pk]
		if !ok {
			if planned[pk] {
				continue // swept by prune; its index entries go at the next compaction
			}
			// Harmful only if a snapshot needs a blob from it; that is
			// reported below as a lost blob.
			c.add(Problem{Kind: "pack", Object: pk.String(), Harmless: true,
				Message: fmt.Sprintf("indexed pack is missing (%d blobs); its index entries are ignored and the next prune drops them", counts[n])})
			continue
		}
		if ends[n] > size {
			c.add(Problem{Kind: "pack", Object: pk.String(), Message: fmt.Sprintf("pack is %d bytes but the index needs %d: truncated", size, ends[n])})
		}
	}
	for pk := range stored {
		if !indexed(pk) {
			c.add(Problem{Kind: "pack", Object: pk.String(), Message: "pack is not indexed (left by an interrupted backup; the next backup adopts it, prune removes it)", Harmless: true})
		}
	}
	ends = nil
	// 3. Snapshots and trees.
	snaps, serrs, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return nil, err
	}
	for name, e := range serrs {
		c.add(Problem{Kind: "snapshot", Object: name, Message: e.Error()})
	}
	c.res.Snapshots = len(snaps)
	// A copy is usable when its pack is stored and long enough for it; an
	// index entry that lies about one blob does not condemn the others.
	usable := func(id ID, t pack.BlobType) bool {
		for _, l := range r.Index().LookupAll(id, t) {
			if size, ok := stored[l.Pack]; ok && int64(l.Offset)+int64(l.Length) <= size {
				return true
			}
		}
		return false
	}
	bad := map[ID]bool{} // blobs that are missing
	treeProblem := func(sn *snapshot.Snapshot, p string, id ID, err error) {
		c.add(Problem{Kind: "tree", Object: id.String(), Message: fmt.Sprintf("snapshot %s path %s: %v", sn.ID.Short(), p, err)})
	}
	// Each tree once (10,000 snapshots of one tree cost one walk). Only
	// when a tree cannot be read are the snapshots walked one by one, so
	// that every snapshot and path that holds it is named; the paths of
	// every snapshot a damaged blob affects are walked for below.
	treeFailed := false
	if err := c.walk(ctx, snaps, false, func(sn *snapshot.Snapshot, p string, n *tree.Node) {
		for _, id := range n.Content {
			if !usable(id, pack.DataBlob) {
				bad[id] = true
			}
		}
	}, func(*snapshot.Snapshot, string, ID, error) { treeFailed = true }); err != nil {
		return nil, err
	}
	if treeFailed {
		if err := c.walk(ctx, snaps, true, func(*snapshot.Snapshot, string, *tree.Node) {}, treeProblem); err != nil {
			return nil, err
		}
	}
	for id := range bad {
		c.add(Problem{Kind: "blob", Object: id.String(), Message: "data blob referenced by a snapshot is not stored"})
	}
	// 4. Read data.
	damaged := map[ID]bool{}
	if c.opts.ReadData {
		d, err := c.readPacks(ctx, stored, v, counts)
		if err != nil {
			return nil, err
		}
		for id := range d {
			damaged[id] = true
		}
	}
	for id := range bad {
		damaged[id] = true
	}
	if len(damaged) > 0 {
		if err := c.walk(ctx, snaps, true, func(sn *snapshot.Snapshot, p string, n *tree.Node) {
			for _, id := range n.Content {
				if damaged[id] {
					c.res.Affected = append(c.res.Affected, Affected{Snapshot: sn.ID.String(), Path: p})
					return
				}
			}
		}, nil); err != nil {
			return nil, err
		}
	}
	sort.Slice(c.res.Problems, func(i, j int) bool {
		a, b := c.res.Problems[i], c.res.Problems[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Object < b.Object
	})
	slices.Sort(c.res.DamagedPacks)
	c.res.Blobs = r.Index().Len()
	return &c.res, nil
}

// walk visits the file nodes of the snapshots: with perSnapshot, every
// node of every snapshot (with its path in each); else the nodes of each
// tree once, under the first snapshot and path that hold it.
func (c *Checker) walk(ctx context.Context, snaps []*snapshot.Snapshot, perSnapshot bool, onNode func(*snapshot.Snapshot, string, *tree.Node), onTreeErr func(*snapshot.Snapshot, string, ID, error)) error {
	cache := map[ID]*tree.Tree{}
	failed := map[ID]error{}
	load := func(id ID) (*tree.Tree, error) {
		if t, ok := cache[id]; ok {
			return t, nil
		}
		if err, ok := failed[id]; ok {
			return nil, err
		}
		t, _, err := tree.Load(id, func(id ID) ([]byte, error) { return c.r.LoadBlob(ctx, pack.TreeBlob, id, nil) })
		if err != nil {
			failed[id] = err
			return nil, err
		}
		if perSnapshot && len(cache) < 100000 {
			cache[id] = t
		}
		return t, nil
	}
	var visit func(sn *snapshot.Snapshot, p string, id ID, seen map[ID]bool) error
	visit = func(sn *snapshot.Snapshot, p string, id ID, seen map[ID]bool) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if seen[id] {
			return nil
		}
		seen[id] = true
		t, err := load(id)
		if err != nil {
			if onTreeErr != nil && !errors.Is(err, context.Canceled) {
				onTreeErr(sn, p, id, err)
			}
			return nil
		}
		for _, n := range t.Nodes {
			np := path.Join(p, string(n.Name))
			switch n.Type {
			case tree.TypeDir:
				if n.Subtree != nil {
					if err := visit(sn, np, *n.Subtree, seen); err != nil {
						return err
					}
				}
			case tree.TypeFile:
				onNode(sn, np, n)
			}
		}
		return nil
	}
	seen := map[ID]bool{}
	for _, sn := range snaps {
		if perSnapshot {
			// A fresh seen-set per snapshot keeps paths right for
			// reports; the tree cache keeps it cheap.
			seen = map[ID]bool{}
		}
		if err := visit(sn, "/", sn.Tree, seen); err != nil {
			return err
		}
	}
	return nil
}

// selectPacks picks the packs to read from names (sorted) as the subset
// options say.
func (c *Checker) selectPacks(names []ID, stored map[ID]int64) []ID {
	o := c.opts
	switch {
	case o.SubsetTotal > 0:
		var sel []ID
		for i, id := range names {
			if i%o.SubsetTotal == o.SubsetPart-1 {
				sel = append(sel, id)
			}
		}
		return sel
	case o.SubsetPercent > 0 || o.SubsetBytes > 0:
		shuffled := slices.Clone(names)
		rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if o.SubsetPercent > 0 {
			n := int(math.Round(float64(len(names)) * o.SubsetPercent / 100))
			return shuffled[:min(len(names), max(n, 1))]
		}
		var sum int64 // at least one pack, then as many as fit
		for i, id := range shuffled {
			if i > 0 && sum+stored[id] > o.SubsetBytes {
				return shuffled[:i]
			}
			sum += stored[id]
		}
		return shuffled
	}
	return names
}

// readPacks reads the selected packs fully and returns the IDs of blobs
// found damaged. The index entries of the selected packs are read with
// their full IDs from the index files again (v holds a prefix of each),
// for at most maxBatchEntries entries at a time: what the check holds
// besides the index does not grow with the repository. counts holds the
// number of entries of each pack number of v.
func (c *Checker) readPacks(ctx context.Context, stored map[ID]int64, v *index.View, counts []int32) (map[ID]bool, error) {
	var names []ID
	for id := range stored {
		names = append(names, id)
	}
	slices.SortFunc(names, func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
	sel := c.selectPacks(names, stored)
	var mu sync.Mutex
	var done int
	var read int64
	st := readState{badAt: map[ID][]copyAt{}, goodUnindexed: map[ID]bool{}, read: map[ID]bool{}}
	for _, pk := range sel {
		st.read[pk] = true
	}
	total := len(sel)
	packBufs := bufpool.New(c.opts.Workers, maxPackBuffer)
	for len(sel) > 0 {
		// The next batch: packs while their entries fit (at least one).
		chosen := map[uint32]bool{}
		var n int64
		k := 0
		for ; k < len(sel); k++ {
			pn, ok := v.PackNumber(sel[k])
			if k > 0 && ok && n+int64(counts[pn]) > int64(c.opts.BatchEntries) {
				break
			}
			if ok {
				chosen[pn] = true
				n += int64(counts[pn])
			}
		}
		batch := sel[:k]
		sel = sel[k:]
		contents := map[ID][]pack.Entry{}
		if len(chosen) > 0 {
			err := v.EachIn(c.r.IndexSource(ctx), func(pos int) bool { return chosen[v.At(pos).Pack] }, func(_ int, l index.Location) bool {
				contents[l.Pack] = append(contents[l.Pack], l.Entry)
				return true
			})
			if err != nil {
				return nil, err
			}
		}
		work := make(chan ID)
		var wg sync.WaitGroup
		for range c.opts.Workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Each worker keeps a buffer for the packs it reads and one
				// for the blobs it opens: allocating (and zeroing) a
				// pack's worth of memory for every pack cost a tenth of
				// the check's CPU time.
				var scratch []byte
				for id := range work {
					var res packResult
					res, scratch = c.readPack(ctx, id, stored[id], contents[id], packBufs, scratch)
					mu.Lock()
					st.note(id, res)
					if len(res.probs) > 0 {
						c.res.DamagedPacks = append(c.res.DamagedPacks, id.String())
					}
					c.res.Problems = append(c.res.Problems, res.probs...)
					done++
					read += res.n
					if c.opts.Progress != nil {
						c.opts.Progress(done, total, read)
					}
					mu.Unlock()
				}
			}()
		}
		for _, id := range batch {
			select {
			case work <- id:
			case <-ctx.Done():
			}
		}
		close(work)
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	c.res.PacksRead = done
	c.res.BytesRead = read
	return c.damaged(ctx, &st, stored), nil
}

// maxBatchEntries bounds the index entries (with full IDs, about 70 bytes
// each) a check reading data holds at once. Each batch reads the index
// files again: at 2^18 a check of 525,000 blobs peaked at 173-175 MiB
// and took 2-5% longer than with every entry at once (190-197 MiB).
const maxBatchEntries = 1 << 18

// readState is what reading the packs found: the copies of blobs that did
// not read back right, and the blobs read right from packs no index names.
type readState struct {
	badAt         map[ID][]copyAt // a blob's copies that did not read back right
	goodUnindexed map[ID]bool
	read          map[ID]bool // the packs selected, all read when the check gets to the end
}

// copyAt is where a copy of a blob is.
type copyAt struct {
	pack           ID
	typ            pack.BlobType
	offset, length uint32
}

// packResult is what reading one pack found.
type packResult struct {
	bad   []pack.Entry // copies that did not read back right
	good  []ID         // blobs read right, given only for a pack no index names
	n     int64        // bytes read
	probs []Problem
}

// note records what reading pack pk found.
func (s *readState) note(pk ID, res packResult) {
	for _, e := range res.bad {
		s.badAt[e.ID] = append(s.badAt[e.ID], copyAt{pack: pk, typ: e.Type, offset: e.Offset, length: e.Length})
	}
	for _, g := range res.good {
		s.goodUnindexed[g] = true
	}
}

// damaged returns the blobs no copy of which reads back right. A blob with
// a bad copy is still whole when another copy in a pack the check read
// (or one no index names) reads back right: an index entry that lies, or
// a forged copy in a planted pack, is reported as a pack problem but does
// not hurt the snapshots. Such other copies are few; they are read again
// here instead of every good blob being remembered.
func (c *Checker) damaged(ctx context.Context, s *readState, stored map[ID]int64) map[ID]bool {
	out := map[ID]bool{}
	var buf, plain []byte
	for id, bad := range s.badAt {
		if s.goodUnindexed[id] {
			continue
		}
		whole := false
		for _, t := range []pack.BlobType{pack.DataBlob, pack.TreeBlob} {
			if !slices.ContainsFunc(bad, func(b copyAt) bool { return b.typ == t }) {
				continue
			}
			for _, l := range c.r.Index().LookupAll(id, t) {
				if whole || !s.read[l.Pack] || isBadCopy(bad, l) || int64(l.Offset)+int64(l.Length) > stored[l.Pack] {
					continue
				}
				var err error
				buf, err = c.r.ReadPack(ctx, l.Pack, int64(l.Offset), int(l.Length), buf)
				if err == nil {
					plain, err = c.r.OpenSealed(l, buf, plain)
				}
				whole = err == nil
			}
		}
		if !whole {
			out[id] = true
		}
	}
	return out
}

// isBadCopy reports whether l is one of the bad copies.
func isBadCopy(bad []copyAt, l index.Location) bool {
	for _, b := range bad {
		if b.pack == l.Pack && b.offset == l.Offset && b.length == l.Length {
			return true
		}
	}
	return false
}

// maxPackBuffer is the largest pack buffer the check keeps for the next
// pack (a repository's packs are 16 MiB by default).
const maxPackBuffer = 64 << 20

// readPack verifies one pack: hash, trailer, and every blob the index
// names in it (indexed), or every blob of its trailer when the index names
// none. It returns what it found (the copies that did not read back right;
// for a pack no index names, also the blobs that did) and scratch, the
// buffer the blobs were opened in, for the next pack.
func (c *Checker) readPack(ctx context.Context, id ID, size int64, indexed []pack.Entry, bufs bufpool.List, scratch []byte) (res packResult, _ []byte) {
	h := storage.Handle{Type: storage.PackFile, Name: pack.Name(id)}
	// Read into a buffer of the listed size: io.ReadAll's doubling costs
	// more than the decryption on multi-MiB packs.
	var data []byte
	err := c.r.Backend().Load(ctx, h, 0, 0, func(rd io.Reader) error {
		buf := bytes.NewBuffer(bufs.Get(int(size) + bytes.MinRead))
		_, err := buf.ReadFrom(rd)
		data = buf.Bytes()
		return err
	})
	defer bufs.Put(data)
	res.n = int64(len(data))
	if err != nil {
		res.bad = indexed
		res.probs = []Problem{{Kind: "pack", Object: id.String(), Message: "cannot be read: " + err.Error()}}
		return res, scratch
	}
	if got := pack.Hash(data); got != id {
		res.probs = append(res.probs, Problem{Kind: "pack", Object: id.String(), Message: fmt.Sprintf("content hash is %s: the pack is damaged", got.Short())})
	}
	entries, _, err := pack.Parse(c.r.Key(), data)
	if err != nil {
		res.probs = append(res.probs, Problem{Kind: "pack", Object: id.String(), Message: "trailer: " + err.Error()})
		entries = nil
	} else if len(indexed) > 0 {
		// The index must agree with the trailer.
		byID := map[ID]pack.Entry{}
		for _, e := range entries {
			byID[e.ID] = e
		}
		for _, e := range indexed {
			if te, ok := byID[e.ID]; !ok || te != e {
				res.probs = append(res.probs, Problem{Kind: "pack", Object: id.String(), Message: fmt.Sprintf("index entry for blob %s does not match the pack trailer", e.ID.Short())})
			}
		}
	}
	// Check every blob the index knows (and those of the trailer).
	check := indexed
	if len(check) == 0 {
		check = entries
	}
	buf := scratch
	for _, e := range check {
		if int64(e.Offset)+int64(e.Length) > int64(len(data)) {
			res.bad = append(res.bad, e)
			res.probs = append(res.probs, Problem{Kind: "pack", Object: id.String(), Message: fmt.Sprintf("blob %s at offset %d: beyond the end of the pack", e.ID.Short(), e.Offset)})
			continue
		}
		sealed := data[e.Offset : e.Offset+e.Length]
		plain, err := c.r.OpenSealed(index.Location{Pack: id, Entry: e}, sealed, buf) // checks the hash too
		if err != nil {
			res.bad = append(res.bad, e)
			res.probs = append(res.probs, Problem{Kind: "pack", Object: id.String(), Message: fmt.Sprintf("%s blob %s at offset %d: %v", e.Type, e.ID.Short(), e.Offset, err)})
			continue
		}
		if len(indexed) == 0 {
			res.good = append(res.good, e.ID)
		}
		buf = plain
	}
	return res, buf
}

// maintObjects loads the maintenance plans and names every object in
// maint/ and sessions/ that no bunker wrote with this repository's key
// (damaged or planted). Such objects are ignored by every command, so
// they are harmless, but they are a sign that someone with write access
// to the store is not playing by the rules; 'bunker repair maint' removes
// them.
func (c *Checker) maintObjects(ctx context.Context) ([]*repository.Plan, error) {
	r := c.r
	plans, damaged, err := r.PlansChecked(ctx)
	if err != nil {
		return nil, err
	}
	for name, e := range damaged {
		c.add(Problem{Kind: "maint", Object: name, Harmless: true,
			Message: fmt.Sprintf("unreadable maintenance plan, ignored (%v); 'bunker repair maint' removes it", e)})
	}
	bad, err := repository.UnreadableObjects(ctx, r)
	if err != nil {
		return nil, err
	}
	for _, u := range bad {
		c.add(Problem{Kind: string(u.Type), Object: u.Name, Harmless: true,
			Message: fmt.Sprintf("%s, ignored; 'bunker repair maint' removes it", u.Reason)})
	}
	return plans, nil
}
