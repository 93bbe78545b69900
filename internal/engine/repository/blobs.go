package repository

import (
	"context"
	"errors"
	"fmt"
	"github.com/bunkerbackup/bunker/internal/bufpool"
	"io"
	"sync"

	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/storage"
)

type blobKey struct {
	id  ID
	typ pack.BlobType
}

type finishedPack struct {
	data    []byte
	id      ID
	entries []pack.Entry
}

// writer is the write side of a repository: open packs per blob type, an
// upload queue, and the entries of uploaded packs waiting for an index file.
type writer struct {
	r *Repository

	mu       sync.Mutex
	packers  map[pack.BlobType]*pack.Writer
	inflight map[blobKey]struct{} // sealed, not yet in the index
	pending  index.File           // uploaded packs not yet in a saved index file
	err      error                // first upload error; sticky
	queue    chan finishedPack
	busy     int        // packs queued or uploading
	idle     *sync.Cond // signalled when busy drops to 0
	started  bool
	closed   bool
	cancel   context.CancelFunc

	stats WriteStats

	// packBufs holds the buffers of uploaded data packs for reuse.
	packBufs bufpool.List
}

// Buffers for sealing and opening blobs, shared by every repository of
// the process: enough for the savers and readers of one backup.
var (
	scratchBufs = bufpool.New(8, 3<<20)
	sealedBufs  = bufpool.New(8, 3<<20)
)

// sealBound is room enough for a blob of n bytes compressed (zstd's worst
// case adds under 1/128) and sealed.
func sealBound(n int) int { return n + n>>7 + 256 }

// WriteStats counts what a writer stored.
type WriteStats struct {
	Blobs           int   // new blobs
	BlobBytes       int64 // plaintext bytes of new blobs
	StoredBytes     int64 // sealed bytes of new blobs
	Packs           int
	PackBytes       int64
	IndexFiles      int
	DuplicateBlobs  int // blobs found already stored
	DuplicateBytes  int64
	DependsOn       map[ID]struct{} `json:"-"` // packs this writer relies on: reused, uploaded, adopted
	UploadedIndexes []ID            `json:"-"`
}

func (w *writer) init(r *Repository) {
	w.r = r
	w.packers = map[pack.BlobType]*pack.Writer{}
	w.inflight = map[blobKey]struct{}{}
	w.stats.DependsOn = map[ID]struct{}{}
	w.idle = sync.NewCond(&w.mu)
	w.packBufs = bufpool.New(Uploaders+1, 1<<30)
}

// Uploaders is how many packs are written to the backend at once.
const Uploaders = 2

func (w *writer) startLocked() {
	if w.started {
		return
	}
	w.started = true
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.queue = make(chan finishedPack)
	for i := 0; i < Uploaders; i++ {
		go w.uploader(ctx)
	}
}

func (w *writer) uploader(ctx context.Context) {
	hinter, _ := storage.Find[storage.MetadataHinter](w.r.be)
	for fp := range w.queue {
		h := storage.Handle{Type: storage.PackFile, Name: pack.Name(fp.id)}
		trees := len(fp.entries) > 0 && fp.entries[0].Type == pack.TreeBlob
		if hinter != nil && trees {
			hinter.HintMetadata(h)
		}
		err := w.r.be.Save(ctx, h, fp.data, storage.SaveOptions{Metadata: trees})
		w.mu.Lock()
		if err != nil {
			if w.err == nil {
				w.err = fmt.Errorf("save pack %s: %w", fp.id.Short(), err)
			}
		} else {
			w.r.idx.AddPack(fp.id, fp.entries)
			n := uint32(len(w.pending.Packs))
			w.pending.Packs = append(w.pending.Packs, fp.id)
			for _, e := range fp.entries {
				w.pending.Entries = append(w.pending.Entries, index.FileEntry{Pack: n, Entry: e})
			}
			w.stats.Packs++
			w.stats.PackBytes += int64(len(fp.data))
			w.stats.DependsOn[fp.id] = struct{}{}
		}
		for _, e := range fp.entries {
			delete(w.inflight, blobKey{e.ID, e.Type})
		}
		w.busy--
		if w.busy == 0 {
			w.idle.Broadcast()
		}
		w.mu.Unlock()
		// Save does not retain data; the pack is now only bytes to reuse.
		if cap(fp.data) >= w.r.cfg.PackSize {
			w.packBufs.Put(fp.data)
		}
	}
}

// SaveBlob stores a blob unless an identical one is already stored, and
// returns its ID and whether it was new. The data is not retained.
func (r *Repository) SaveBlob(ctx context.Context, t pack.BlobType, data []byte) (ID, bool, error) {
	return r.SaveBlobWithID(ctx, t, r.Hash(data), data)
}

// SaveBlobWithID is SaveBlob for a caller that already computed the ID.
func (r *Repository) SaveBlobWithID(ctx context.Context, t pack.BlobType, id ID, data []byte) (ID, bool, error) {
	w := &r.w
	if err := ctx.Err(); err != nil {
		return id, false, err
	}
	if len(data) > pack.MaxBlobSize {
		return id, false, fmt.Errorf("%s blob of %d bytes exceeds the format limit of %d bytes", t, len(data), pack.MaxBlobSize)
	}
	if loc, ok := r.idx.Lookup(id, t); ok {
		w.mu.Lock()
		w.stats.DuplicateBlobs++
		w.stats.DuplicateBytes += int64(len(data))
		w.stats.DependsOn[loc.Pack] = struct{}{}
		w.mu.Unlock()
		return id, false, nil
	}
	k := blobKey{id, t}
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return id, false, err
	}
	if _, ok := w.inflight[k]; ok {
		w.stats.DuplicateBlobs++
		w.stats.DuplicateBytes += int64(len(data))
		w.mu.Unlock()
		return id, false, nil
	}
	w.inflight[k] = struct{}{}
	w.mu.Unlock()

	// Compress and seal into recycled buffers; the pack writer copies the
	// sealed blob.
	sealed, scratch := r.codec.SealBlob(sealedBufs.Get(sealBound(len(data))), scratchBufs.Get(sealBound(len(data))), t, id, data)
	scratchBufs.Put(scratch)
	defer sealedBufs.Put(sealed)

	w.mu.Lock()
	defer w.mu.Unlock()
	pw := w.packers[t]
	if pw != nil && pw.Count() > 0 && pw.Size()+len(sealed)+pw.Overhead() > r.cfg.PackSize {
		// Close the pack before it outgrows its buffer.
		delete(w.packers, t)
		w.enqueueLocked(pw)
		pw = w.packers[t] // another saver may have started one meanwhile
	}
	if pw == nil {
		if t == pack.TreeBlob {
			pw = pack.NewWriter(t, 1<<20) // tree packs stay small in most backups
		} else {
			pw = pack.NewWriterBuffer(t, w.packBufs.Get(r.cfg.PackSize))
		}
		w.packers[t] = pw
	}
	pw.Add(t, id, sealed, len(data))
	w.stats.Blobs++
	w.stats.BlobBytes += int64(len(data))
	w.stats.StoredBytes += int64(len(sealed))
	if pw.Size() >= r.cfg.PackSize {
		delete(w.packers, t)
		w.enqueueLocked(pw)
	}
	if w.err != nil {
		return id, true, w.err
	}
	return id, true, nil
}

// enqueueLocked finalizes a pack, which the caller has taken out of
// w.packers, and hands it to the uploaders. It drops the lock while it
// finalizes (hashing 16 MiB takes milliseconds every other saver would
// wait through) and while it waits for a free upload slot (backpressure).
func (w *writer) enqueueLocked(pw *pack.Writer) {
	w.startLocked()
	w.busy++
	q := w.queue
	w.mu.Unlock()
	data, id, entries := pw.Finalize(w.r.key)
	q <- finishedPack{data: data, id: id, entries: entries}
	w.mu.Lock()
}

// Flush writes every open pack, waits for the uploads, and saves an index
// file for the packs uploaded since the last flush. After Flush returns nil
// everything saved so far is durable and findable: a later snapshot may
// reference it. Flush is also the checkpoint of long backups.
func (r *Repository) Flush(ctx context.Context) error {
	w := &r.w
	w.mu.Lock()
	for t, pw := range w.packers {
		delete(w.packers, t)
		if pw.Count() > 0 {
			w.enqueueLocked(pw)
		}
	}
	for w.busy > 0 {
		w.idle.Wait()
	}
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if len(w.pending.Packs) == 0 {
		return nil
	}
	if s := r.session; s != nil && s.Lapsed() {
		// Stalled past the session TTL: a prune may have taken our
		// not-yet-indexed packs for leftovers. Never index a pack that is
		// gone or about to go.
		w.mu.Unlock()
		err := s.write(ctx)
		if err == nil {
			err = r.verifyPacks(ctx, w.pending.Packs)
		}
		w.mu.Lock()
		if err != nil {
			if w.err == nil {
				w.err = err
			}
			return err
		}
	}
	parts := w.pending.Split(index.MaxFileEntries)
	for i, part := range parts {
		b := index.EncodeFile(r.key, part)
		id := pack.Hash(b)
		if err := r.be.Save(ctx, storage.Handle{Type: storage.IndexFile, Name: pack.Name(id)}, b, storage.SaveOptions{}); err != nil {
			// The parts saved stay pending too: a later Flush saves
			// their entries again, in files readers take for copies of
			// the same entries.
			return fmt.Errorf("save index: %w", err)
		}
		w.stats.IndexFiles++
		w.stats.UploadedIndexes = append(w.stats.UploadedIndexes, id)
		if i == len(parts)-1 {
			w.pending = index.File{}
		}
	}
	return nil
}

// Stats returns a copy of the write statistics.
func (r *Repository) Stats() WriteStats {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	s := r.w.stats
	s.DependsOn = make(map[ID]struct{}, len(r.w.stats.DependsOn))
	for k := range r.w.stats.DependsOn {
		s.DependsOn[k] = struct{}{}
	}
	return s
}

// NoteReuse records that a blob found through a parent snapshot was relied
// on, for the commit check. It reports false if no usable copy is indexed.
func (r *Repository) NoteReuse(id ID, t pack.BlobType) bool {
	loc, ok := r.idx.Lookup(id, t)
	if !ok {
		return false
	}
	r.w.mu.Lock()
	r.w.stats.DependsOn[loc.Pack] = struct{}{}
	r.w.mu.Unlock()
	return true
}

// LoadBlob returns the plaintext of a blob, appended to buf[:0].
func (r *Repository) LoadBlob(ctx context.Context, t pack.BlobType, id ID, buf []byte) ([]byte, error) {
	locs := r.idx.LookupAll(id, t)
	if len(locs) == 0 {
		return nil, fmt.Errorf("%s blob %s: %w", t, id.Short(), ErrBlobNotFound)
	}
	var firstErr error
	// Usable copies first.
	for pass := 0; pass < 2; pass++ {
		for _, loc := range locs {
			if r.idx.Excluded(loc.Pack) != (pass == 1) {
				continue
			}
			out, err := r.loadFrom(ctx, loc, buf)
			if err == nil {
				return out, nil
			}
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return nil, firstErr
}

// ErrBlobNotFound means no index entry names the blob.
var ErrBlobNotFound = errors.New("not in index")

func (r *Repository) loadFrom(ctx context.Context, loc index.Location, buf []byte) ([]byte, error) {
	sealed := sealedBufs.Get(int(loc.Length))[:loc.Length]
	defer sealedBufs.Put(sealed)
	err := r.be.Load(ctx, storage.Handle{Type: storage.PackFile, Name: pack.Name(loc.Pack)}, int(loc.Length), int64(loc.Offset), func(rd io.Reader) error {
		_, err := io.ReadFull(rd, sealed)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load %s blob %s from pack %s at %d: %w", loc.Type, loc.ID.Short(), loc.Pack.Short(), loc.Offset, err)
	}
	return r.OpenSealed(loc, sealed, buf)
}

// LookupBlob returns where a stored blob is, preferring a copy in a pack
// that no deletion plan names.
func (r *Repository) LookupBlob(t pack.BlobType, id ID) (index.Location, bool) {
	locs := r.idx.LookupAll(id, t)
	for _, l := range locs {
		if !r.idx.Excluded(l.Pack) {
			return l, true
		}
	}
	if len(locs) > 0 {
		return locs[0], true
	}
	return index.Location{}, false
}

// ReadPack reads length bytes of pack pk from offset into buf[:0].
func (r *Repository) ReadPack(ctx context.Context, pk ID, offset int64, length int, buf []byte) ([]byte, error) {
	if cap(buf) < length {
		buf = make([]byte, length)
	}
	buf = buf[:length]
	err := r.be.Load(ctx, storage.Handle{Type: storage.PackFile, Name: pack.Name(pk)}, length, offset, func(rd io.Reader) error {
		_, err := io.ReadFull(rd, buf)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read pack %s at %d (%d bytes): %w", pk.Short(), offset, length, err)
	}
	return buf, nil
}

// OpenSealed decodes a sealed blob read by the caller (restore's
// read-ahead reads ranges of packs and splits them itself) and checks that
// the plaintext hashes to the blob's ID. Authentication alone does not
// prove that: anyone with the key can seal any bytes under any ID, so a
// planted pack could otherwise pass off forged content for a blob that
// exists elsewhere.
func (r *Repository) OpenSealed(loc index.Location, sealed, buf []byte) ([]byte, error) {
	out, err := r.codec.OpenBlob(buf[:0], loc.Type, loc.ID, sealed, int(loc.RawLength))
	if err != nil {
		return nil, fmt.Errorf("pack %s offset %d: %w", loc.Pack.Short(), loc.Offset, err)
	}
	if got := r.Hash(out); got != loc.ID {
		return nil, fmt.Errorf("pack %s offset %d: %w: %s blob %s: plaintext hashes to %s", loc.Pack.Short(), loc.Offset, format.ErrCorrupt, loc.Type, loc.ID.Short(), got.Short())
	}
	return out, nil
}

// BlobLength returns the plaintext length of a stored blob.
func (r *Repository) BlobLength(id ID, t pack.BlobType) (int, bool) {
	if l, ok := r.idx.Lookup(id, t); ok {
		return int(l.RawLength), true
	}
	if ls := r.idx.LookupAll(id, t); len(ls) > 0 {
		return int(ls[0].RawLength), true
	}
	return 0, false
}
