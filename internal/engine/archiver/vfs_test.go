package archiver_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/archiver"
	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/vfs"
	"github.com/bunkerbackup/bunker/internal/engine/vfs/faultfs"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
)

// memRepo is a repository with small chunks (Min 1 KiB), so files of a
// few KiB are "large" and go through the chunker.
func memRepo(t *testing.T) *repository.Repository {
	t.Helper()
	ctx := context.Background()
	r, err := repository.Init(ctx, mem.New(), "pw", repository.Options{KDF: crypto.WeakKDF(), ChunkMin: 1 << 10, ChunkAvg: 4 << 10, ChunkMax: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx, false); err != nil {
		t.Fatal(err)
	}
	return r
}

func rnd(seed uint64, n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// srcFS is /src with a small file, a large one and sub/c.
func srcFS(t *testing.T) *vfs.Mem {
	t.Helper()
	m := vfs.NewMem()
	for _, d := range []string{"/src/sub"} {
		if err := m.MkdirAll(d); err != nil {
			t.Fatal(err)
		}
	}
	for p, b := range map[string][]byte{"/src/a": []byte("small"), "/src/big": rnd(1, 100<<10), "/src/sub/c": []byte("c")} {
		if err := m.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// result is a finished backup: the nodes by path and the reported errors.
type result struct {
	r      *repository.Repository
	root   tree.ID
	nodes  map[string]*tree.Node
	errs   map[string]error
	errors int64
	stats  *archiver.Stats
}

func snapshotFS(t *testing.T, r *repository.Repository, fsys vfs.FS, parent tree.ID) *result {
	t.Helper()
	return snapshotPath(t, r, fsys, parent, "/src")
}

// snapshotPath is snapshotFS of the given absolute path.
func snapshotPath(t *testing.T, r *repository.Repository, fsys vfs.FS, parent tree.ID, src string) *result {
	t.Helper()
	ctx := context.Background()
	res := &result{r: r, nodes: map[string]*tree.Node{}, errs: map[string]error{}}
	var mu sync.Mutex
	a, err := archiver.New(r, archiver.Options{Chunker: r.Config().Chunker.Params(), FS: fsys, Parent: parent,
		OnError: func(p string, err error) error {
			mu.Lock()
			res.errs[p] = err
			mu.Unlock()
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	res.root, err = a.Snapshot(ctx, []string{src})
	if err == nil {
		err = r.Flush(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := walker.Walk(ctx, r, res.root, "/", func(p string, n *tree.Node) error {
		res.nodes[p] = n
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	res.errors = a.Stats.Errors.Load()
	res.stats = &a.Stats
	return res
}

func (res *result) content(t *testing.T, p string) []byte {
	t.Helper()
	n := res.nodes[p]
	if n == nil {
		t.Fatalf("%s not in the snapshot", p)
	}
	var out []byte
	for _, id := range n.Content {
		b, err := res.r.LoadBlob(context.Background(), pack.DataBlob, id, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// TestReadErrorMidFile: EIO while reading a file (in its first block, or
// after some chunks of a large one) is a source error: reported with the
// file's path and cause, the file left out, the rest backed up.
func TestReadErrorMidFile(t *testing.T) {
	for _, c := range []struct {
		name, path string
		n          int
	}{
		{"small file", "/src/a", 1},
		{"large file after some chunks", "/src/big", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := memRepo(t)
			ffs := faultfs.New(srcFS(t))
			ffs.Inject(faultfs.Rule{Op: faultfs.OpRead, Path: c.path, N: c.n, Err: syscall.EIO})
			res := snapshotFS(t, r, ffs, tree.ID{})
			if len(ffs.Fired()) != 1 {
				t.Fatalf("fault fired %d times", len(ffs.Fired()))
			}
			if err := res.errs[c.path]; !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), c.path) {
				t.Errorf("error for %s: %v; want EIO naming it", c.path, err)
			}
			if len(res.errs) != 1 || res.errors != 1 {
				t.Errorf("errors %v (%d counted); want one", res.errs, res.errors)
			}
			if res.nodes[c.path] != nil {
				t.Errorf("%s is in the snapshot", c.path)
			}
			for _, p := range []string{"/src/a", "/src/big", "/src/sub/c"} {
				if p != c.path && res.nodes[p] == nil {
					t.Errorf("%s is missing", p)
				}
			}
		})
	}
}

// TestFileChangesWhileRead: a file changed between its lstat and its
// read is stored as read: the recorded size is that of the content
// stored (a small file that grew past the chunker's minimum is chunked
// from the start), while its times stay those of the lstat, so the next
// backup sees it changed and reads it again instead of reusing it.
func TestFileChangesWhileRead(t *testing.T) {
	for _, c := range []struct {
		name, path string
		now        []byte
	}{
		{"small grows", "/src/a", []byte("small, and more")},
		{"small grows past the minimum chunk", "/src/a", rnd(2, 40<<10)},
		{"large shrinks", "/src/big", rnd(3, 2<<10)},
		{"large grows", "/src/big", rnd(4, 150<<10)},
		{"emptied", "/src/big", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := memRepo(t)
			m := srcFS(t)
			before, err := m.Node(c.path, false)
			if err != nil {
				t.Fatal(err)
			}
			ffs := faultfs.New(m)
			ffs.Inject(faultfs.Rule{Op: faultfs.OpOpen, Path: c.path, N: 1, Before: func() {
				if err := m.WriteFile(c.path, c.now, 0o644); err != nil {
					t.Error(err)
				}
			}})
			res := snapshotFS(t, r, ffs, tree.ID{})
			if len(res.errs) != 0 {
				t.Fatalf("errors: %v", res.errs)
			}
			n := res.nodes[c.path]
			if got := res.content(t, c.path); !bytes.Equal(got, c.now) || n.Size != uint64(len(c.now)) {
				t.Errorf("stored %d bytes with size %d; want the %d read", len(got), n.Size, len(c.now))
			}
			if !n.ModTime.Equal(before.ModTime) {
				t.Errorf("mtime %v; want the lstat's %v", n.ModTime, before.ModTime)
			}
			// Unchanged since: the next backup still reads it again.
			next := snapshotFS(t, r, m, res.root)
			if next.stats.FilesChanged.Load() != 1 || next.stats.FilesUnchanged.Load() != 2 {
				t.Errorf("next backup: %d changed, %d unchanged; want 1 and 2", next.stats.FilesChanged.Load(), next.stats.FilesUnchanged.Load())
			}
			if got := next.content(t, c.path); !bytes.Equal(got, c.now) {
				t.Errorf("next backup stored %d bytes; want %d", len(got), len(c.now))
			}
		})
	}
}

// TestWalkErrors: what the directory walk cannot read is reported by
// path and skipped, and the backup goes on: an entry that vanished after
// the listing, a file that cannot be opened, a directory that cannot be
// opened or listed (kept, empty, with the error noted on its node).
func TestWalkErrors(t *testing.T) {
	for _, c := range []struct {
		name    string
		rule    faultfs.Rule
		gone    []string // left out of the snapshot
		errNode string   // directory kept with Error set
	}{
		{"entry vanished", faultfs.Rule{Op: faultfs.OpNode, Path: "/src/a", Err: syscall.ENOENT}, []string{"/src/a"}, ""},
		{"file unreadable", faultfs.Rule{Op: faultfs.OpOpen, Path: "/src/sub/c", Err: syscall.EACCES}, []string{"/src/sub/c"}, ""},
		{"directory unreadable", faultfs.Rule{Op: faultfs.OpOpenDir, Path: "/src/sub", Err: syscall.EACCES}, []string{"/src/sub/c"}, "/src/sub"},
		{"listing fails", faultfs.Rule{Op: faultfs.OpNames, Path: "/src/sub", Err: syscall.EIO}, []string{"/src/sub/c"}, "/src/sub"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ffs := faultfs.New(srcFS(t))
			ffs.Inject(c.rule)
			res := snapshotFS(t, memRepo(t), ffs, tree.ID{})
			if err := res.errs[c.rule.Path]; !errors.Is(err, c.rule.Err) || !strings.Contains(err.Error(), c.rule.Path) {
				t.Errorf("error for %s: %v; want %v naming it", c.rule.Path, err, c.rule.Err)
			}
			if len(res.errs) != 1 {
				t.Errorf("errors: %v", res.errs)
			}
			for _, p := range []string{"/src", "/src/a", "/src/big", "/src/sub", "/src/sub/c"} {
				gone := false
				for _, g := range c.gone {
					gone = gone || g == p
				}
				if n := res.nodes[p]; (n == nil) != gone {
					t.Errorf("%s in the snapshot: %v; want %v", p, n != nil, !gone)
				}
			}
			if c.errNode != "" {
				if n := res.nodes[c.errNode]; n == nil || !strings.Contains(n.Error, c.rule.Err.Error()) {
					t.Errorf("%s: node %+v; want its Error noted", c.errNode, n)
				}
			}
		})
	}
}

// TestSnapshotFromMemMatchesContent: a backup of the in-memory filesystem
// stores every file's content and metadata.
func TestSnapshotFromMemMatchesContent(t *testing.T) {
	m := srcFS(t)
	if err := m.Symlink("../elsewhere", "/src/sub/link"); err != nil {
		t.Fatal(err)
	}
	res := snapshotFS(t, memRepo(t), m, tree.ID{})
	if len(res.errs) != 0 {
		t.Fatal(res.errs)
	}
	for _, p := range []string{"/src/a", "/src/big", "/src/sub/c"} {
		want, _ := m.ReadFile(p)
		if got := res.content(t, p); !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes; want %d", p, len(got), len(want))
		}
	}
	if n := res.nodes["/src/sub/link"]; n == nil || n.Type != tree.TypeSymlink || n.LinkTarget != "../elsewhere" {
		t.Errorf("link: %+v", n)
	}
}
