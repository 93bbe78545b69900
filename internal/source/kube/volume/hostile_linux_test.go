//go:build linux

package volume_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/source/kube/volume"
)

// hostileTree is a source.Tree that lists whatever it is given: names
// twice, links out, types Load does not restore, files whose size is a
// lie or that cannot be read.
type hostileTree struct {
	dirs   map[string][]source.Entry
	bodies map[string]string
	broken map[string]bool
}

func (h *hostileTree) Stat(ctx context.Context, p string) (source.Entry, error) {
	return source.Entry{Type: source.TypeDir, Meta: source.Meta{Mode: fs.ModeDir | 0o755}}, nil
}

func (h *hostileTree) List(ctx context.Context, p string) ([]source.Entry, error) {
	return h.dirs[p], nil
}

func (h *hostileTree) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	if h.broken[p] {
		return io.NopCloser(io.MultiReader(strings.NewReader("partly"), errReader{})), nil
	}
	return io.NopCloser(strings.NewReader(h.bodies[p])), nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("pack lost") }

// TestLoadHostileTreesStayInTarget (issue 14, a hostile backup feeding
// `restore kubernetes` volume files): for many seeds, Load restores a
// random tree that names entries twice (a link out, then a directory or
// a file of its name, and the reverse), links to a sentinel directory next
// to the target (absolute, "../" chains, loops), FIFOs and devices, files
// that fail, sometimes a name that is a path, over a target that may hold
// links out, a FIFO and a hard link to a sentinel. Afterwards the
// sentinels are unchanged, nothing new exists next to the target, nothing
// new in it is a sentinel, no file that failed is under its name, and Load
// returned.
func TestLoadHostileTreesStayInTarget(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { hostileLoad(t, seed) })
	}
}

func hostileLoad(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x10ad))
	base := t.TempDir()
	sentinel := filepath.Join(base, "sentinel")
	write(t, filepath.Join(sentinel, "s1"), []byte("sentinel one\n"), 0o640)
	write(t, filepath.Join(sentinel, "sub", "s2"), []byte("sentinel two\n"), 0o4711)
	dst := filepath.Join(base, "dst")

	outward := func(rel string) string {
		up := strings.Repeat("../", strings.Count(rel, "/")+1)
		return []string{filepath.Join(sentinel, "s1"), sentinel, filepath.Join(base, "ghost"), up + "sentinel/sub",
			up + "ghost", strings.Repeat("../", 20) + strings.TrimPrefix(sentinel, "/"), "..", path.Base(rel)}[rng.IntN(8)]
	}
	h := &hostileTree{dirs: map[string][]source.Entry{}, bodies: map[string]string{}, broken: map[string]bool{}}
	bad := map[string]bool{} // dst-relative paths of files that must fail
	names := []string{"a", "b", "c", "sub", "s1"}
	nBad := 0
	pathNames := rng.IntN(4) == 0 // some seeds also name an entry with a path
	var gen func(tp, rel string, depth int)
	gen = func(tp, rel string, depth int) {
		for range 2 + rng.IntN(6) {
			name := names[rng.IntN(len(names))]
			m := source.Meta{Mode: 0o644, ModTime: time.Unix(1700000000, 0), UID: uint32(rng.IntN(2)) * 1000}
			e := source.Entry{Name: name, Meta: m}
			switch k := rng.IntN(100); {
			case k < 30:
				e.Type = source.TypeFile
				body := strings.Repeat("x", rng.IntN(3000))
				h.bodies[path.Join(tp, name)] = body
				e.Size = int64(len(body))
			case k < 34: // a file that fails (Load stops), under a name of its own
				nBad++
				e.Name = fmt.Sprint("bad", nBad)
				e.Type, e.Size = source.TypeFile, 10
				if rng.IntN(2) == 0 {
					h.broken[path.Join(tp, e.Name)] = true
				} else {
					h.bodies[path.Join(tp, e.Name)] = "a lie"
				}
				bad[path.Join(rel, e.Name)] = true
			case k < 70:
				e.Type, e.Target, e.Mode = source.TypeSymlink, outward(path.Join(rel, name)), fs.ModeSymlink|0o777
			case k < 90 && depth < 3:
				e.Type, e.Mode = source.TypeDir, fs.ModeDir|0o755
				gen(path.Join(tp, name), path.Join(rel, name), depth+1)
			case k < 96 || !pathNames:
				e.Type = []source.EntryType{"fifo", "chardev", "dev", "socket"}[rng.IntN(4)]
			default: // a path for a name: Load must refuse it
				e.Name, e.Type = []string{"..", ".", "", "../sentinel", "a\x00b"}[rng.IntN(5)], source.TypeFile
			}
			h.dirs[tp] = append(h.dirs[tp], e)
		}
	}
	gen("v", "", 0)

	existing := rng.IntN(2) == 0
	if existing {
		must(t, os.MkdirAll(filepath.Join(dst, "sub"), 0o755))
		for _, rel := range []string{"a", "b", "sub/a", "sub/s1", "c", "s1"} {
			p := filepath.Join(dst, rel)
			switch rng.IntN(4) {
			case 0:
				must(t, os.Symlink(outward(rel), p))
			case 1:
				must(t, unix.Mkfifo(p, 0o600))
			case 2:
				must(t, os.Link(filepath.Join(sentinel, "s1"), p))
			}
		}
	}
	sentBefore := scanNoFollow(t, sentinel)
	dstBefore := scanNoFollow(t, dst)

	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("panic: %v", p)
			}
		}()
		_, err := volume.Load(context.Background(), h, "v", dst, volume.FileOptions{Jobs: 1 + rng.IntN(4)})
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute): // a bound, not a timing
		t.Fatal("Load did not return")
	}
	if err != nil && strings.HasPrefix(err.Error(), "panic") {
		t.Fatal(err)
	}
	t.Logf("existing target %v: %v", existing, err)

	ents, rerr := os.ReadDir(base)
	must(t, rerr)
	for _, e := range ents {
		if e.Name() != "sentinel" && e.Name() != "dst" {
			t.Errorf("Load created %s next to the target", e.Name())
		}
	}
	sentAfter := scanNoFollow(t, sentinel)
	for p, b := range sentBefore {
		a, ok := sentAfter[p]
		if ok && a.nlink < b.nlink { // an old hard link in the target was replaced
			a.nlink = b.nlink
		}
		if !ok || a != b {
			t.Errorf("sentinel %s changed:\n  before %+v\n  after  %+v", p, b, a)
		}
	}
	for p := range sentAfter {
		if _, ok := sentBefore[p]; !ok {
			t.Errorf("Load created %s in the sentinel directory", p)
		}
	}
	for p, a := range scanNoFollow(t, dst) {
		if b, ok := dstBefore[p]; ok && b.ino == a.ino {
			continue
		}
		for sp, s := range sentBefore {
			if s.ino == a.ino && s.dev == a.dev {
				t.Errorf("%s in the target is the sentinel %s", p, sp)
			}
		}
		if bad[p] {
			t.Errorf("%s failed but is under its name (%v)", p, a.mode)
		}
		if strings.HasSuffix(p, ".tmp") {
			t.Errorf("temporary file left: %s", p)
		}
	}
}

type noFollowEntry struct {
	mode         fs.FileMode
	ino, dev     uint64
	nlink        uint64
	uid          uint32
	mtime        int64
	body, target string
}

// scanNoFollow maps every path below dir to what it is, never following a
// link.
func scanNoFollow(t *testing.T, dir string) map[string]noFollowEntry {
	t.Helper()
	out := map[string]noFollowEntry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := noFollowEntry{mode: fi.Mode(), ino: st.Ino, dev: st.Dev, nlink: st.Nlink, uid: st.Uid, mtime: fi.ModTime().UnixNano()}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.body = string(b)
		} else if fi.Mode()&fs.ModeSymlink != 0 {
			e.target, _ = os.Readlink(p)
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}
