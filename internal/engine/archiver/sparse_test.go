package archiver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

// fakeSparse is a sparse file in memory: content, and the extents that
// are data (sorted, disjoint); the rest is holes. It counts the bytes
// read from holes and the lookups, and can fail a lookup.
type fakeSparse struct {
	data    []byte
	extents [][2]int64
	off     int64

	lookups   int
	failAt    int // 1-based lookup that fails; 0 none
	holeReads int64
}

func (f *fakeSparse) Read(p []byte) (int, error) {
	if f.off >= int64(len(f.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.data[f.off:])
	end := f.off + int64(n)
	f.holeReads += int64(n)
	for _, e := range f.extents {
		if lo, hi := max(e[0], f.off), min(e[1], end); lo < hi {
			f.holeReads -= hi - lo
		}
	}
	f.off = end
	return n, nil
}

func (f *fakeSparse) Seek(off int64, whence int) (int64, error) {
	if whence != io.SeekStart || off < 0 {
		return 0, errors.New("fakeSparse: unsupported seek")
	}
	f.off = off
	return off, nil
}

func (f *fakeSparse) NextData(off int64) (int64, int64, error) {
	f.lookups++
	f.off = -1 // unspecified: the reader must seek
	if f.lookups == f.failAt {
		return 0, 0, fmt.Errorf("lookup %d: %w", f.lookups, errors.ErrUnsupported)
	}
	size := int64(len(f.data))
	for _, e := range f.extents {
		if e[1] > off {
			return max(e[0], off), e[1], nil
		}
	}
	return size, size, nil
}

func (f *fakeSparse) Close() error                  { return nil }
func (f *fakeSparse) Name() string                  { return "fake" }
func (f *fakeSparse) Xattrs() ([]tree.Xattr, error) { return nil, nil }

// newFakeSparse builds a file of size bytes with random data in extents.
func newFakeSparse(size int64, extents ...[2]int64) *fakeSparse {
	f := &fakeSparse{data: make([]byte, size), extents: extents}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, e := range extents {
		b := f.data[e[0]:e[1]]
		i := 0
		for ; i+8 <= len(b); i += 8 {
			binary.LittleEndian.PutUint64(b[i:], rng.Uint64()|1)
		}
		for ; i < len(b); i++ {
			b[i] = byte(rng.Uint32() | 1)
		}
	}
	return f
}

// TestHoleReader: the stream is the file's bytes, read in odd-sized
// pieces; holes are not read; a long hole is looked up again every
// maxHoleRun bytes; a failed lookup reads the rest plainly.
func TestHoleReader(t *testing.T) {
	const size = 2*maxHoleRun + 12345
	for _, c := range []struct {
		name      string
		extents   [][2]int64
		failAt    int
		minLooks  int   // lookups at least
		holeReads int64 // bytes of holes read
	}{
		{name: "no holes", extents: [][2]int64{{0, size}}, minLooks: 1},
		{name: "all hole", minLooks: 4},
		{name: "leading hole, data to the end", extents: [][2]int64{{size - 5000, size}}, minLooks: 3},
		{name: "data, long hole, data, trailing hole", extents: [][2]int64{{0, 4096}, {2*maxHoleRun + 8192, 2*maxHoleRun + 9000}}, minLooks: 5},
		{name: "lookup fails in a hole", extents: [][2]int64{{0, 4096}, {size - 10, size}}, failAt: 4, holeReads: size - 2*maxHoleRun - 4096 - 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeSparse(size, c.extents...)
			f.failAt = c.failAt
			r := newHoleReader(f, size)
			var pos int
			buf := make([]byte, 1<<20+7)
			for {
				n, err := r.Read(buf)
				if pos+n > len(f.data) || !bytes.Equal(buf[:n], f.data[pos:pos+n]) {
					t.Fatalf("the %d bytes read at %d differ from the file's", n, pos)
				}
				pos += n
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if pos != len(f.data) {
				t.Fatalf("stream of %d bytes; the file has %d", pos, len(f.data))
			}
			if f.holeReads != c.holeReads {
				t.Errorf("%d bytes of holes read; want %d", f.holeReads, c.holeReads)
			}
			if f.lookups < c.minLooks {
				t.Errorf("%d lookups; want at least %d", f.lookups, c.minLooks)
			}
			if r.holes+f.holeReads != size-extentBytes(c.extents) {
				t.Errorf("%d hole bytes produced and %d read; the file has %d", r.holes, f.holeReads, size-extentBytes(c.extents))
			}
		})
	}
}

func extentBytes(es [][2]int64) int64 {
	var n int64
	for _, e := range es {
		n += e[1] - e[0]
	}
	return n
}
