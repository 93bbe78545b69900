package restorer_test

import (
	"bytes"
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/archiver"
	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/restorer"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
)

// fixture is a real in-memory repository with small chunks, so that a
// file of a few hundred KiB is written by several workers in parts.
type fixture struct {
	t    *testing.T
	be   *mem.Backend
	r    *repository.Repository
	arch *archiver.Archiver
	stop func()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureOn(t, mem.New(), nil)
}

// newFixtureOn is newFixture on be, seen by the repository through wrap
// when that is not nil (a fault injector, say).
func newFixtureOn(t *testing.T, be *mem.Backend, wrap func(storage.Backend) storage.Backend) *fixture {
	t.Helper()
	ctx := context.Background()
	var store storage.Backend = be
	if wrap != nil {
		store = wrap(be)
	}
	r, err := repository.Init(ctx, store, "pw", repository.Options{KDF: crypto.WeakKDF(), ChunkMin: 1 << 10, ChunkAvg: 4 << 10, ChunkMax: 16 << 10, PackSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx, false); err != nil {
		t.Fatal(err)
	}
	cfg := r.Config()
	a, err := archiver.New(r, archiver.Options{Chunker: cfg.Chunker.Params()})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, be: be, r: r, arch: a}
	f.stop = a.StartStreams(ctx)
	return f
}

// file stores content and returns its node.
func (f *fixture) file(name string, content []byte) *tree.Node {
	f.t.Helper()
	ids, n, err := f.arch.SaveReader(context.Background(), bytes.NewReader(content))
	if err != nil {
		f.t.Fatal(err)
	}
	return &tree.Node{Name: tree.RawString(name), Type: tree.TypeFile, Mode: 0o640, ModTime: time.Unix(1700000000, 0), Size: uint64(n), Content: ids}
}

// flush writes the open packs and returns the packs added since before.
func (f *fixture) flush(before []string) []string {
	f.t.Helper()
	if err := f.r.Flush(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	var added []string
	for _, p := range f.packs() {
		if !slices.Contains(before, p) {
			added = append(added, p)
		}
	}
	return added
}

func (f *fixture) packs() []string {
	f.t.Helper()
	var out []string
	err := f.be.List(context.Background(), storage.PackFile, func(fi storage.FileInfo) error {
		out = append(out, fi.Name)
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f *fixture) root(nodes ...*tree.Node) restorer.ID {
	f.t.Helper()
	slices.SortFunc(nodes, func(a, b *tree.Node) int { return strings.Compare(string(a.Name), string(b.Name)) })
	id, err := f.arch.SaveTree(context.Background(), &tree.Tree{Nodes: nodes})
	if err != nil {
		f.t.Fatal(err)
	}
	f.flush(nil)
	f.stop()
	return id
}

func randBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestFailedFileNeverUnderItsRealName (issue 14, finding 9): files whose
// blobs are missing from the repository, among them a large file written
// in parallel parts of which only the last fails, and the first name of
// two hard links. After the restore, no file under its real name holds
// wrong content: the failed ones are absent (or, where the target held an
// older version, that version is left whole), no partial file is left,
// every failure is reported naming its file, and the good files restore
// and verify.
func TestFailedFileNeverUnderItsRealName(t *testing.T) {
	for _, existing := range []bool{false, true} {
		name := "fresh target"
		if existing {
			name = "over an older restore"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			bigContent := randBytes(1, 400<<10)
			good := f.file("good", []byte("good content"))
			big := f.file("big", bigContent)
			before := f.flush(nil)
			// Stored in packs that are then lost.
			bad := f.file("bad", randBytes(2, 20<<10))
			bigBad := f.file("bigbad", append(slices.Clone(bigContent), randBytes(3, 64<<10)...))
			h1 := f.file("h1", randBytes(4, 8<<10))
			lost := f.flush(before)
			if len(lost) == 0 {
				t.Fatal("no pack for the files to lose")
			}
			h1.Inode, h1.Links = 77, 2
			h2 := *h1
			h2.Name = "h2"
			if len(bigBad.Content) <= 2*16 {
				t.Fatalf("bigbad has %d blobs: too few for parallel parts", len(bigBad.Content))
			}
			root := f.root(good, big, bad, bigBad, h1, &h2)
			for _, p := range lost {
				if err := f.be.Remove(ctx, storage.Handle{Type: storage.PackFile, Name: p}); err != nil {
					t.Fatal(err)
				}
			}

			dst := t.TempDir()
			if existing {
				for _, n := range []string{"bad", "bigbad", "h1"} {
					if err := os.WriteFile(filepath.Join(dst, n), []byte("older version of "+n), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			var mu sync.Mutex
			failed := map[string]string{}
			res := restorer.New(f.r, restorer.Options{Verify: true, Workers: 4, NoOwner: true, OnError: func(p string, err error) error {
				mu.Lock()
				failed[p] = err.Error()
				mu.Unlock()
				return nil
			}})
			if err := res.Restore(ctx, root, "/", dst); err != nil {
				t.Fatal(err)
			}

			for _, n := range []string{"bad", "bigbad", "h1", "h2"} {
				p := filepath.Join(dst, n)
				msg, ok := failed[p]
				if !ok {
					t.Errorf("%s: no error reported (errors: %v)", n, failed)
				} else if !strings.Contains(msg, n) {
					t.Errorf("%s: error does not name the file: %s", n, msg)
				}
				b, err := os.ReadFile(p)
				switch {
				case existing && n != "h2":
					if string(b) != "older version of "+n {
						t.Errorf("%s: the older version was replaced by %d bytes of a failed restore (%v)", n, len(b), err)
					}
				case err == nil:
					t.Errorf("%s: a failed file is under its real name (%d bytes)", n, len(b))
				}
			}
			for n, want := range map[string][]byte{"good": []byte("good content"), "big": bigContent} {
				if b, err := os.ReadFile(filepath.Join(dst, n)); err != nil || !bytes.Equal(b, want) {
					t.Errorf("%s: restored %d bytes, %v; want %d", n, len(b), err, len(want))
				}
			}
			if bad := res.VerifyFailures(); len(bad) != 0 {
				t.Errorf("verify failures: %v", bad)
			}
			ents, err := os.ReadDir(dst)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				if strings.Contains(e.Name(), "bunker-partial") {
					t.Errorf("left behind: %s", e.Name())
				}
			}
			if got := res.Written(); got != 2 {
				t.Errorf("Written() = %d, want 2", got)
			}
		})
	}
}

// TestHardLinksWaitForTheirFile: later names of a hard-linked file appear
// only once it is complete, and share its inode.
func TestHardLinksWaitForTheirFile(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	content := randBytes(5, 300<<10)
	var nodes []*tree.Node
	first := f.file("a", content)
	first.Inode, first.Links = 9, 3
	for _, n := range []string{"a", "b", "c"} {
		c := *first
		c.Name = tree.RawString(n)
		nodes = append(nodes, &c)
	}
	root := f.root(nodes...)
	dst := t.TempDir()
	res := restorer.New(f.r, restorer.Options{Verify: true, NoOwner: true})
	if err := res.Restore(ctx, root, "/", dst); err != nil {
		t.Fatal(err)
	}
	var ino []uint64
	for _, n := range []string{"a", "b", "c"} {
		b, err := os.ReadFile(filepath.Join(dst, n))
		if err != nil || !bytes.Equal(b, content) {
			t.Fatalf("%s: %d bytes, %v", n, len(b), err)
		}
		fi, err := os.Lstat(filepath.Join(dst, n))
		if err != nil {
			t.Fatal(err)
		}
		ino = append(ino, inode(fi))
		if fi.Mode().Perm() != fs.FileMode(0o640) {
			t.Errorf("%s: mode %v", n, fi.Mode())
		}
	}
	if ino[0] != ino[1] || ino[1] != ino[2] {
		t.Errorf("not one inode: %v", ino)
	}
	if res.Stats.Links.Load() != 2 || res.Stats.FilesDone.Load() != 3 {
		t.Errorf("links %d files %d", res.Stats.Links.Load(), res.Stats.FilesDone.Load())
	}
}

// TestEntryAtPartialNameIsRefused (issue 14): a hostile snapshot puts
// entries at the names its files are written under until complete: a
// FIFO, a device node, a file, a link out, a directory (and at the hashed
// partial name of a long name). Those entries are refused, naming them;
// the files restore whole, as regular files, under their own names.
func TestEntryAtPartialNameIsRefused(t *testing.T) {
	long := strings.Repeat("L", 250)
	for _, typ := range []tree.NodeType{tree.TypeFIFO, tree.TypeCharDev, tree.TypeFile, tree.TypeSymlink, tree.TypeDir} {
		t.Run(string(typ), func(t *testing.T) {
			if typ == tree.TypeCharDev && os.Geteuid() != 0 {
				t.Skip("mknod needs root")
			}
			ctx := context.Background()
			f := newFixture(t)
			outside := filepath.Join(t.TempDir(), "outside")
			if err := os.WriteFile(outside, []byte("precious\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			nodes := []*tree.Node{f.file("a", []byte("content of a")), f.file("-x", []byte("content of -x")), f.file(long, []byte("content of "+long))}
			for _, n := range []string{"a", "-x", long} {
				var c *tree.Node
				switch typ {
				case tree.TypeFile:
					c = f.file(restorer.PartialName(n), []byte("not "+n))
				case tree.TypeDir:
					sub, err := f.arch.SaveTree(ctx, &tree.Tree{Nodes: []*tree.Node{f.file("inside", []byte("x"))}})
					if err != nil {
						t.Fatal(err)
					}
					c = &tree.Node{Name: tree.RawString(restorer.PartialName(n)), Type: typ, Mode: uint32(fs.ModeDir | 0o755), Subtree: &sub}
				default:
					// /dev/null: harmless if the refusal ever fails.
					c = &tree.Node{Name: tree.RawString(restorer.PartialName(n)), Type: typ, Mode: 0o600, Device: 1<<8 | 3, LinkTarget: tree.RawString(outside)}
				}
				nodes = append(nodes, c)
			}
			root := f.root(nodes...)
			dst := t.TempDir()
			var mu sync.Mutex
			failed := map[string]string{}
			res := restorer.New(f.r, restorer.Options{Workers: 4, NoOwner: true, OnError: func(p string, err error) error {
				mu.Lock()
				failed[p] = err.Error()
				mu.Unlock()
				return nil
			}})
			if err := res.Restore(ctx, root, "/", dst); err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"a", "-x", long} {
				p := filepath.Join(dst, n)
				fi, err := os.Lstat(p)
				if err != nil || !fi.Mode().IsRegular() {
					t.Errorf("%s: %v, %v; want a regular file", n, fi, err)
				} else if b, _ := os.ReadFile(p); string(b) != "content of "+n {
					t.Errorf("%s holds %q", n, b)
				}
				pp := filepath.Join(dst, restorer.PartialName(n))
				if _, err := os.Lstat(pp); err == nil {
					t.Errorf("%s exists", restorer.PartialName(n))
				}
				if msg := failed[pp]; !strings.Contains(msg, "partial name of "+n) {
					t.Errorf("%s: error %q", restorer.PartialName(n), msg)
				}
			}
			if b, err := os.ReadFile(outside); err != nil || string(b) != "precious\n" {
				t.Errorf("the file outside holds %q, %v", b, err)
			}
		})
	}
}
