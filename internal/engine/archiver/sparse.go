package archiver

import (
	"io"
	"math"
	"sync"

	"github.com/bunkerbackup/bunker/internal/engine/vfs"
	"github.com/bunkerbackup/bunker/internal/fsmeta"
)

// holeReader reads a sparse file as the stream of bytes a plain read
// gives, holes as zeros, without reading the holes: where the file can
// tell where its data lies (vfs.DataFinder), the zeros of a hole are
// written into the caller's buffer instead of being read from the
// filesystem. The chunker sees the same bytes either way, so chunk
// boundaries and blob IDs are those of a plain read.
//
// Each region is looked up when the reader reaches it (a long hole every
// maxHoleRun bytes), so a file that changes while it is read is stored as
// a plain read could have seen it: every byte as it was at some moment of
// the read. Where the lookup fails or the filesystem cannot tell, the
// rest of the file is read plainly; the end of the stream is always found
// by a plain read (an io.EOF from the file), so a file that grows is read
// as far as a plain read would.
type holeReader struct {
	f     vfs.File
	df    vfs.DataFinder
	size  int64 // the file's size at its lstat
	pos   int64 // offset in the file of the next byte of the stream
	zeros int64 // end of the hole at pos: zeros up to here
	data  int64 // end of the data at or after zeros: read up to here
	plain bool  // read the file from pos on, holes and all
	seek  bool  // the file's offset is not pos: seek before reading
	holes int64 // bytes of holes produced without reading
}

// newHoleReader returns a reader of f, which must be at offset 0, whose
// lstat gave size; it reads f plainly if f cannot tell where its data
// lies.
func newHoleReader(f vfs.File, size int64) *holeReader {
	r := &holeReader{f: f, size: size}
	r.df, _ = f.(vfs.DataFinder)
	r.plain = r.df == nil
	return r
}

func (r *holeReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !r.plain && r.pos >= r.zeros && r.pos >= r.data {
		r.next()
	}
	if !r.plain && r.pos < r.zeros {
		n := int(min(int64(len(p)), r.zeros-r.pos))
		clear(p[:n])
		r.pos += int64(n)
		r.holes += int64(n)
		return n, nil
	}
	if !r.plain {
		p = p[:min(int64(len(p)), r.data-r.pos)]
	}
	if r.seek {
		if _, err := r.f.Seek(r.pos, io.SeekStart); err != nil {
			return 0, err
		}
		r.seek = false
	}
	n, err := r.f.Read(p)
	r.pos += int64(n)
	// An io.EOF inside a data region (the file shrank) ends the stream,
	// as it ends a plain read.
	return n, err
}

// maxHoleRun is how many zeros of a hole a holeReader produces before it
// looks again where the data lies: a lookup costs two system calls.
const maxHoleRun = 64 << 20

// next looks up the region at pos: a hole to produce, then data to read.
func (r *holeReader) next() {
	start, end, err := r.df.NextData(r.pos)
	switch {
	case err != nil || start < r.pos || (start == end && start == r.pos):
		// Nothing known, or the end: a plain read goes on from here and
		// finds the end (or what the file has grown since).
		r.plain, r.seek = true, true
	case start-r.pos > maxHoleRun:
		// A long hole: its zeros for a while, then look again, so that
		// data written into the hole meanwhile is read as a plain read
		// would read it.
		r.zeros = r.pos + maxHoleRun
	case start == end:
		// Only a hole up to the end of the file: its zeros, then the
		// first case.
		r.zeros = start
	default:
		r.zeros, r.data, r.seek = start, end, true
		if end >= r.size {
			// The data reaches the size of the lstat: read on from its
			// start to the end of the file, like a plain read.
			r.data = math.MaxInt64
		}
	}
}

// maxZeroIDs bounds the zero chunk lengths whose ID an Archiver keeps.
const maxZeroIDs = 1024

// zeroIDs caches the blob IDs of all-zero chunks by length. The holes of
// sparse files (a VM image, a database file) and their zero-filled regions
// become many identical chunks of few lengths (a run of zeros is cut every
// Avg bytes); hashing each of them again would cost as much as hashing
// data.
type zeroIDs struct {
	mu  sync.Mutex
	ids map[int]ID
}

// id returns the blob ID of data, which is all zeros, hashing it with
// hash only the first time its length is seen.
func (z *zeroIDs) id(data []byte, hash func([]byte) ID) ID {
	z.mu.Lock()
	id, ok := z.ids[len(data)]
	z.mu.Unlock()
	if ok {
		return id
	}
	id = hash(data)
	z.mu.Lock()
	if z.ids == nil {
		z.ids = map[int]ID{}
	}
	if len(z.ids) < maxZeroIDs {
		z.ids[len(data)] = id
	}
	z.mu.Unlock()
	return id
}

// hashChunk returns the blob ID of a chunk, from the cache for an
// all-zero one. Checking for zeros stops at the first non-zero byte, so it
// costs next to nothing for data.
func (a *Archiver) hashChunk(data []byte) ID {
	if fsmeta.IsZero(data) {
		return a.zeros.id(data, a.repo.Hash)
	}
	return a.repo.Hash(data)
}
