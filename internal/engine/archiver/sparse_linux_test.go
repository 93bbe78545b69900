//go:build linux

package archiver_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/vfs"
	"github.com/bunkerbackup/bunker/internal/engine/vfs/faultfs"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
)

// sparseFile writes a file of the given size at p whose only written
// ranges are regions (offset -> bytes); the rest is holes. It returns the
// file's content.
func sparseFile(t *testing.T, p string, size int64, regions map[int64][]byte) []byte {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	for off, b := range regions {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		copy(want[off:], b)
	}
	return want
}

// allocated is the space the file at p takes (st_blocks*512).
func allocated(t *testing.T, p string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// sparseSrc makes a directory of sparse files: holes at the start, in the
// middle and at the end, unaligned data (the 6 bytes), a region
// written as zeros, data up to the end, and a dense file.
func sparseSrc(t *testing.T) (dir string, contents map[string][]byte) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const size = 24 << 20
	contents = map[string][]byte{
		"vm.img": sparseFile(t, filepath.Join(dir, "vm.img"), size, map[int64][]byte{
			0:               rnd(10, 5000),
			12_012_345:      []byte("hello!"),
			15<<20 + 777:    rnd(11, 300<<10),
			18 << 20:        make([]byte, 1<<20), // written as zeros: allocated
			20<<20 + 4096*3: rnd(12, 3<<20),
			size/2 + 1<<20:  rnd(13, 1),
			size/2 + 2<<20:  rnd(14, 4096),
			size/2 + 3<<20:  rnd(15, 8192),
			19<<20 + 123:    rnd(16, 70000),
		}),
		"lead-hole.img": sparseFile(t, filepath.Join(dir, "lead-hole.img"), size, map[int64][]byte{
			9<<20 + 1:   rnd(20, 2<<20),
			size - 3000: rnd(21, 3000), // data up to the end
		}),
		"all-hole.img": sparseFile(t, filepath.Join(dir, "all-hole.img"), size, nil),
		"dense":        sparseFile(t, filepath.Join(dir, "dense"), 3<<20, map[int64][]byte{0: rnd(30, 3<<20)}),
	}
	return dir, contents
}

// noHoles is a filesystem whose files cannot tell where their data lies:
// every file is read plainly, holes and all, as before the archiver knew
// holes.
func noHoles(fsys vfs.FS) vfs.FS {
	ffs := faultfs.New(fsys)
	ffs.Inject(faultfs.Rule{Op: faultfs.OpData, Err: errors.ErrUnsupported})
	return ffs
}

// TestSparseFileSnapshotUnchanged: backing up sparse files without
// reading their holes stores the very snapshot a plain read stores —
// same sizes, same blob IDs, so the same chunk boundaries — with the
// default chunk sizes and with small ones, and the holes are not read.
func TestSparseFileSnapshotUnchanged(t *testing.T) {
	dir, contents := sparseSrc(t)
	var sizes, holes int64
	for name, c := range contents {
		sizes += int64(len(c))
		holes += int64(len(c)) - allocated(t, filepath.Join(dir, name))
	}
	t.Logf("%d bytes in files, %d of them in holes", sizes, holes)
	for _, p := range []struct {
		name          string
		min, avg, max int
	}{
		{"default chunks", 512 << 10, 1 << 20, 8 << 20},
		{"small chunks", 1 << 10, 4 << 10, 16 << 10},
	} {
		t.Run(p.name, func(t *testing.T) {
			ctx := context.Background()
			r, err := repository.Init(ctx, mem.New(), "pw", repository.Options{KDF: crypto.WeakKDF(), ChunkMin: p.min, ChunkAvg: p.avg, ChunkMax: p.max})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.LoadIndex(ctx, false); err != nil {
				t.Fatal(err)
			}
			sparse := snapshotPath(t, r, vfs.NewOS(), tree.ID{}, dir)
			plain := snapshotPath(t, r, noHoles(vfs.NewOS()), tree.ID{}, dir)
			if len(sparse.errs) != 0 || len(plain.errs) != 0 {
				t.Fatalf("errors: %v, %v", sparse.errs, plain.errs)
			}
			for name, want := range contents {
				p := filepath.Join(dir, name)
				s, pl := sparse.nodes[p], plain.nodes[p]
				if s == nil || pl == nil {
					t.Fatalf("%s missing from a snapshot", p)
				}
				if s.Size != pl.Size || !slices.Equal(s.Content, pl.Content) {
					t.Errorf("%s: %d bytes in %d blobs, read plainly %d bytes in %d blobs: the snapshots differ", name, s.Size, len(s.Content), pl.Size, len(pl.Content))
				}
				if got := sparse.content(t, p); !bytes.Equal(got, want) {
					t.Errorf("%s: the stored content differs from the file", name)
				}
			}
			// The directory's tree, not the root's: /tmp and other
			// ancestors change as other tests run.
			if s, pl := sparse.nodes[dir], plain.nodes[dir]; s == nil || pl == nil || *s.Subtree != *pl.Subtree {
				t.Errorf("the trees of %s differ", dir)
			}
			if got := plain.stats.HoleBytes.Load(); got != 0 {
				t.Errorf("plain read: %d hole bytes", got)
			}
			// Holes are whole blocks; SEEK_DATA may report a few blocks
			// of a hole as data, never the other way.
			got := sparse.stats.HoleBytes.Load()
			t.Logf("%d hole bytes not read", got)
			if got > holes || got < holes-256<<10 {
				t.Errorf("%d hole bytes not read; the files have %d bytes of holes", got, holes)
			}
			if sparse.stats.BytesRead.Load() != sizes {
				t.Errorf("%d bytes read; want %d", sparse.stats.BytesRead.Load(), sizes)
			}
		})
	}
}

// TestSparseFileChangesWhileRead: a sparse file that changes while it is
// read is stored as a plain read could have seen it, each region as it is
// when the reader reaches it; where finding the data fails, the rest is
// read plainly. The changes happen just before the reader looks up the
// second region (the first data ends at 8 KiB).
func TestSparseFileChangesWhileRead(t *testing.T) {
	const size = 16 << 20
	regions := map[int64][]byte{0: rnd(40, 5000), 6 << 20: rnd(41, 1<<20)}
	for _, c := range []struct {
		name   string
		change func(f *os.File) error
		err    error // of the lookup instead of a change
		// stored returns what must be stored, given the content before
		// and after the change.
		stored func(before, after []byte) []byte
	}{
		{name: "a hole ahead gets data", change: func(f *os.File) error {
			_, err := f.WriteAt(rnd(42, 70000), 3<<20+5)
			return err
		}},
		{name: "data behind changes", change: func(f *os.File) error {
			_, err := f.WriteAt([]byte("changed"), 10)
			return err
		}, stored: func(before, _ []byte) []byte { return before }},
		{name: "grows past a hole", change: func(f *os.File) error {
			_, err := f.WriteAt(rnd(43, 9000), size+1<<20)
			return err
		}},
		{name: "shrinks into a hole", change: func(f *os.File) error { return f.Truncate(1 << 20) }},
		{name: "shrinks into the data", change: func(f *os.File) error { return f.Truncate(6<<20 + 100) }},
		{name: "emptied", change: func(f *os.File) error { return f.Truncate(0) },
			// The first 8 KiB were read before.
			stored: func(before, _ []byte) []byte { return before[:8192] }},
		{name: "lookup fails", err: syscall.EIO},
		{name: "lookup unsupported", err: errors.ErrUnsupported},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "src")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "vm.img")
			before := sparseFile(t, p, size, regions)
			ffs := faultfs.New(vfs.NewOS())
			rule := faultfs.Rule{Op: faultfs.OpData, Path: p, N: 2, Err: c.err}
			if c.change != nil {
				rule.Before = func() {
					f, err := os.OpenFile(p, os.O_WRONLY, 0)
					if err == nil {
						err = c.change(f)
						f.Close()
					}
					if err != nil {
						t.Error(err)
					}
				}
			}
			ffs.Inject(rule)
			res := snapshotPath(t, memRepo(t), ffs, tree.ID{}, dir)
			if len(ffs.Fired()) != 1 {
				t.Fatalf("the change fired %d times", len(ffs.Fired()))
			}
			if len(res.errs) != 0 {
				t.Fatalf("errors: %v", res.errs)
			}
			after, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			want := after
			if c.stored != nil {
				want = c.stored(before, after)
			}
			n := res.nodes[p]
			if got := res.content(t, p); !bytes.Equal(got, want) || n.Size != uint64(len(want)) {
				t.Errorf("stored %d bytes with size %d; want %d bytes", len(got), n.Size, len(want))
			}
			if c.err != nil && res.stats.HoleBytes.Load() != 0 {
				t.Errorf("%d hole bytes skipped after the lookup failed", res.stats.HoleBytes.Load())
			}
		})
	}
}
