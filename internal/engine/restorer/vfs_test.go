package restorer_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/restorer"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/vfs"
	"github.com/bunkerbackup/bunker/internal/engine/vfs/faultfs"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/faulty"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
)

// errorLog collects the errors a restore reports per path.
type errorLog struct {
	mu   sync.Mutex
	errs map[string]error
}

func (l *errorLog) onError(p string, err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.errs == nil {
		l.errs = map[string]error{}
	}
	l.errs[p] = err
	return nil
}

func (l *errorLog) get(p string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errs[p]
}

func (l *errorLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.errs)
}

// TestRestoreIntoMemBitExact restores every kind of entry into the
// in-memory filesystem and finds contents, modes, times, links, xattrs
// and hard links as the snapshot has them.
func TestRestoreIntoMemBitExact(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	big := randBytes(10, 600<<10) // more than partBlobs blobs: parts in parallel
	sparse := append(append(make([]byte, 64<<10), randBytes(11, 10<<10)...), make([]byte, 64<<10)...)
	contents := map[string][]byte{
		"empty":        {},
		"small":        []byte("small file"),
		"big":          big,
		"sparse":       sparse,
		"dir/inner":    randBytes(12, 30<<10),
		"dir/h1":       []byte("hard linked"),
		"dir/sub/h2":   []byte("hard linked"),
		"dir/sub/deep": randBytes(13, 3<<10),
	}
	mt := time.Unix(1600000000, 123456789).UTC()
	file := func(p string, mode fs.FileMode) *tree.Node {
		n := f.file(path.Base(p), contents[p])
		n.Mode, n.ModTime = uint32(mode), mt
		return n
	}
	h1 := file("dir/h1", 0o600)
	h1.Inode, h1.Links = 42, 2
	h2 := file("dir/sub/h2", 0o600)
	h2.Inode, h2.Links = 42, 2
	inner := file("dir/inner", 0o4755)
	inner.Xattrs = []tree.Xattr{{Name: "user.note", Value: []byte("kept")}}
	sub := f.dirNode("sub", 0o750, mt, file("dir/sub/deep", 0o444), h2)
	dir := f.dirNode("dir", 0o700, mt, h1, inner, sub,
		&tree.Node{Name: "link", Type: tree.TypeSymlink, Mode: uint32(fs.ModeSymlink | 0o777), LinkTarget: "../../outside", ModTime: mt},
		&tree.Node{Name: "fifo", Type: tree.TypeFIFO, Mode: uint32(fs.ModeNamedPipe | 0o640), ModTime: mt})
	root := f.root(file("empty", 0o644), file("small", 0o640), file("big", 0o600), file("sparse", 0o600), dir)

	m := vfs.NewMem()
	var log errorLog
	res := restorer.New(f.r, restorer.Options{FS: m, Verify: true, OnError: log.onError})
	if err := res.Restore(ctx, root, "/", "/dst"); err != nil {
		t.Fatal(err)
	}
	if log.len() != 0 || len(res.VerifyFailures()) != 0 {
		t.Fatalf("errors %v, verify failures %v", log.errs, res.VerifyFailures())
	}
	for p, want := range contents {
		got, err := m.ReadFile("/dst/" + p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v; want %d bytes", p, len(got), err, len(want))
		}
	}
	node := func(p string) *tree.Node {
		t.Helper()
		n, err := m.Node("/dst/"+p, true)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for p, mode := range map[string]fs.FileMode{"small": 0o640, "dir/inner": 0o4755, "dir": fs.ModeDir | 0o700, "dir/sub": fs.ModeDir | 0o750, "dir/sub/deep": 0o444, "dir/fifo": fs.ModeNamedPipe | 0o640} {
		if n := node(p); fs.FileMode(n.Mode) != mode || !n.ModTime.Equal(mt) {
			t.Errorf("%s: mode %v mtime %v; want %v %v", p, fs.FileMode(n.Mode), n.ModTime, mode, mt)
		}
	}
	if n := node("dir/link"); n.Type != tree.TypeSymlink || n.LinkTarget != "../../outside" {
		t.Errorf("dir/link: %s -> %q", n.Type, n.LinkTarget)
	}
	if n := node("dir/inner"); !slices.EqualFunc(n.Xattrs, inner.Xattrs, func(a, b tree.Xattr) bool { return a.Name == b.Name && bytes.Equal(a.Value, b.Value) }) {
		t.Errorf("dir/inner xattrs %v", n.Xattrs)
	}
	if a, b := node("dir/h1"), node("dir/sub/h2"); a.Inode != b.Inode || a.Links != 2 {
		t.Errorf("hard links: inodes %d and %d, %d links", a.Inode, b.Inode, a.Links)
	}
	if names := memNames(t, m, "/dst/dir"); strings.Contains(strings.Join(names, " "), "partial") {
		t.Errorf("partial files left: %v", names)
	}
}

// dirNode stores a directory of nodes and returns its node.
func (f *fixture) dirNode(name string, perm fs.FileMode, mt time.Time, nodes ...*tree.Node) *tree.Node {
	f.t.Helper()
	slices.SortFunc(nodes, func(a, b *tree.Node) int { return strings.Compare(string(a.Name), string(b.Name)) })
	id, err := f.arch.SaveTree(context.Background(), &tree.Tree{Nodes: nodes})
	if err != nil {
		f.t.Fatal(err)
	}
	return &tree.Node{Name: tree.RawString(name), Type: tree.TypeDir, Mode: uint32(fs.ModeDir | perm), ModTime: mt, Subtree: &id}
}

func memNames(t *testing.T, m *vfs.Mem, p string) []string {
	t.Helper()
	d, err := m.OpenDir(p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	names, err := d.Names(-1)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestRestoreDiskFullMidFile: the disk fills up (ENOSPC) in the middle of
// a large file written in parallel parts. The failure is reported naming
// the file and its cause; no file is left under the real name with part
// of the content (an older version there stays whole), no partial file is
// left, and the other files restore.
func TestRestoreDiskFullMidFile(t *testing.T) {
	for _, older := range []bool{false, true} {
		name := "fresh target"
		if older {
			name = "over an older version"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			big := randBytes(20, 500<<10)
			root := f.root(f.file("big", big), f.file("other", []byte("other content")))

			m := vfs.NewMem()
			if older {
				if err := m.MkdirAll("/dst"); err != nil {
					t.Fatal(err)
				}
				if err := m.WriteFile("/dst/big", []byte("older big"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			ffs := faultfs.New(m)
			ffs.Inject(faultfs.Rule{Op: faultfs.OpWrite, Path: "/dst/" + restorer.PartialName("big"), N: 20, Err: syscall.ENOSPC})
			var log errorLog
			res := restorer.New(f.r, restorer.Options{FS: ffs, Workers: 4, OnError: log.onError})
			if err := res.Restore(ctx, root, "/", "/dst"); err != nil {
				t.Fatal(err)
			}
			if len(ffs.Fired()) != 1 {
				t.Fatalf("fault fired %d times", len(ffs.Fired()))
			}
			err := log.get("/dst/big")
			if err == nil || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "/dst/big") {
				t.Errorf("error for big: %v; want ENOSPC naming the file", err)
			}
			got, rerr := m.ReadFile("/dst/big")
			switch {
			case older && string(got) != "older big":
				t.Errorf("the older big became %d bytes (%v)", len(got), rerr)
			case !older && rerr == nil:
				t.Errorf("a failed file is under its real name (%d bytes)", len(got))
			}
			if b, err := m.ReadFile("/dst/other"); err != nil || string(b) != "other content" {
				t.Errorf("other: %q, %v", b, err)
			}
			if names := memNames(t, m, "/dst"); !slices.Equal(names, []string{"big", "other"}[boolInt(!older):]) {
				t.Errorf("target holds %v", names)
			}
			if res.Written() != 1 {
				t.Errorf("written %d files; want 1", res.Written())
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestRestoreDiskFullAborts: without an OnError that goes on, the first
// ENOSPC ends the restore with an error that names the file; what was
// written stays only under the partial name.
func TestRestoreDiskFullAborts(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	root := f.root(f.file("big", randBytes(21, 300<<10)))
	m := vfs.NewMem()
	ffs := faultfs.New(m)
	ffs.Inject(faultfs.Rule{Op: faultfs.OpWrite, Path: "/dst/" + restorer.PartialName("big"), N: 3, Err: syscall.ENOSPC})
	err := restorer.New(f.r, restorer.Options{FS: ffs}).Restore(ctx, root, "/", "/dst")
	if err == nil || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "/dst/big") {
		t.Fatalf("restore: %v; want ENOSPC naming /dst/big", err)
	}
	if _, err := m.ReadFile("/dst/big"); err == nil {
		t.Error("the incomplete file is under its real name")
	}
}

// TestRestorePackReadEIO: reading the pack that holds a file's blobs
// fails with EIO, with and without read-ahead. That file is reported by
// name with the cause and is not created; files in other packs restore.
func TestRestorePackReadEIO(t *testing.T) {
	for _, readahead := range []bool{false, true} {
		name := "blob by blob"
		if readahead {
			name = "read-ahead"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			be := mem.New()
			var bad struct {
				sync.Mutex
				packs []string
			}
			fb := faulty.New(be)
			fb.FailWhen(func(op faulty.Op, h storage.Handle) error {
				bad.Lock()
				defer bad.Unlock()
				if op == faulty.OpLoad && h.Type == storage.PackFile && slices.Contains(bad.packs, h.Name) {
					return syscall.EIO
				}
				return nil
			})
			f := newFixtureOn(t, be, func(storage.Backend) storage.Backend { return fb })
			good := f.file("good", randBytes(30, 100<<10))
			before := f.flush(nil)
			broken := f.file("broken", randBytes(31, 100<<10))
			lost := f.flush(before)
			if len(lost) == 0 {
				t.Fatal("no pack for the broken file")
			}
			root := f.root(good, broken)
			bad.Lock()
			bad.packs = lost
			bad.Unlock()

			m := vfs.NewMem()
			var log errorLog
			res := restorer.New(f.r, restorer.Options{FS: m, Readahead: readahead, Verify: true, OnError: log.onError})
			if err := res.Restore(ctx, root, "/", "/dst"); err != nil {
				t.Fatal(err)
			}
			err := log.get("/dst/broken")
			if err == nil || !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "/dst/broken") {
				t.Errorf("error for broken: %v; want EIO naming the file", err)
			}
			if _, err := m.ReadFile("/dst/broken"); err == nil {
				t.Error("the unreadable file is under its real name")
			}
			if names := memNames(t, m, "/dst"); !slices.Equal(names, []string{"good"}) {
				t.Errorf("target holds %v", names)
			}
			if b, err := m.ReadFile("/dst/good"); err != nil || !bytes.Equal(b, randBytes(30, 100<<10)) {
				t.Errorf("good: %d bytes, %v", len(b), err)
			}
		})
	}
}

// TestRestoreMetadataFailureReported: a metadata step that fails (here
// the target filesystem refuses to apply a file's metadata) is reported
// for that file; the content is restored.
func TestRestoreMetadataFailureReported(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	root := f.root(f.file("a", []byte("content")))
	m := vfs.NewMem()
	ffs := faultfs.New(m)
	ffs.Inject(faultfs.Rule{Op: faultfs.OpApply, Path: "/dst/" + restorer.PartialName("a"), Err: syscall.EPERM})
	var log errorLog
	if err := restorer.New(f.r, restorer.Options{FS: ffs, OnError: log.onError}).Restore(ctx, root, "/", "/dst"); err != nil {
		t.Fatal(err)
	}
	if err := log.get("/dst/a"); !errors.Is(err, syscall.EPERM) {
		t.Errorf("error for a: %v; want EPERM", err)
	}
	if b, err := m.ReadFile("/dst/a"); err != nil || string(b) != "content" {
		t.Errorf("a: %q, %v", b, err)
	}
}

// TestRestoreIfDifferent: a delta restore over an earlier one leaves the
// files whose content is the snapshot's (giving them its metadata),
// rewrites the changed ones, including one changed without a change of
// size or time, and with Delete removes what the snapshot lacks.
func TestRestoreIfDifferent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	mt := time.Unix(1600000000, 0).UTC()
	contents := map[string][]byte{"same": randBytes(20, 200<<10), "changed": randBytes(21, 100<<10), "sneaky": randBytes(22, 50<<10)}
	var nodes []*tree.Node
	for name, data := range contents {
		n := f.file(name, data)
		n.Mode, n.ModTime = 0o600, mt
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, func(a, b *tree.Node) int { return strings.Compare(string(a.Name), string(b.Name)) })
	root := f.root(nodes...)
	m := vfs.NewMem()
	if err := restorer.New(f.r, restorer.Options{FS: m}).Restore(ctx, root, "/", "/dst"); err != nil {
		t.Fatal(err)
	}
	// The data directory goes on: one file rewritten, one flipped in
	// place keeping size and time, one added; one left as it was but
	// with another mode.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.WriteFile("/dst/changed", []byte("new content"), 0o600))
	sneaky := bytes.Clone(contents["sneaky"])
	sneaky[1000] ^= 1
	must(m.WriteFile("/dst/sneaky", sneaky, 0o600))
	must(m.Apply("/dst/sneaky", &tree.Node{Type: tree.TypeFile, Mode: 0o600, ModTime: mt}, vfs.Meta{}))
	must(m.WriteFile("/dst/extra", []byte("not in the backup"), 0o600))
	must(m.Apply("/dst/same", &tree.Node{Type: tree.TypeFile, Mode: 0o644, ModTime: mt.Add(time.Hour)}, vfs.Meta{}))

	res := restorer.New(f.r, restorer.Options{FS: m, Overwrite: restorer.OverwriteIfDifferent, Delete: true, Verify: true})
	if err := res.Restore(ctx, root, "/", "/dst"); err != nil {
		t.Fatal(err)
	}
	if got, want := res.Stats.FilesSkipped.Load(), int64(1); got != want {
		t.Errorf("%d files left as they were, want %d (same)", got, want)
	}
	if got, want := res.Stats.FilesDone.Load(), int64(2); got != want {
		t.Errorf("%d files rewritten, want %d (changed, sneaky)", got, want)
	}
	for name, want := range contents {
		if got, err := m.ReadFile("/dst/" + name); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v; want the snapshot's %d", name, len(got), err, len(want))
		}
	}
	if n, err := m.Node("/dst/same", false); err != nil || fs.FileMode(n.Mode) != 0o600 || !n.ModTime.Equal(mt) {
		t.Errorf("same: mode %v mtime %v, %v; want the snapshot's metadata", fs.FileMode(n.Mode), n.ModTime, err)
	}
	if _, err := m.ReadFile("/dst/extra"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("extra: %v, want it deleted", err)
	}
}
