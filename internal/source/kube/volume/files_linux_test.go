//go:build linux

package volume_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bunkerbackup/bunker/internal/app/streamtree"
	"github.com/bunkerbackup/bunker/internal/engine/archiver"
	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/source/kube/volume"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
)

// repo is a real in-memory repository with small chunks.
type repo struct {
	r    *repository.Repository
	arch *archiver.Archiver
}

func newRepo(t *testing.T) *repo {
	t.Helper()
	ctx := context.Background()
	r, err := repository.Init(ctx, mem.New(), "pw", repository.Options{KDF: crypto.WeakKDF(), ChunkMin: 4 << 10, ChunkAvg: 16 << 10, ChunkMax: 64 << 10, PackSize: 1 << 20})
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
	return &repo{r: r, arch: a}
}

// backup runs save with a streamtree writer and returns a reader of the
// committed tree.
func (rp *repo) backup(t *testing.T, save func(ctx context.Context, sink source.Sink) error) (source.Tree, error) {
	t.Helper()
	ctx := context.Background()
	w := streamtree.NewWriter(rp.arch, time.Now(), "tester")
	stop := rp.arch.StartStreams(ctx)
	if err := save(ctx, w); err != nil {
		stop()
		return nil, err
	}
	root, err := w.Root(ctx)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	if err := rp.r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return streamtree.NewReader(rp.r, root), nil
}

type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) add(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, s)
}

func (w *warnings) has(t *testing.T, parts ...string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.msgs {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(m, p)
		}
		if ok {
			return
		}
	}
	t.Errorf("no warning with %q among %q", parts, w.msgs)
}

func randBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

var epoch = time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)

// buildSource makes the fixture volume: files with content, empty and
// big files, nested directories, links inside, outside and dangling,
// modes, owners, mtimes, odd names and a named pipe.
func buildSource(t *testing.T, src string) {
	t.Helper()
	write(t, filepath.Join(src, "hello.txt"), []byte("hello, volume\n"), 0o644)
	write(t, filepath.Join(src, "empty"), nil, 0o600)
	write(t, filepath.Join(src, "big.bin"), randBytes(1, 5<<20+777), 0o640)
	write(t, filepath.Join(src, "a", "b", "c", "deep.txt"), []byte("deep"), 0o444)
	write(t, filepath.Join(src, "with space.txt"), []byte("spaces"), 0o755)
	write(t, filepath.Join(src, "ünïcødé-文件", "名前.dat"), randBytes(2, 70_000), 0o600)
	write(t, filepath.Join(src, "locked", "inside.txt"), []byte("in a 0500 dir"), 0o600)
	must(t, os.Mkdir(filepath.Join(src, "emptydir"), 0o711))
	must(t, os.Mkdir(filepath.Join(src, "shared"), 0o755))
	must(t, os.Chmod(filepath.Join(src, "shared"), 0o775|fs.ModeSetgid))
	must(t, os.Symlink("hello.txt", filepath.Join(src, "link-in")))
	must(t, os.Symlink("/etc/passwd", filepath.Join(src, "link-out")))
	must(t, os.Symlink("../../outside", filepath.Join(src, "a", "link-up")))
	must(t, os.Symlink("nowhere", filepath.Join(src, "dangling")))
	must(t, unix.Mkfifo(filepath.Join(src, "a", "pipe"), 0o644))
	if os.Geteuid() == 0 {
		must(t, os.Lchown(filepath.Join(src, "hello.txt"), 1234, 5678))
		must(t, os.Lchown(filepath.Join(src, "a", "b"), 42, 43))
		must(t, os.Lchown(filepath.Join(src, "link-in"), 7, 8))
	}
	// Times last, deepest first, so that no later change moves them.
	var all []string
	must(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		all = append(all, p)
		return err
	}))
	slices.Reverse(all)
	for i, p := range all {
		ts := unix.NsecToTimespec(epoch.Add(time.Duration(i) * time.Hour).UnixNano())
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
	}
	must(t, os.Chmod(filepath.Join(src, "locked"), 0o500))
}

// entryInfo is what a round trip must keep of an entry.
type entryInfo struct {
	mode     uint32
	mtime    int64
	uid, gid uint32
	target   string
	content  []byte
}

// snapshotDir reads everything under dir (without following links),
// by relative path.
func snapshotDir(t *testing.T, dir string, skip func(string) bool) map[string]entryInfo {
	t.Helper()
	out := map[string]entryInfo{}
	must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if skip != nil && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		var st unix.Stat_t
		must(t, unix.Lstat(p, &st))
		e := entryInfo{mode: st.Mode, mtime: st.Mtim.Nano(), uid: st.Uid, gid: st.Gid}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			e.target, err = os.Readlink(p)
			must(t, err)
		case unix.S_IFREG:
			e.content, err = os.ReadFile(p)
			must(t, err)
		}
		if rel == "." {
			e.mtime = 0 // the root's mtime changes with the test's own files
		}
		out[rel] = e
		return nil
	}))
	return out
}

func compareDirs(t *testing.T, want, got map[string]entryInfo) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: missing after restore", p)
			continue
		}
		if g.mode != w.mode || g.mtime != w.mtime || g.uid != w.uid || g.gid != w.gid || g.target != w.target || !bytes.Equal(g.content, w.content) {
			t.Errorf("%s: restored mode %#o mtime %d owner %d:%d link %q %d bytes; want mode %#o mtime %d owner %d:%d link %q %d bytes",
				p, g.mode, g.mtime, g.uid, g.gid, g.target, len(g.content), w.mode, w.mtime, w.uid, w.gid, w.target, len(w.content))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: restored but not in the source", p)
		}
	}
}

// TestSaveLoadRoundTrip saves a volume into a real repository through
// streamtree and loads it back into a new directory.
func TestSaveLoadRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "src")
	buildSource(t, src)
	want := snapshotDir(t, src, func(rel string) bool { return rel == filepath.Join("a", "pipe") })

	rp := newRepo(t)
	var w warnings
	var st volume.Stats
	tree, err := rp.backup(t, func(ctx context.Context, sink source.Sink) error {
		var err error
		st, err = volume.Save(ctx, sink, "volumes/app/data", src, volume.FileOptions{Jobs: 3, Warn: w.add})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	w.has(t, filepath.Join(src, "a", "pipe"), "named pipe skipped")
	if st.Files != 7 || st.Symlinks != 4 || st.Dirs != 8 || st.Skipped != 1 || st.Bytes != int64(14+5<<20+777+4+6+70_000+13) {
		t.Errorf("save stats %+v", st)
	}

	// The backup tree itself.
	e, err := tree.Stat(ctx, "volumes/app/data/shared")
	if err != nil || e.Type != source.TypeDir || e.Mode&fs.ModeSetgid == 0 || e.Mode.Perm() != 0o775 {
		t.Errorf("shared in the backup: %+v %v", e, err)
	}
	if e, err := tree.Stat(ctx, "volumes/app/data/link-out"); err != nil || e.Type != source.TypeSymlink || e.Target != "/etc/passwd" {
		t.Errorf("link-out in the backup: %+v %v", e, err)
	}
	if _, err := tree.Stat(ctx, "volumes/app/data/a/pipe"); err == nil {
		t.Error("the named pipe is in the backup")
	}

	dst := filepath.Join(t.TempDir(), "restore", "here")
	var lw warnings
	lst, err := volume.Load(ctx, tree, "volumes/app/data", dst, volume.FileOptions{Warn: lw.add})
	if err != nil {
		t.Fatal(err)
	}
	if lst.Files != st.Files || lst.Symlinks != st.Symlinks || lst.Dirs != st.Dirs || lst.Bytes != st.Bytes {
		t.Errorf("load stats %+v, save stats %+v", lst, st)
	}
	compareDirs(t, want, snapshotDir(t, dst, nil))
	if len(lw.msgs) != 0 {
		t.Errorf("load warnings: %q", lw.msgs)
	}

	// Loading again over the restored copy replaces files in place and
	// leaves extra files alone.
	write(t, filepath.Join(dst, "extra.txt"), []byte("mine"), 0o600)
	must(t, os.WriteFile(filepath.Join(dst, "hello.txt"), []byte("changed"), 0o644))
	if _, err := volume.Load(ctx, tree, "volumes/app/data", dst, volume.FileOptions{}); err != nil {
		t.Fatal(err)
	}
	got := snapshotDir(t, dst, func(rel string) bool { return rel == "extra.txt" })
	compareDirs(t, want, got)
	if b, err := os.ReadFile(filepath.Join(dst, "extra.txt")); err != nil || string(b) != "mine" {
		t.Errorf("extra file: %q %v", b, err)
	}
	assertNoTemp(t, dst)
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".bunker-") {
			t.Errorf("temporary file left: %s", p)
		}
		return err
	}))
}

// TestLoadNeverWritesThroughLinks plants links in the target where the
// backup has a directory and a file, and a directory where it has a
// file: Load replaces them and leaves what they point to alone.
func TestLoadNeverWritesThroughLinks(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	src := filepath.Join(base, "src")
	write(t, filepath.Join(src, "d", "f.txt"), []byte("from the backup"), 0o644)
	write(t, filepath.Join(src, "file.txt"), []byte("file from the backup"), 0o644)
	write(t, filepath.Join(src, "conflict"), []byte("a file in the backup"), 0o600)
	rp := newRepo(t)
	tree, err := rp.backup(t, func(ctx context.Context, sink source.Sink) error {
		_, err := volume.Save(ctx, sink, "v", src, volume.FileOptions{})
		return err
	})
	must(t, err)

	outside := filepath.Join(base, "outside")
	write(t, filepath.Join(outside, "f.txt"), []byte("precious"), 0o644)
	write(t, filepath.Join(base, "target.txt"), []byte("precious too"), 0o644)
	dst := filepath.Join(base, "dst")
	must(t, os.MkdirAll(dst, 0o755))
	must(t, os.Symlink(outside, filepath.Join(dst, "d")))
	must(t, os.Symlink(filepath.Join(base, "target.txt"), filepath.Join(dst, "file.txt")))
	write(t, filepath.Join(dst, "conflict", "sub", "x"), []byte("x"), 0o644)

	var w warnings
	if _, err := volume.Load(ctx, tree, "v", dst, volume.FileOptions{Warn: w.add}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		filepath.Join(outside, "f.txt"):    "precious",
		filepath.Join(base, "target.txt"):  "precious too",
		filepath.Join(dst, "d", "f.txt"):   "from the backup",
		filepath.Join(dst, "file.txt"):     "file from the backup",
		filepath.Join(dst, "conflict"):     "a file in the backup",
		filepath.Join(outside, "file.txt"): "",
	} {
		b, err := os.ReadFile(p)
		if want == "" {
			if err == nil {
				t.Errorf("%s was written", p)
			}
			continue
		}
		if err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q", p, b, err, want)
		}
	}
	if fi, err := os.Lstat(filepath.Join(dst, "d")); err != nil || !fi.IsDir() {
		t.Errorf("d is not a directory now: %v %v", fi, err)
	}
	if fi, err := os.Lstat(filepath.Join(dst, "file.txt")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("file.txt is not a regular file now: %v %v", fi, err)
	}
	w.has(t, filepath.Join(dst, "d"), "replaced a symbolic link by the directory")
	w.has(t, filepath.Join(dst, "conflict"), "replaced a directory by the file")
	assertNoTemp(t, dst)
}

// TestLoadRejectsEscapingNames: a backup tree whose entry names could
// leave the directory is refused before anything is written there.
func TestLoadRejectsEscapingNames(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	dst := filepath.Join(base, "dst")
	for _, name := range []string{"..", "../escape", "a/b", ".", "", "x\x00y"} {
		tree := fakeTree{"v": {{Name: name, Type: source.TypeFile, Size: 1}}}
		_, err := volume.Load(ctx, tree, "v", dst, volume.FileOptions{})
		if err == nil || !strings.Contains(err.Error(), "invalid entry name") {
			t.Errorf("name %q: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(base, "escape")); err == nil {
		t.Error("a file was written outside the target")
	}
	for _, prefix := range []string{"/abs", "../up", "a/../b", "a//b"} {
		if _, err := volume.Load(ctx, fakeTree{}, prefix, dst, volume.FileOptions{}); err == nil || !strings.Contains(err.Error(), "invalid path") {
			t.Errorf("prefix %q: %v", prefix, err)
		}
	}
}

// fakeTree is a source.Tree of directories only, for names the real
// writer refuses.
type fakeTree map[string][]source.Entry

func (f fakeTree) Stat(ctx context.Context, p string) (source.Entry, error) {
	return source.Entry{Type: source.TypeDir, Meta: source.Meta{Mode: fs.ModeDir | 0o755}}, nil
}

func (f fakeTree) List(ctx context.Context, p string) ([]source.Entry, error) { return f[p], nil }

func (f fakeTree) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("x")), nil
}

// vanishingSink deletes a file of the source when the walk adds the link
// just before it, so the walk finds it gone.
type vanishingSink struct {
	source.Sink
	victim string
}

func (s vanishingSink) Symlink(p, target string, m *source.Meta) error {
	if err := os.Remove(s.victim); err != nil {
		return err
	}
	return s.Sink.Symlink(p, target, m)
}

// TestSaveVanishedFile: a file deleted during the walk is a warning.
func TestSaveVanishedFile(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "a-link-target"), []byte("x"), 0o644)
	must(t, os.Symlink("a-link-target", filepath.Join(src, "b-link")))
	write(t, filepath.Join(src, "c-gone"), []byte("soon gone"), 0o644)
	rp := newRepo(t)
	var w warnings
	tree, err := rp.backup(t, func(ctx context.Context, sink source.Sink) error {
		st, err := volume.Save(ctx, vanishingSink{sink, filepath.Join(src, "c-gone")}, "v", src, volume.FileOptions{Warn: w.add})
		if err == nil && (st.Files != 1 || st.Skipped != 1) {
			t.Errorf("stats %+v", st)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	w.has(t, filepath.Join(src, "c-gone"), "vanished")
	if _, err := tree.Stat(context.Background(), "v/c-gone"); err == nil {
		t.Error("the vanished file is in the backup")
	}
}

// failingSink fails every file.
type failingSink struct{ source.Sink }

var errSink = errors.New("repository full")

func (failingSink) WriteFile(ctx context.Context, p string, rd io.Reader, m *source.Meta) (int64, error) {
	return 0, errSink
}

// TestSaveFails: a file that cannot be stored fails Save with its path;
// a missing directory fails at once.
func TestSaveFails(t *testing.T) {
	src := t.TempDir()
	for i := range 20 {
		write(t, filepath.Join(src, fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%d", i)), []byte("data"), 0o644)
	}
	rp := newRepo(t)
	_, err := rp.backup(t, func(ctx context.Context, sink source.Sink) error {
		_, err := volume.Save(ctx, failingSink{sink}, "v", src, volume.FileOptions{Jobs: 2})
		return err
	})
	if !errors.Is(err, errSink) || !strings.Contains(err.Error(), src) {
		t.Errorf("err = %v", err)
	}
	_, err = volume.Save(context.Background(), failingSink{}, "v", filepath.Join(src, "nope"), volume.FileOptions{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: %v", err)
	}
	if _, err := volume.Save(context.Background(), failingSink{}, "../v", src, volume.FileOptions{}); err == nil {
		t.Error("a bad prefix was accepted")
	}
}

// TestSaveStaysOnFilesystem mounts a tmpfs inside the volume (root only)
// and expects it skipped with a warning.
func TestSaveStaysOnFilesystem(t *testing.T) {
	src := t.TempDir()
	mnt := filepath.Join(src, "mnt")
	must(t, os.Mkdir(mnt, 0o755))
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	write(t, filepath.Join(mnt, "other-fs.txt"), []byte("x"), 0o644)
	write(t, filepath.Join(src, "mine.txt"), []byte("x"), 0o644)
	rp := newRepo(t)
	var w warnings
	tree, err := rp.backup(t, func(ctx context.Context, sink source.Sink) error {
		_, err := volume.Save(ctx, sink, "v", src, volume.FileOptions{Warn: w.add})
		return err
	})
	must(t, err)
	w.has(t, mnt, "another filesystem")
	if _, err := tree.Stat(context.Background(), "v/mnt"); err == nil {
		t.Error("the other filesystem is in the backup")
	}
	if _, err := tree.Stat(context.Background(), "v/mine.txt"); err != nil {
		t.Error(err)
	}
}

// TestLoadHostileTreeLinkThenDirectory: a hostile backup lists a link out
// of the target and then a directory and a file under the same name (the
// engine's trees cannot hold one name twice; a Tree from elsewhere can).
// Load writes nothing through the link it made.
func TestLoadHostileTreeLinkThenDirectory(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	must(t, os.MkdirAll(outside, 0o700))
	dst := filepath.Join(base, "dst")
	link := func(name string) source.Entry {
		return source.Entry{Name: name, Type: source.TypeSymlink, Target: outside, Meta: source.Meta{Mode: fs.ModeSymlink | 0o777}}
	}
	tree := fakeTree{
		"v": {
			link("d"), {Name: "d", Type: source.TypeDir, Meta: source.Meta{Mode: fs.ModeDir | 0o755}},
			link("f"), {Name: "f", Type: source.TypeFile, Size: 1, Meta: source.Meta{Mode: 0o644}},
		},
		"v/d": {{Name: "evil", Type: source.TypeFile, Size: 1, Meta: source.Meta{Mode: 0o644}}},
	}
	var w warnings
	if _, err := volume.Load(ctx, tree, "v", dst, volume.FileOptions{Warn: w.add}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("Load wrote through a link it made: %v", ents)
	}
	if fi, err := os.Lstat(filepath.Join(dst, "d")); err != nil || !fi.IsDir() {
		t.Errorf("d: %v %v", fi, err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "d", "evil")); err != nil || string(b) != "x" {
		t.Errorf("d/evil: %q %v", b, err)
	}
	if fi, err := os.Lstat(filepath.Join(dst, "f")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("f: %v %v", fi, err)
	}
	assertNoTemp(t, dst)
}
