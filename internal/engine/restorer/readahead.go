package restorer

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/bunkerbackup/bunker/internal/bufpool"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

// PackReader is what read-ahead needs of a repository besides Repo: where
// a blob is, a range of a pack, and the decoding of a blob cut from it.
type PackReader interface {
	LookupBlob(t pack.BlobType, id ID) (index.Location, bool)
	ReadPack(ctx context.Context, pk ID, offset int64, length int, buf []byte) ([]byte, error)
	OpenSealed(loc index.Location, sealed, buf []byte) ([]byte, error)
}

// Read-ahead limits: one request reads at most maxWindow bytes of a pack
// and skips at most maxGap bytes of blobs the restore does not need;
// decoded blobs waiting for their first file, with those that requests in
// flight bring, hold at most maxReady bytes (a request at most a quarter
// of it), and blobs that more files will read (shared content) are kept
// in at most maxKept bytes. In both, the oldest blob is moved out first,
// to the spill file (spill.go), never back to the store: each needed byte
// is downloaded once. (With 256 and 128 MiB here, an S3 restore of the
// benchmark set peaked at 400 MiB RSS; the spill file is what lets these
// be small.)
const (
	maxWindow = 8 << 20
	maxGap    = 512 << 10
	maxReady  = 32 << 20
	maxKept   = 16 << 20
)

// readahead turns the restore's blob reads into few large reads of packs,
// for stores where every request costs (object stores, REST, SFTP): when
// a file needs a blob, the blobs that follow it in its pack and that the
// restore needs too are read in the same request, decoded, and kept until
// the files that need them ask. Blobs that several files share are read
// once: kept in memory while there is room, then in the spill file.
type readahead struct {
	pr   PackReader
	hash func([]byte) ID // checks what comes back from the spill file

	// The limits (maxReady, maxKept), lowered by tests.
	maxReady, maxKept int64
	// Buffers for the ranges of packs read (one per request in flight).
	raw bufpool.List

	mu      sync.Mutex
	uses    map[ID]int              // remaining reads of each needed blob
	locs    map[ID]index.Location   // where each needed blob is
	packs   map[ID][]index.Location // needed blobs per pack, by offset
	where   map[ID]int              // a needed blob's position in its pack list
	ready   map[ID][]byte           // decoded blobs not yet read by any file
	readyQ  []ID                    // ready, oldest first (may hold stale IDs)
	bytes   int64                   // size of ready
	flight  int64                   // plaintext size of the blobs requests in flight bring to ready
	kept    map[ID][]byte           // read once, more reads to come
	keptQ   []ID                    // kept, oldest first (may hold stale IDs)
	kbytes  int64                   // size of kept
	pending map[ID]chan struct{}    // blobs a request in flight brings
	spill   *spill                  // shared blobs moved out of kept

	// Trees the prescan loaded, handed to the restore walk so that it
	// does not load them again (each is a request on a store without a
	// metadata cache); at most maxKeptNodes nodes.
	trees map[ID]*tree.Tree
	nodes int
}

// maxKeptNodes bounds the trees kept between the prescan and the walk.
const maxKeptNodes = 200_000

// keepTree keeps a tree the prescan loaded for the walk.
func (ra *readahead) keepTree(id ID, t *tree.Tree) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if ra.nodes+len(t.Nodes) > maxKeptNodes {
		return
	}
	if ra.trees == nil {
		ra.trees = map[ID]*tree.Tree{}
	}
	if _, ok := ra.trees[id]; !ok {
		ra.trees[id] = t
		ra.nodes += len(t.Nodes)
	}
}

// takeTree returns a kept tree (once).
func (ra *readahead) takeTree(id ID) *tree.Tree {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	t, ok := ra.trees[id]
	if ok {
		delete(ra.trees, id)
		ra.nodes -= len(t.Nodes)
	}
	return t
}

// newReadahead returns a read-ahead over pr for a restore by workers
// writers; its spill file is made in spillDir ("" for the temporary
// directory), never inside target.
func newReadahead(pr PackReader, hash func([]byte) ID, spillDir, target string, workers int, warn func(string)) *readahead {
	return &readahead{pr: pr, hash: hash, maxReady: maxReady, maxKept: maxKept, raw: bufpool.New(workers, maxWindow),
		uses: map[ID]int{}, ready: map[ID][]byte{}, kept: map[ID][]byte{}, pending: map[ID]chan struct{}{}, locs: map[ID]index.Location{},
		spill: newSpill(spillDir, target, warn)}
}

// close removes the spill file.
func (ra *readahead) close() error {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	return ra.spill.close()
}

// need notes that the restore will read blob id once more.
func (ra *readahead) need(id ID) {
	ra.mu.Lock()
	ra.uses[id]++
	ra.mu.Unlock()
}

// forget drops blob id from what the restore will read: its later uses
// do not load it (a blob of zeros, see zeroBlobs).
func (ra *readahead) forget(id ID) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	delete(ra.uses, id)
	if b, ok := ra.kept[id]; ok {
		ra.kbytes -= int64(len(b))
		delete(ra.kept, id)
	}
	if b, ok := ra.ready[id]; ok {
		ra.bytes -= int64(len(b))
		delete(ra.ready, id)
	}
	ra.spill.drop(id)
}

// build groups the needed blobs by pack once all are noted.
func (ra *readahead) build() {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	ra.packs = map[ID][]index.Location{}
	for id := range ra.uses {
		if loc, ok := ra.pr.LookupBlob(pack.DataBlob, id); ok {
			ra.locs[id] = loc
			ra.packs[loc.Pack] = append(ra.packs[loc.Pack], loc)
		}
	}
	ra.where = make(map[ID]int, len(ra.locs))
	for pk, list := range ra.packs {
		slices.SortFunc(list, func(a, b index.Location) int { return cmp.Compare(a.Offset, b.Offset) })
		for i, l := range list {
			ra.where[l.ID] = i
		}
		ra.packs[pk] = list
	}
}

// consumeLocked counts one read of id, whose plaintext is plain: after
// the last read every copy is dropped; before it a copy stays, in kept as
// long as room allows, else in the spill file. Owned says that plain is
// read-ahead's own buffer (ready's), which kept may take as it is.
func (ra *readahead) consumeLocked(id ID, plain []byte, owned bool) {
	if b, ok := ra.ready[id]; ok {
		ra.bytes -= int64(len(b))
		delete(ra.ready, id)
	}
	n := ra.uses[id] - 1
	if n <= 0 {
		delete(ra.uses, id)
		if b, ok := ra.kept[id]; ok {
			ra.kbytes -= int64(len(b))
			delete(ra.kept, id)
		}
		ra.spill.drop(id)
		return
	}
	ra.uses[id] = n
	if _, ok := ra.kept[id]; ok || ra.spill.has(id) {
		return
	}
	if int64(len(plain)) > ra.maxKept {
		ra.spill.put(id, plain)
		return
	}
	ra.keptQ = ra.spillOldest(ra.kept, ra.keptQ, &ra.kbytes, ra.maxKept-int64(len(plain)))
	if !owned {
		plain = slices.Clone(plain)
	}
	ra.kept[id] = plain
	ra.kbytes += int64(len(plain))
	ra.keptQ = queue(ra.keptQ, id, ra.kept)
}

// spillOldest moves blobs of m (ready or kept), oldest first by q, to the
// spill file until their size, *size, is at most limit; it returns what
// is left of q. Every blob in m is still needed; if the spill file fails,
// the blob is read from the store again when a file asks for it.
func (ra *readahead) spillOldest(m map[ID][]byte, q []ID, size *int64, limit int64) []ID {
	for *size > limit && len(q) > 0 {
		old := q[0]
		q = q[1:]
		if b, ok := m[old]; ok {
			*size -= int64(len(b))
			delete(m, old)
			ra.spill.put(old, b)
		}
	}
	return q
}

// queue appends id to q, first dropping the IDs that are no longer in m
// when they have come to outnumber the live ones, so that q does not grow
// with every blob the restore reads.
func queue(q []ID, id ID, m map[ID][]byte) []ID {
	if len(q) > 2*len(m)+64 {
		live := q[:0]
		for _, x := range q {
			if _, ok := m[x]; ok {
				live = append(live, x)
			}
		}
		clear(q[len(live):])
		q = live
	}
	return append(q, id)
}

// presentLocked reports whether blob id is in memory or in the spill
// file.
func (ra *readahead) presentLocked(id ID) bool {
	if _, ok := ra.ready[id]; ok {
		return true
	}
	if _, ok := ra.kept[id]; ok {
		return true
	}
	return ra.spill.has(id)
}

// load returns the plaintext of data blob id in buf[:0], or ok false when
// read-ahead does not know the blob (the caller loads it on its own).
func (ra *readahead) load(ctx context.Context, id ID, buf []byte) (out []byte, ok bool, err error) {
	ra.mu.Lock()
	for {
		b, fromReady := ra.ready[id]
		found := fromReady
		if !found {
			b, found = ra.kept[id]
		}
		if found {
			out = append(buf[:0], b...)
			ra.consumeLocked(id, b, fromReady)
			ra.mu.Unlock()
			return out, true, nil
		}
		out, found, err = ra.spill.get(id, buf)
		if found {
			if err == nil {
				ra.consumeLocked(id, out, false)
			}
			ra.mu.Unlock()
			// Checked outside the lock. A copy that does not match (the
			// file damaged under us) is not used: the caller loads the
			// blob from the store.
			if err != nil || ra.hash(out) != id {
				return nil, false, nil
			}
			return out, true, nil
		}
		ch, inflight := ra.pending[id]
		if !inflight {
			break
		}
		ra.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, true, ctx.Err()
		}
		ra.mu.Lock()
		// Brought (and ready), or the request failed: look again; a
		// failed blob is no longer pending and is read below.
	}
	loc, known := ra.locs[id]
	if !known {
		ra.mu.Unlock()
		return nil, false, nil
	}
	// The window: id, then the needed blobs after it in the same pack,
	// while they are close and the budget lasts. It ends before a blob
	// that was read already (here in memory or spilled, on its way, or
	// read by all its files): the bytes of a blob are read once. The
	// budget does not count the blobs waiting in ready: those make room
	// below. Counting them let blobs whose files come much later (packs
	// written in another order than the restore's) hold the room for
	// good, and every request shrank to the one blob asked for.
	list := ra.packs[loc.Pack]
	window := []index.Location{loc}
	end := int64(loc.Offset) + int64(loc.Length)
	budget := min(ra.maxReady/4, ra.maxReady-ra.flight)
	var brings int64 // what the window adds to ready
	for i := ra.where[id] + 1; i < len(list); i++ {
		next := list[i]
		_, needed := ra.uses[next.ID]
		if _, p := ra.pending[next.ID]; p || !needed || ra.presentLocked(next.ID) {
			break
		}
		nend := int64(next.Offset) + int64(next.Length)
		if int64(next.Offset)-end > maxGap || nend-int64(loc.Offset) > maxWindow || brings+int64(next.RawLength) > budget {
			break
		}
		brings += int64(next.RawLength)
		window = append(window, next)
		end = nend
	}
	ra.flight += brings
	ra.readyQ = ra.spillOldest(ra.ready, ra.readyQ, &ra.bytes, ra.maxReady-ra.flight)
	done := make(chan struct{})
	for _, l := range window {
		ra.pending[l.ID] = done
	}
	ra.mu.Unlock()

	start := int64(loc.Offset)
	raw, err := ra.pr.ReadPack(ctx, loc.Pack, start, int(end-start), ra.raw.Get(int(end-start)))
	ra.mu.Lock()
	defer ra.raw.Put(raw) // every blob cut from it is decoded into a buffer of its own
	defer func() {
		for _, l := range window {
			delete(ra.pending, l.ID)
		}
		close(done)
		ra.mu.Unlock()
	}()
	ra.flight -= brings
	if err != nil {
		return nil, true, err
	}
	for i, l := range window {
		sealed := raw[int64(l.Offset)-start : int64(l.Offset)-start+int64(l.Length)]
		if i == 0 {
			out, err = ra.pr.OpenSealed(l, sealed, buf)
			if err != nil {
				return nil, true, err
			}
			ra.consumeLocked(id, out, false)
			continue
		}
		if _, wanted := ra.uses[l.ID]; !wanted {
			continue
		}
		plain, err := ra.pr.OpenSealed(l, sealed, nil)
		if err != nil {
			continue // its reader will load it on its own and see the error
		}
		ra.ready[l.ID] = plain
		ra.bytes += int64(len(plain))
		ra.readyQ = queue(ra.readyQ, l.ID, ra.ready)
	}
	return out, true, nil
}
