package streamtree

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/archiver"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/source"
)

// ID of a blob or tree.
type ID = tree.ID

// Meta is the metadata of an entry.
type Meta = source.Meta

// Writer is a source.Sink: it collects the files of a database backup into one snapshot tree.
// Every file is streamed into the repository as it is produced; only the
// tree is kept in memory. Its methods may be called from several
// goroutines between the archiver's StartStreams and stop.
type Writer struct {
	arch *archiver.Archiver
	now  time.Time
	uid  uint32
	gid  uint32
	user string

	mu   sync.Mutex
	root *dirEntry

	files atomic.Int64
	cur   atomic.Pointer[string]
}

type dirEntry struct {
	node *tree.Node
	kids map[string]*dirEntry // directories
	leaf map[string]*tree.Node
}

func newDir(n *tree.Node) *dirEntry {
	return &dirEntry{node: n, kids: map[string]*dirEntry{}, leaf: map[string]*tree.Node{}}
}

// NewWriter returns a writer that stores through arch; entries without
// their own metadata belong to this process's user and get time now.
func NewWriter(arch *archiver.Archiver, now time.Time, user string) *Writer {
	w := &Writer{arch: arch, now: now, uid: uint32(os.Getuid()), gid: uint32(os.Getgid()), user: user}
	w.root = newDir(&tree.Node{Type: tree.TypeDir})
	return w
}

// Files is how many files were written so far.
func (w *Writer) Files() int64 { return w.files.Load() }

// Current is the file being written most recently, or "".
func (w *Writer) Current() string {
	if p := w.cur.Load(); p != nil {
		return *p
	}
	return ""
}

func (w *Writer) node(name string, typ tree.NodeType, m *Meta) *tree.Node {
	n := &tree.Node{Name: tree.RawString(name), Type: typ, ModTime: w.now, UID: w.uid, GID: w.gid, User: w.user}
	mode := fs.FileMode(0o600)
	if typ == tree.TypeDir {
		mode = 0o700
	}
	if m != nil {
		if m.Mode != 0 {
			mode = m.Mode.Perm() | m.Mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
		}
		if !m.ModTime.IsZero() {
			n.ModTime = m.ModTime
		}
		n.UID, n.GID, n.User, n.Group = m.UID, m.GID, m.User, m.Group
	}
	switch typ {
	case tree.TypeDir:
		mode |= fs.ModeDir
	case tree.TypeSymlink:
		mode |= fs.ModeSymlink
	}
	n.Mode = uint32(mode)
	return n
}

// split checks a slash-separated relative path and returns its parts.
func split(p string) ([]string, error) {
	if p == "" || strings.HasPrefix(p, "/") || path.Clean(p) != p {
		return nil, fmt.Errorf("invalid path %q in backup tree", p)
	}
	parts := strings.Split(p, "/")
	for _, part := range parts {
		if err := tree.ValidName(part); err != nil {
			return nil, fmt.Errorf("invalid path %q in backup tree: %w", p, err)
		}
	}
	return parts, nil
}

// dir returns the directory entry for parts, creating missing ones. The
// caller holds mu.
func (w *Writer) dir(parts []string) (*dirEntry, error) {
	d := w.root
	for _, name := range parts {
		if _, ok := d.leaf[name]; ok {
			return nil, fmt.Errorf("%s is a file in the backup tree, not a directory", name)
		}
		k, ok := d.kids[name]
		if !ok {
			k = newDir(w.node(name, tree.TypeDir, nil))
			d.kids[name] = k
		}
		d = k
	}
	return d, nil
}

func (w *Writer) put(p string, n *tree.Node) error {
	parts, err := split(p)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	d, err := w.dir(parts[:len(parts)-1])
	if err != nil {
		return err
	}
	name := parts[len(parts)-1]
	if _, ok := d.kids[name]; ok {
		return fmt.Errorf("%s is already a directory in the backup tree", p)
	}
	if _, ok := d.leaf[name]; ok {
		return fmt.Errorf("%s was added twice to the backup tree", p)
	}
	d.leaf[name] = n
	return nil
}

// Mkdir adds a directory with the given metadata (parents are created
// with defaults). Adding it again only updates its metadata.
func (w *Writer) Mkdir(p string, m *Meta) error {
	parts, err := split(p)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	d, err := w.dir(parts)
	if err != nil {
		return err
	}
	n := w.node(parts[len(parts)-1], tree.TypeDir, m)
	d.node = n
	return nil
}

// Symlink adds a symbolic link.
func (w *Writer) Symlink(p, target string, m *Meta) error {
	n := w.node(path.Base(p), tree.TypeSymlink, m)
	n.LinkTarget = tree.RawString(target)
	return w.put(p, n)
}

// WriteFile streams rd into the repository as the file p and returns its
// size. An error from rd fails the file; nothing is added then.
func (w *Writer) WriteFile(ctx context.Context, p string, rd io.Reader, m *Meta) (int64, error) {
	if _, err := split(p); err != nil {
		return 0, err
	}
	w.cur.Store(&p)
	ids, n, err := w.arch.SaveReader(ctx, rd)
	if err != nil {
		return n, err
	}
	node := w.node(path.Base(p), tree.TypeFile, m)
	node.Size, node.Content = uint64(n), ids
	if err := w.put(p, node); err != nil {
		return n, err
	}
	w.files.Add(1)
	return n, nil
}

// Root saves the trees, deepest first, and returns the root tree's ID.
func (w *Writer) Root(ctx context.Context) (ID, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.save(ctx, w.root)
}

func (w *Writer) save(ctx context.Context, d *dirEntry) (ID, error) {
	t := &tree.Tree{}
	for _, k := range d.kids {
		id, err := w.save(ctx, k)
		if err != nil {
			return ID{}, err
		}
		n := *k.node
		n.Subtree = &id
		t.Nodes = append(t.Nodes, &n)
	}
	for _, n := range d.leaf {
		t.Nodes = append(t.Nodes, n)
	}
	t.Sort()
	return w.arch.SaveTree(ctx, t)
}
