//go:build unix

package restorer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/restorer"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

// TestHostileSnapshotsStayInTarget (issue 14, the actor "anyone with the
// repository key, or a hostile source at backup time, feeding a
// restore"): for many seeds, a snapshot tree written directly with the
// tree package, as an attacker with the key would, is restored into a
// target next to a sentinel directory. The trees hold symbolic links to
// the sentinels (absolute, "../" chains, through "/" and back, loops),
// entries named like another entry's partial file, hard-link groups
// (some whose content is lost, some whose first name lies under a
// directory that the old target has as a link out), FIFOs, devices and
// sockets, files whose blobs are missing or whose size is a lie, and
// directories whose tree blob the decoder must refuse (duplicate names, a
// link and a directory of one name, names with "/", "..", "", NUL, split
// chunks that overlap). Half the seeds restore over an old target the
// attacker shaped: links out at the snapshot's names and at their partial
// names, a FIFO, a hard link to a sentinel. Options are random.
//
// Afterwards: the sentinels are unchanged (bytes, mode, owner, times, link
// count), nothing new exists next to the target or at a link's
// destination; nothing new in the target is a hard link to a sentinel;
// every new entry is an entry of the snapshot, of its type (a file's name
// holds a regular file with the snapshot's bytes, never a device or a
// FIFO); a file that fails is not under its real name and is reported;
// the restorer returns (errors, never a panic or a hang).
func TestHostileSnapshotsStayInTarget(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { hostileRestore(t, seed) })
	}
}

// hostileWant is what the snapshot says about one path of the target.
type hostileWant struct {
	node    *tree.Node
	content []byte // of a file that can restore
	bad     bool   // a file that must fail
	group   uint64 // hard-link group (Inode), 0 for none
	refused bool   // a directory whose tree the decoder refuses
}

type hostileGen struct {
	t       *testing.T
	rng     *rand.Rand
	f       *fixture
	base    string
	want    map[string]*hostileWant // by slash path relative to the target
	groups  map[uint64]*hostileWant // hard-link groups: content and goodness
	nGroups uint64
}

// hostileNames is the pool of entry names: few, so that entries collide
// with each other's partial names and with what the old target holds.
var hostileNames = []string{
	"a", "b", "c", "-x", "etc", "sub", "loop",
	restorer.PartialName("a"), restorer.PartialName("b"), restorer.PartialName("-x"),
	strings.Repeat("L", 250), restorer.PartialName(strings.Repeat("L", 250)),
}

// outward returns a link target leading out of the target, for a link at
// rel (slash path in the target): to a sentinel or to a path that does not
// exist (and must not after the restore).
func (g *hostileGen) outward(rel string) string {
	depth := strings.Count(rel, "/") + 1 // "../" this many times is base
	up := strings.Repeat("../", depth)
	s := filepath.Join(g.base, "sentinel")
	viaRoot := strings.Repeat("../", 20) + strings.TrimPrefix(g.base, "/")
	switch g.rng.IntN(12) {
	case 0:
		return filepath.Join(s, "s1")
	case 1:
		return s
	case 2:
		return filepath.Join(s, "sub", "s3")
	case 3:
		return filepath.Join(g.base, fmt.Sprint("ghost", g.rng.IntN(3)))
	case 4:
		return filepath.Join(s, "ghost")
	case 5:
		return up + "sentinel/s1"
	case 6:
		return up + "sentinel"
	case 7:
		return viaRoot + "/sentinel/s2"
	case 8:
		return up + "ghost1"
	case 9:
		return ".."
	case 10:
		return path.Base(rel) // itself: a loop
	default:
		return "loop/../" + up + "sentinel/sub" // through a loop or a link out
	}
}

func (g *hostileGen) modTime() time.Time { return time.Unix(1700000000+g.rng.Int64N(1e6), 0) }

func (g *hostileGen) perm() uint32 {
	return []uint32{0o600, 0o644, 0o755, 0o4755, 0o2750, 0o000, 0o777}[g.rng.IntN(7)]
}

func (g *hostileGen) missingID() tree.ID {
	var id tree.ID
	for i := range id {
		id[i] = byte(g.rng.Uint32())
	}
	return id
}

// fileNode stores content (or lies about it) and returns the node.
func (g *hostileGen) fileNode(name string, w *hostileWant) *tree.Node {
	content := randBytes(g.rng.Uint64(), g.rng.IntN(40<<10))
	n := g.f.file(name, content)
	n.Mode = g.perm()
	n.ModTime = g.modTime()
	n.UID, n.GID = []uint32{0, 1000, 65534}[g.rng.IntN(3)], []uint32{0, 1000, 65534}[g.rng.IntN(3)]
	w.content = content
	switch g.rng.IntN(10) {
	case 0: // a blob that is not in the repository
		n.Content = append(n.Content, g.missingID())
		w.bad = true
	case 1: // only missing blobs
		n.Content = []tree.ID{g.missingID(), g.missingID()}
		w.bad = true
	case 2: // a huge size
		n.Size = []uint64{1 << 40, 1 << 62, 1<<63 + 5, ^uint64(0)}[g.rng.IntN(4)]
		w.bad = true
	case 3: // content longer than the size
		if len(content) > 0 {
			n.Size = uint64(len(content) - 1)
			w.bad = true
		}
	}
	if w.bad {
		w.content = nil
	}
	if g.rng.IntN(6) == 0 {
		n.Xattrs = []tree.Xattr{{Name: "user.bunker", Value: []byte("x")}}
	}
	return n
}

// dir generates the entries of the directory at rel ("" for the root).
func (g *hostileGen) dir(rel string, depth int) []*tree.Node {
	names := slices.Clone(hostileNames)
	g.rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	names = names[:2+g.rng.IntN(6)]
	var nodes []*tree.Node
	for _, name := range names {
		p := path.Join(rel, name)
		w := &hostileWant{}
		var n *tree.Node
		kind := g.rng.IntN(100)
		if depth >= 3 && kind >= 45 && kind < 70 {
			kind = 0 // no deeper directories
		}
		switch {
		case kind < 25:
			n = g.fileNode(name, w)
		case kind < 45:
			n = &tree.Node{Name: tree.RawString(name), Type: tree.TypeSymlink, Mode: uint32(fs.ModeSymlink | 0o777), ModTime: g.modTime(), LinkTarget: tree.RawString(g.outward(p))}
		case kind < 60:
			sub := g.dir(p, depth+1)
			n = &tree.Node{Name: tree.RawString(name), Type: tree.TypeDir, Mode: uint32(fs.ModeDir) | g.perm() | 0o700, ModTime: g.modTime()}
			id := g.saveTree(sub)
			n.Subtree = &id
		case kind < 70:
			n = &tree.Node{Name: tree.RawString(name), Type: tree.TypeDir, Mode: uint32(fs.ModeDir | 0o755), ModTime: g.modTime()}
			id := g.refusedTree()
			n.Subtree = &id
			w.refused = true
		case kind < 85:
			n = g.linkMember(name, w)
		default:
			n = &tree.Node{Name: tree.RawString(name), Mode: 0o600, ModTime: g.modTime()}
			switch g.rng.IntN(4) {
			case 0:
				n.Type = tree.TypeFIFO
			case 1:
				// /dev/null, /dev/zero, /dev/full: a write through one
				// lands nowhere, but must not happen.
				n.Type, n.Device = tree.TypeCharDev, unix.Mkdev(1, []uint32{3, 5, 7}[g.rng.IntN(3)])
			case 2:
				// Major 0 has no block driver: opening it fails.
				n.Type, n.Device = tree.TypeDev, unix.Mkdev(0, uint32(g.rng.IntN(4)))
			default:
				n.Type = tree.TypeSocket
			}
		}
		w.node = n
		g.want[p] = w
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, func(a, b *tree.Node) int { return strings.Compare(string(a.Name), string(b.Name)) })
	return nodes
}

// linkMember returns a file node of a hard-link group, new or existing.
func (g *hostileGen) linkMember(name string, w *hostileWant) *tree.Node {
	if g.nGroups == 0 || g.rng.IntN(3) == 0 {
		g.nGroups++
		gw := &hostileWant{group: 1000 + g.nGroups}
		n := g.fileNode(name, gw)
		n.Inode, n.Links, n.DeviceID = gw.group, 2+uint64(g.rng.IntN(3)), 42
		gw.node = n
		g.groups[gw.group] = gw
	}
	gw := g.groups[1000+1+uint64(g.rng.IntN(int(g.nGroups)))]
	n := *gw.node
	n.Name = tree.RawString(name)
	n.Mode = g.perm() // later names share the first's metadata
	*w = *gw
	return &n
}

// saveTree stores a well-formed tree.
func (g *hostileGen) saveTree(nodes []*tree.Node) tree.ID {
	g.t.Helper()
	id, err := g.f.arch.SaveTree(context.Background(), &tree.Tree{Nodes: nodes})
	if err != nil {
		g.t.Fatal(err)
	}
	return id
}

// saveRaw stores a tree blob as given, bypassing the encoder's checks.
func (g *hostileGen) saveRaw(v any) tree.ID {
	g.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		g.t.Fatal(err)
	}
	id, _, err := g.f.r.SaveBlobWithID(context.Background(), pack.TreeBlob, g.f.r.Hash(b), b)
	if err != nil {
		g.t.Fatal(err)
	}
	return id
}

// refusedTree stores a tree blob the decoder must refuse, each of which
// would lead a write out of the target if it were followed.
func (g *hostileGen) refusedTree() tree.ID {
	link := func(name string) *tree.Node {
		return &tree.Node{Name: tree.RawString(name), Type: tree.TypeSymlink, Mode: uint32(fs.ModeSymlink | 0o777), LinkTarget: tree.RawString(filepath.Join(g.base, "sentinel"))}
	}
	inner := g.saveTree([]*tree.Node{g.f.file("pwned", []byte("pwned\n")), g.f.file("s1", []byte("pwned\n"))})
	dir := func(name string) *tree.Node {
		return &tree.Node{Name: tree.RawString(name), Type: tree.TypeDir, Mode: uint32(fs.ModeDir | 0o755), Subtree: &inner}
	}
	file := func(name string) *tree.Node { return g.f.file(name, []byte("pwned\n")) }
	switch g.rng.IntN(9) {
	case 0: // a link, then a directory of the same name
		return g.saveRaw(&tree.Tree{Nodes: []*tree.Node{link("x"), dir("x")}})
	case 1: // a link, then a file of the same name
		return g.saveRaw(&tree.Tree{Nodes: []*tree.Node{link("x"), file("x")}})
	case 2: // names that are paths
		bad := []string{"..", ".", "", "../../sentinel", "x/../../..", "/" + strings.TrimPrefix(g.base, "/") + "/sentinel"}
		return g.saveRaw(&tree.Tree{Nodes: []*tree.Node{file(bad[g.rng.IntN(len(bad))])}})
	case 3: // a path in a directory's name
		return g.saveRaw(&tree.Tree{Nodes: []*tree.Node{dir("../sentinel")}})
	case 4: // NUL
		return g.saveRaw(&tree.Tree{Nodes: []*tree.Node{file("x\x00/../../sentinel/s1")}})
	case 5: // a split tree whose chunks overlap: a link, then a directory of its name
		c1 := g.saveRaw(&tree.Tree{Nodes: []*tree.Node{link("x")}})
		c2 := g.saveRaw(&tree.Tree{Nodes: []*tree.Node{dir("x")}})
		return g.saveRaw(&tree.Tree{Chunks: []tree.ID{c1, c2}})
	case 6: // out of order: a directory after a link of an earlier name
		return g.saveRaw(&tree.Tree{Nodes: []*tree.Node{dir("y"), link("x")}})
	case 7: // an unknown type
		n := file("x")
		n.Type = "door"
		return g.saveRaw(&tree.Tree{Nodes: []*tree.Node{n}})
	default: // a tree blob that is not there
		return g.missingID()
	}
}

// hostileEntry is what one path looked like.
type hostileEntry struct {
	mode       fs.FileMode
	ino, dev   uint64
	nlink      uint64
	uid, gid   uint32
	mtime      int64
	body, link string
}

func hostileLstat(t *testing.T, p string) (hostileEntry, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return hostileEntry{}, err
	}
	st := fi.Sys().(*syscall.Stat_t)
	e := hostileEntry{mode: fi.Mode(), ino: uint64(st.Ino), dev: uint64(st.Dev), nlink: uint64(st.Nlink), uid: st.Uid, gid: st.Gid, mtime: fi.ModTime().UnixNano()}
	switch {
	case fi.Mode().IsRegular():
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		e.body = string(b)
	case fi.Mode()&fs.ModeSymlink != 0:
		e.link, _ = os.Readlink(p)
	}
	return e, nil
}

// hostileScan maps every path below dir (relative, slash-separated; "."
// for dir) to what it is, never following a link.
func hostileScan(t *testing.T, dir string) map[string]hostileEntry {
	t.Helper()
	out := map[string]hostileEntry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		e, err := hostileLstat(t, p)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

// plantOld shapes an old target: at some of the snapshot's names (and
// their partial names) a link out, a FIFO, a hard link to a sentinel, an
// older file; the directories on the way are real.
func (g *hostileGen) plantOld(target string) {
	g.t.Helper()
	paths := make([]string, 0, len(g.want))
	for p := range g.want {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	planted := map[string]bool{}
	for _, p := range paths {
		if g.rng.IntN(3) != 0 {
			continue
		}
		blocked := false
		for q := path.Dir(p); q != "."; q = path.Dir(q) {
			blocked = blocked || planted[q]
		}
		if blocked {
			continue
		}
		name := p
		if g.rng.IntN(3) == 0 {
			name = path.Join(path.Dir(p), restorer.PartialName(path.Base(p)))
		}
		full := filepath.Join(target, filepath.FromSlash(name))
		must(g.t, os.MkdirAll(filepath.Dir(full), 0o755))
		var err error
		switch g.rng.IntN(5) {
		case 0, 1:
			err = os.Symlink(g.outward(name), full)
		case 2:
			err = unix.Mkfifo(full, 0o600)
		case 3:
			err = os.Link(filepath.Join(g.base, "sentinel", "s2"), full)
		default:
			err = os.WriteFile(full, []byte("older version\n"), 0o640)
		}
		if err != nil && !errors.Is(err, fs.ErrExist) {
			g.t.Fatal(err)
		}
		planted[name] = true
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func hostileRestore(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	base := t.TempDir()
	sentinel := filepath.Join(base, "sentinel")
	must(t, os.MkdirAll(filepath.Join(sentinel, "sub"), 0o750))
	for name, body := range map[string]string{"s1": "sentinel one\n", "s2": "sentinel two\n", "sub/s3": "sentinel three\n"} {
		must(t, os.WriteFile(filepath.Join(sentinel, name), []byte(body), 0o640))
	}
	must(t, os.Chmod(filepath.Join(sentinel, "s2"), 0o4711))
	old := time.Unix(1500000000, 0)
	for _, p := range []string{"s1", "s2", "sub/s3", "sub", "."} {
		must(t, os.Chtimes(filepath.Join(sentinel, p), old, old))
	}

	f := newFixture(t)
	g := &hostileGen{t: t, rng: rng, f: f, base: base, want: map[string]*hostileWant{}, groups: map[uint64]*hostileWant{}}
	var root tree.ID
	if rng.IntN(10) == 0 {
		root = g.refusedTree()
	} else {
		// Every seed also has a hard-link group whose first name, hl/s1,
		// is under a directory the old target has as a link to the
		// sentinel directory (which holds an s1).
		nodes := g.dir("", 0)
		if g.want["hl"] == nil && g.want["hl2"] == nil {
			w := &hostileWant{group: 999}
			first := g.fileNode("s1", w)
			first.Inode, first.Links, first.DeviceID = 999, 2, 42
			w.node = first
			second := *first
			second.Name = "hl2"
			w2 := *w
			w2.node = &second
			g.want["hl/s1"], g.want["hl2"] = w, &w2
			sub := g.saveTree([]*tree.Node{first})
			g.want["hl"] = &hostileWant{node: &tree.Node{Name: "hl", Type: tree.TypeDir, Mode: uint32(fs.ModeDir | 0o755), Subtree: &sub}}
			nodes = append(nodes, g.want["hl"].node, &second)
			slices.SortFunc(nodes, func(a, b *tree.Node) int { return strings.Compare(string(a.Name), string(b.Name)) })
		}
		root = g.saveTree(nodes)
	}
	f.flush(nil)
	f.stop()

	target := filepath.Join(base, "target")
	existing := rng.IntN(2) == 0
	if existing {
		g.plantOld(target)
		if g.want["hl"] != nil {
			must(t, os.MkdirAll(target, 0o755))
			must(t, os.RemoveAll(filepath.Join(target, "hl")))
			must(t, os.Symlink(sentinel, filepath.Join(target, "hl")))
		}
	}
	sentBefore := hostileScan(t, sentinel)
	before := hostileScan(t, target)

	opts := restorer.Options{
		Overwrite: []string{restorer.OverwriteAlways, restorer.OverwriteIfChanged, restorer.OverwriteNever}[rng.IntN(3)],
		Delete:    rng.IntN(2) == 0,
		Verify:    rng.IntN(2) == 0,
		Workers:   1 + rng.IntN(4),
		NoOwner:   rng.IntN(2) == 0,
		NoXattrs:  rng.IntN(2) == 0,
		Readahead: rng.IntN(2) == 0,
	}
	var mu sync.Mutex
	failed := map[string]string{}
	opts.OnError = func(p string, err error) error {
		mu.Lock()
		failed[p] = err.Error()
		mu.Unlock()
		return nil
	}
	t.Logf("existing target %v, options %+v", existing, opts)
	res := restorer.New(f.r, opts)
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("panic: %v\n%s", p, debug.Stack())
			}
		}()
		done <- res.Restore(context.Background(), root, "/", target)
	}()
	var rerr error
	select {
	case rerr = <-done:
	case <-time.After(time.Minute): // a bound, not a timing: a FIFO opened for writing blocks forever
		t.Fatal("the restore did not return: blocked opening a FIFO or device?")
	}
	if rerr != nil && strings.HasPrefix(rerr.Error(), "panic") {
		t.Fatal(rerr)
	}
	t.Logf("restore: %v; %d entries reported", rerr, len(failed))
	defer func() {
		if t.Failed() {
			for p, w := range g.want {
				t.Logf("snapshot %s: %s bad=%v group=%d refused=%v", p, w.node.Type, w.bad, w.group, w.refused)
			}
			for p, e := range failed {
				t.Logf("reported %s: %s", p, e)
			}
		}
	}()

	// (1) Next to the target: the sentinels as they were, nothing new.
	ents, err := os.ReadDir(base)
	must(t, err)
	for _, e := range ents {
		if e.Name() != "sentinel" && e.Name() != "target" {
			t.Errorf("the restore created %s next to the target", filepath.Join(base, e.Name()))
		}
	}
	sentAfter := hostileScan(t, sentinel)
	for p, b := range sentBefore {
		if a, ok := sentAfter[p]; !ok {
			t.Errorf("sentinel %s was removed", p)
		} else if a.nlink > b.nlink || func() bool { a.nlink = b.nlink; return a != b }() {
			// (Fewer links: the restore replaced an old hard link to it.)
			t.Errorf("sentinel %s changed:\n  before %+v\n  after  %+v", p, b, a)
		}
	}
	for p := range sentAfter {
		if _, ok := sentBefore[p]; !ok {
			t.Errorf("the restore created %s in the sentinel directory", p)
		}
	}
	sentInodes := map[[2]uint64]string{}
	for p, e := range sentBefore {
		sentInodes[[2]uint64{e.dev, e.ino}] = p
	}

	// (2)-(3) In the target: every new entry is the snapshot's.
	after := hostileScan(t, target)
	newIno := map[[2]uint64][]string{}
	for p, a := range after {
		if b, ok := before[p]; ok && b.ino == a.ino && b.dev == a.dev {
			continue // the old target's, left alone
		}
		if s, ok := sentInodes[[2]uint64{a.dev, a.ino}]; ok {
			t.Errorf("%s in the target is the sentinel %s", p, s)
		}
		if p == "." {
			continue
		}
		w := g.want[p]
		if w == nil {
			if !strings.HasSuffix(p, ".bunker-partial") {
				t.Errorf("%s (%v) is not in the snapshot", p, a.mode)
			}
			continue
		}
		n := w.node
		switch n.Type {
		case tree.TypeFile:
			if !a.mode.IsRegular() {
				t.Errorf("file %s was restored as %v", p, a.mode)
			} else if w.bad {
				t.Errorf("file %s failed but is under its real name (%d bytes)", p, len(a.body))
			} else if a.body != string(w.content) {
				t.Errorf("file %s holds %d wrong bytes (want %d)", p, len(a.body), len(w.content))
			}
			newIno[[2]uint64{a.dev, a.ino}] = append(newIno[[2]uint64{a.dev, a.ino}], p)
		case tree.TypeDir:
			if !a.mode.IsDir() {
				t.Errorf("directory %s was restored as %v", p, a.mode)
			}
		case tree.TypeSymlink:
			if a.mode&fs.ModeSymlink == 0 || a.link != string(n.LinkTarget) {
				t.Errorf("link %s was restored as %v -> %q", p, a.mode, a.link)
			}
		case tree.TypeFIFO:
			if a.mode&fs.ModeNamedPipe == 0 {
				t.Errorf("FIFO %s was restored as %v", p, a.mode)
			}
		case tree.TypeCharDev, tree.TypeDev:
			want := fs.ModeDevice | fs.ModeCharDevice
			if n.Type == tree.TypeDev {
				want = fs.ModeDevice
			}
			if a.mode.Type() != want {
				t.Errorf("device %s was restored as %v", p, a.mode)
			}
		case tree.TypeSocket:
			t.Errorf("socket %s was created as %v", p, a.mode)
		}
	}
	// Names of one inode are one hard-link group of the snapshot.
	for _, ps := range newIno {
		for _, p := range ps[1:] {
			if g.want[p].group == 0 || g.want[p].group != g.want[ps[0]].group {
				t.Errorf("%s and %s are one file, not one hard-link group", ps[0], p)
			}
		}
	}
	// Failed files are reported (on a fresh target, where nothing is
	// skipped), and never under their real names.
	if !existing {
		for p, w := range g.want {
			if !w.bad && !w.refused {
				continue
			}
			full := filepath.Join(target, filepath.FromSlash(p))
			reported := rerr != nil
			for q := full; !reported && len(q) > len(target); q = filepath.Dir(q) {
				_, reported = failed[q]
			}
			if !reported {
				t.Errorf("%s failed without an error (errors: %v)", p, failed)
			}
		}
	}
}

// TestDeltaRestoreOverPlantedTarget: a delta restore (if-different with
// Delete, what restore postgres --delta uses) into a directory someone
// prepared: a hard link to a file outside whose content is the
// snapshot's, symlinks where the snapshot has a file and a directory, and
// extras the snapshot lacks pointing outside. Nothing outside changes —
// not the linked file's mode, not a byte behind a symlink — and the
// target ends as the snapshot.
func TestDeltaRestoreOverPlantedTarget(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	base, outside := t.TempDir(), t.TempDir()
	target := filepath.Join(base, "target")
	secret := []byte("the secret the backup holds too\n")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(outside, "secret"), secret, 0o600))
	must(os.WriteFile(filepath.Join(outside, "other"), []byte("other"), 0o600))
	must(os.Mkdir(filepath.Join(outside, "dir"), 0o700))
	must(os.WriteFile(filepath.Join(outside, "dir", "kept"), []byte("kept"), 0o600))
	must(os.MkdirAll(filepath.Join(target, "extradir"), 0o700))
	must(os.Link(filepath.Join(outside, "secret"), filepath.Join(target, "same")))
	must(os.Symlink(filepath.Join(outside, "other"), filepath.Join(target, "file")))
	must(os.Symlink(filepath.Join(outside, "dir"), filepath.Join(target, "sub")))
	must(os.Symlink(filepath.Join(outside, "dir"), filepath.Join(target, "extra")))
	must(os.Symlink(outside, filepath.Join(target, "extradir", "up")))

	mt := time.Unix(1700000000, 0)
	same := f.file("same", secret)
	same.Mode = 0o644 // the snapshot's mode must not reach the outside file
	inner := f.file("inner", []byte("inner"))
	sub := f.dirNode("sub", 0o755, mt, inner)
	root := f.root(same, f.file("file", []byte("new file")), sub)
	res := restorer.New(f.r, restorer.Options{Overwrite: restorer.OverwriteIfDifferent, Delete: true, NoOwner: true, NoXattrs: true})
	must(res.Restore(ctx, root, "/", target))

	for name, want := range map[string]string{"secret": string(secret), "other": "other", "dir/kept": "kept"} {
		if b, err := os.ReadFile(filepath.Join(outside, name)); err != nil || string(b) != want {
			t.Errorf("outside %s: %q, %v; want it untouched", name, b, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(outside, "secret")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("outside secret: mode %v, %v; want 0600 (the snapshot's metadata went through the link)", fi.Mode(), err)
	}
	if ents, _ := os.ReadDir(filepath.Join(outside, "dir")); len(ents) != 1 {
		t.Errorf("outside dir holds %d entries, want only kept", len(ents))
	}
	var st syscall.Stat_t
	must(syscall.Lstat(filepath.Join(target, "same"), &st))
	if st.Nlink != 1 || os.FileMode(st.Mode).Perm() != 0o644 {
		t.Errorf("target/same: %d links, mode %o; want its own file with the snapshot's mode", st.Nlink, st.Mode&0o777)
	}
	for name, want := range map[string]string{"same": string(secret), "file": "new file", "sub/inner": "inner"} {
		if fi, err := os.Lstat(filepath.Join(target, name)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("target/%s: %v, %v; want a regular file", name, fi, err)
			continue
		}
		if b, _ := os.ReadFile(filepath.Join(target, name)); string(b) != want {
			t.Errorf("target/%s: %q, want %q", name, b, want)
		}
	}
	for _, name := range []string{"extra", "extradir"} {
		if _, err := os.Lstat(filepath.Join(target, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("target/%s: %v, want it deleted", name, err)
		}
	}
}
