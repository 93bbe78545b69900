//go:build linux

package restorer_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/restorer"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/fsmeta"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
)

// zeroLoads is a repository that counts the loads of all-zero blobs.
type zeroLoads struct {
	*repository.Repository
	mu    sync.Mutex
	loads int
	ids   map[tree.ID]bool
}

func (z *zeroLoads) LoadBlob(ctx context.Context, t pack.BlobType, id tree.ID, buf []byte) ([]byte, error) {
	b, err := z.Repository.LoadBlob(ctx, t, id, buf)
	if err == nil && t == pack.DataBlob && fsmeta.IsZero(b) {
		z.mu.Lock()
		z.loads++
		z.ids[id] = true
		z.mu.Unlock()
	}
	return b, err
}

// TestRestoreSparseFile (issue 18, target 6): a 50 MB sparse file with
// one 6-byte write, backed up from disk and restored to disk, takes at
// most 8 KiB; a file of data regions, a region written as zeros and holes
// keeps only its non-zero blocks; both restore byte-exact. An all-zero
// blob is loaded about once per worker, not once per use, with or without
// read-ahead.
func TestRestoreSparseFile(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, size int64, regions map[int64][]byte) {
		f, err := os.Create(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		for off, b := range regions {
			if _, err := f.WriteAt(b, off); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("vm.img", 50_000_000, map[int64][]byte{25_012_345: []byte("hello!")})
	// Non-zero blocks: 1 MiB + 1 block of 7 MiB+3, 1 of the end.
	write("mixed.img", 40<<20, map[int64][]byte{
		7<<20 + 3:    randBytes(50, 1<<20),
		20 << 20:     make([]byte, 2<<20), // written as zeros: a hole once restored
		40<<20 - 100: randBytes(51, 100),
	})
	const mixedData = 1<<20 + 2*4096
	for _, c := range []struct {
		name          string
		min, avg, max int
		readahead     bool
	}{
		{"default chunks", 512 << 10, 1 << 20, 8 << 20, false},
		{"small chunks", 1 << 10, 4 << 10, 16 << 10, false},
		{"small chunks, read-ahead", 1 << 10, 4 << 10, 16 << 10, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, root := backUp(t, mem.New(), repository.Options{ChunkMin: c.min, ChunkAvg: c.avg, ChunkMax: c.max}, src)
			zl := &zeroLoads{Repository: r, ids: map[tree.ID]bool{}}
			dst := t.TempDir()
			res := restorer.New(zl, restorer.Options{Verify: true, Readahead: c.readahead})
			if err := res.Restore(ctx, root, src, dst); err != nil {
				t.Fatal(err)
			}
			if bad := res.VerifyFailures(); len(bad) != 0 {
				t.Fatalf("verify failures: %v", bad)
			}
			for name, limit := range map[string]int64{"vm.img": 8 << 10, "mixed.img": mixedData + 8<<10} {
				p := filepath.Join(dst, name)
				var st syscall.Stat_t
				if err := syscall.Stat(p, &st); err != nil {
					t.Fatal(err)
				}
				used := st.Blocks * 512
				t.Logf("%s: %d bytes allocated for %d", name, used, st.Size)
				if used > limit {
					t.Errorf("%s: %d bytes allocated; want at most %d", name, used, limit)
				}
				want, err := os.ReadFile(filepath.Join(src, name))
				if err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s: the restored content differs", name)
				}
			}
			if c.readahead {
				return
			}
			// Every worker may load an all-zero blob before one of them
			// has found it to be zeros.
			t.Logf("%d loads of %d all-zero blobs", zl.loads, len(zl.ids))
			if zl.loads == 0 || zl.loads > 4*len(zl.ids) {
				t.Errorf("%d loads of %d all-zero blobs; want at most 4 each", zl.loads, len(zl.ids))
			}
		})
	}
}
