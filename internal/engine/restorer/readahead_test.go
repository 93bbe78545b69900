package restorer_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/restorer"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
)

// packReads records the range reads of packs.
type packReads struct {
	storage.Backend
	mu    sync.Mutex
	on    bool
	reads []packRead
}

type packRead struct {
	pack      string
	off, size int64
}

func (p *packReads) Load(ctx context.Context, h storage.Handle, n int, off int64, fn func(io.Reader) error) error {
	if h.Type == storage.PackFile {
		p.mu.Lock()
		if p.on {
			p.reads = append(p.reads, packRead{h.Name, off, int64(n)})
		}
		p.mu.Unlock()
	}
	return p.Backend.Load(ctx, h, n, off, fn)
}

// restoreCounted restores snapPath of root into dst with read-ahead
// bounded by ready and kept bytes, verified, recording store's pack
// reads from the start of the restore.
func restoreCounted(t *testing.T, r *repository.Repository, store *packReads, root tree.ID, snapPath, dst string, ready, kept int64) *restorer.Restorer {
	t.Helper()
	res := restorer.New(r, restorer.Options{Readahead: true, Verify: true, NoOwner: true, SpillDir: t.TempDir()})
	restorer.SetReadaheadLimits(res, ready, kept)
	store.mu.Lock()
	store.on = true
	store.mu.Unlock()
	if err := res.Restore(context.Background(), root, snapPath, dst); err != nil {
		t.Fatal(err)
	}
	if bad := res.VerifyFailures(); len(bad) > 0 {
		t.Fatalf("verify failures: %v", bad)
	}
	return res
}

// TestReadaheadReadsEachBlobOnce (issue 18, target 5): the same 50 MB in
// three directories (files in another order in the third, one file twice
// in the second), restored with read-ahead bounds far below the shared
// content (2 MiB of blobs waiting, 1 MiB kept for later files): every
// needed blob's bytes are read from the store by exactly one request, and
// all requests together read at most 1.02x the sealed size of the
// distinct blobs the restore needs (data and trees). The shared blobs that
// leave memory go to the spill file; the restore is byte-exact and
// verified.
func TestReadaheadReadsEachBlobOnce(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "src")
	var names []string
	var contents [][]byte
	for i, size := range []int{20 << 20, 12 << 20, 8 << 20, 5 << 20, 3 << 20, 2 << 20} {
		names = append(names, fmt.Sprintf("f%d", i))
		contents = append(contents, randBytes(uint64(100+i), size))
	}
	for i := 0; i < 40; i++ { // small files: many blobs per pack
		names = append(names, fmt.Sprintf("s%02d", i))
		contents = append(contents, randBytes(uint64(200+i), 1000+i*997))
	}
	write := func(p string, b []byte) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, name := range names {
		write(filepath.Join(src, "a", name), contents[i])
		write(filepath.Join(src, "b", name), contents[i])
		// Walked in the opposite order: the last files of a and b first.
		write(filepath.Join(src, "c", fmt.Sprintf("%03d-%s", len(names)-i, name)), contents[i])
	}
	write(filepath.Join(src, "b", "again"), contents[1])
	write(filepath.Join(src, "unique"), randBytes(300, 3<<20))

	store := &packReads{Backend: mem.New()}
	r, root := backUp(t, store, repository.Options{ChunkMin: 16 << 10, ChunkAvg: 64 << 10, ChunkMax: 256 << 10, PackSize: 4 << 20}, src)

	// What the restore needs: every distinct blob of the tree, sealed.
	needData := map[tree.ID]bool{}
	var needBytes int64
	var walk func(id tree.ID)
	walk = func(id tree.ID) {
		tr, chunks, err := walker.LoadTreeChunks(ctx, r, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range append([]tree.ID{id}, chunks...) {
			loc, ok := r.LookupBlob(pack.TreeBlob, c)
			if !ok {
				t.Fatalf("tree blob %s not in the index", c.Short())
			}
			needBytes += int64(loc.Length)
		}
		for _, n := range tr.Nodes {
			for _, b := range n.Content {
				if !needData[b] {
					needData[b] = true
					loc, ok := r.LookupBlob(pack.DataBlob, b)
					if !ok {
						t.Fatalf("blob %s not in the index", b.Short())
					}
					needBytes += int64(loc.Length)
				}
			}
			if n.Subtree != nil {
				walk(*n.Subtree)
			}
		}
	}
	walk(root)

	dst := filepath.Join(t.TempDir(), "dst")
	res := restoreCounted(t, r, store, root, src, dst, 2<<20, 1<<20)

	var got int64
	for _, rd := range store.reads {
		got += rd.size
	}
	for b := range needData {
		loc, _ := r.LookupBlob(pack.DataBlob, b)
		name := pack.Name(loc.Pack)
		n := 0
		for _, rd := range store.reads {
			if rd.pack == name && rd.off < int64(loc.Offset)+int64(loc.Length) && int64(loc.Offset) < rd.off+rd.size {
				n++
			}
		}
		if n != 1 {
			t.Errorf("blob %s (pack %s at %d, %d bytes) read by %d requests, want 1", b.Short(), loc.Pack.Short(), loc.Offset, loc.Length, n)
			for _, rd := range store.reads {
				if rd.pack == name && rd.off < int64(loc.Offset)+int64(loc.Length) && int64(loc.Offset) < rd.off+rd.size {
					t.Logf("  read at %d, %d bytes", rd.off, rd.size)
				}
			}
		}
	}
	ratio := float64(got) / float64(needBytes)
	t.Logf("%d distinct data blobs; read %d bytes in %d requests for %d needed (%.4fx); %d bytes spilled",
		len(needData), got, len(store.reads), needBytes, ratio, restorer.SpillWritten(res))
	if ratio > 1.02 {
		t.Errorf("read %d bytes for %d needed: %.3fx, want at most 1.02x", got, needBytes, ratio)
	}
	if restorer.SpillWritten(res) == 0 {
		t.Error("nothing went to the spill file: the bounds do not test it")
	}

	// Byte-exact.
	check := func(p string, want []byte) {
		b, err := os.ReadFile(filepath.Join(dst, p))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) {
			t.Errorf("%s differs from the source", p)
		}
	}
	for i, name := range names {
		check(filepath.Join("a", name), contents[i])
		check(filepath.Join("b", name), contents[i])
		check(filepath.Join("c", fmt.Sprintf("%03d-%s", len(names)-i, name)), contents[i])
	}
	check(filepath.Join("b", "again"), contents[1])
}

// TestReadaheadRequestsStayLargeWhenPacksInterleave (issue 18, target 5):
// the packs hold two directories' files interleaved (they were backed up
// first from one directory, a and z files alternating), and the restore
// writes all of a before z. Every request for an a blob also brings z
// blobs that wait long for their files; they must not hold read-ahead's
// room for good and shrink every later request to one blob (one request
// per blob: 4,000-5,000 GETs for a 257 MB restore). Here the 400 files
// come back in about 60 requests, each needed byte read once.
func TestReadaheadRequestsStayLargeWhenPacksInterleave(t *testing.T) {
	first, second := filepath.Join(t.TempDir(), "first"), filepath.Join(t.TempDir(), "second")
	const pairs = 200
	content := map[string][]byte{}
	for i := 0; i < pairs; i++ {
		for k, side := range []string{"a", "z"} {
			b := randBytes(uint64(1000+2*i+k), 20<<10+i*13)
			content[filepath.Join(side, fmt.Sprintf("%03d", i))] = b
			for _, p := range []string{
				filepath.Join(first, "x", fmt.Sprintf("%03d-%s", i, side)), // alternating
				filepath.Join(second, side, fmt.Sprintf("%03d", i)),        // a, then z
			} {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	store := &packReads{Backend: mem.New()}
	r, _ := backUp(t, store, repository.Options{ChunkMin: 64 << 10, ChunkAvg: 128 << 10, ChunkMax: 256 << 10, PackSize: 4 << 20}, first)
	root := backUpAgain(t, r, second)

	dst := filepath.Join(t.TempDir(), "dst")
	res := restoreCounted(t, r, store, root, second, dst, 2<<20, 1<<20) // 512 KiB a request
	for p, want := range content {
		if got, err := os.ReadFile(filepath.Join(dst, p)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s differs from the source (%v)", p, err)
		}
	}
	var got, need int64
	for _, rd := range store.reads {
		got += rd.size
	}
	for _, b := range content {
		need += int64(len(b))
	}
	data := len(store.reads)
	t.Logf("%d files (%d bytes) restored in %d requests reading %d bytes; %d bytes spilled",
		len(content), need, data, got, restorer.SpillWritten(res))
	// 8.7 MB at 512 KiB a request is 17 requests; with the trees and the
	// workers' requests in flight, which share the room, 60-66 were
	// measured. Requests pinned to one blob, as before, were 222-235.
	if data > 100 {
		t.Errorf("%d requests for %d files: read-ahead shrank to single blobs", data, len(content))
	}
	if float64(got) > 1.02*float64(need)+float64(64<<10) {
		t.Errorf("read %d bytes for %d of content: some were read twice", got, need)
	}
}
