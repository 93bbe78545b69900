package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

// Mem is an in-memory filesystem for tests. It keeps the type, mode,
// owner, times, extended attributes, link target, device number and
// content of every entry, and hard links (one inode under several names).
// Paths are absolute with "/" as separator (host separators are
// converted); Mem follows no symbolic link anywhere, not even on the way
// to a path given to FS methods. Safe for concurrent use.
type Mem struct {
	mu    sync.Mutex
	root  *memNode
	inode uint64
}

// memNode is one inode.
type memNode struct {
	meta  tree.Node // Type, Mode, owner, times, Xattrs, LinkTarget, Device, Inode
	data  []byte
	kids  map[string]*memNode // directories
	nlink uint64
}

// NewMem returns an empty filesystem holding only the directory "/".
func NewMem() *Mem {
	m := &Mem{}
	m.root = m.newNode(tree.TypeDir, fs.ModeDir|0o755)
	return m
}

func (m *Mem) newNode(t tree.NodeType, mode fs.FileMode) *memNode {
	m.inode++
	n := &memNode{nlink: 1}
	n.meta = tree.Node{Type: t, Mode: uint32(mode), Inode: m.inode, DeviceID: 1, ModTime: time.Unix(1700000000, 0).UTC()}
	n.meta.ChangeTime = n.meta.ModTime
	if t == tree.TypeDir {
		n.kids = map[string]*memNode{}
	}
	return n
}

func memErr(op, path string, err error) error { return &fs.PathError{Op: op, Path: path, Err: err} }

// split turns an absolute path into its components.
func memSplit(p string) ([]string, error) {
	p = filepath.ToSlash(p)
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("%q is not absolute", p)
	}
	var out []string
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, c)
		}
	}
	return out, nil
}

// lookup finds the node at path; m.mu is held.
func (m *Mem) lookup(op, p string) (*memNode, error) {
	parts, err := memSplit(p)
	if err != nil {
		return nil, memErr(op, p, err)
	}
	n := m.root
	for _, c := range parts {
		if n.meta.Type != tree.TypeDir {
			return nil, memErr(op, p, syscall.ENOTDIR)
		}
		next := n.kids[c]
		if next == nil {
			return nil, memErr(op, p, syscall.ENOENT)
		}
		if next.meta.Type == tree.TypeSymlink && c != parts[len(parts)-1] {
			return nil, memErr(op, p, syscall.ELOOP)
		}
		n = next
	}
	return n, nil
}

func memCheckName(dir, name string) error {
	if err := tree.ValidName(name); err != nil {
		return fmt.Errorf("in %q: %w", dir, err)
	}
	if strings.ContainsRune(name, '/') {
		return fmt.Errorf("in %q: invalid name %q", dir, name)
	}
	return nil
}

// OpenDir implements FS.
func (m *Mem) OpenDir(p string) (Dir, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup("open", p)
	if err != nil {
		return nil, err
	}
	if n.meta.Type != tree.TypeDir {
		return nil, memErr("open", p, syscall.ENOTDIR)
	}
	return &memDir{m: m, n: n, path: filepath.Clean(p)}, nil
}

// Node implements FS.
func (m *Mem) Node(p string, xattrs bool) (*tree.Node, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup("lstat", p)
	if err != nil {
		return nil, err
	}
	return n.node(filepath.Base(p), xattrs), nil
}

// MkdirAll implements FS.
func (m *Mem) MkdirAll(p string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	parts, err := memSplit(p)
	if err != nil {
		return memErr("mkdir", p, err)
	}
	n := m.root
	for _, c := range parts {
		next := n.kids[c]
		if next == nil {
			next = m.newNode(tree.TypeDir, fs.ModeDir|0o700)
			n.kids[c] = next
		}
		if next.meta.Type != tree.TypeDir {
			return memErr("mkdir", p, syscall.ENOTDIR)
		}
		n = next
	}
	return nil
}

// Apply implements FS.
func (m *Mem) Apply(p string, nd *tree.Node, o Meta) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup("apply", p)
	if err != nil {
		return err
	}
	n.apply(nd, o)
	return nil
}

// WriteFile creates or replaces the regular file at path (its directory
// must exist) with data and mode perm.
func (m *Mem) WriteFile(p string, data []byte, perm fs.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, err := m.lookup("write", filepath.Dir(p))
	if err != nil {
		return err
	}
	if dir.meta.Type != tree.TypeDir {
		return memErr("write", p, syscall.ENOTDIR)
	}
	name := filepath.Base(p)
	n := dir.kids[name]
	switch {
	case n == nil:
		n = m.newNode(tree.TypeFile, perm)
		dir.kids[name] = n
	case n.meta.Type != tree.TypeFile:
		return memErr("write", p, syscall.EISDIR)
	}
	n.data = slices.Clone(data)
	n.meta.Mode = uint32(perm)
	n.meta.ModTime = n.meta.ModTime.Add(time.Second)
	n.meta.ChangeTime = n.meta.ModTime
	return nil
}

// ReadFile returns the content of the regular file at path.
func (m *Mem) ReadFile(p string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup("read", p)
	if err != nil {
		return nil, err
	}
	if n.meta.Type != tree.TypeFile {
		return nil, memErr("read", p, syscall.EISDIR)
	}
	return slices.Clone(n.data), nil
}

// Symlink makes path a symbolic link to target.
func (m *Mem) Symlink(target, p string) error {
	d, err := m.OpenDir(filepath.Dir(p))
	if err != nil {
		return err
	}
	return d.Create(filepath.Base(p), &tree.Node{Type: tree.TypeSymlink, LinkTarget: tree.RawString(target)})
}

// node returns the metadata of n as a tree node named name; m.mu is held.
func (n *memNode) node(name string, xattrs bool) *tree.Node {
	out := n.meta
	out.Name = tree.RawString(name)
	out.Links = n.nlink
	out.Content, out.Subtree, out.Xattrs = nil, nil, nil
	if n.meta.Type == tree.TypeFile {
		out.Size = uint64(len(n.data))
	}
	if xattrs && len(n.meta.Xattrs) > 0 {
		out.Xattrs = slices.Clone(n.meta.Xattrs)
	}
	return &out
}

// apply sets the metadata of nd on n, as fsmeta.Restorer.Apply does; m.mu
// is held.
func (n *memNode) apply(nd *tree.Node, o Meta) {
	if nd.Type == tree.TypeSocket {
		return
	}
	if o.Owner {
		n.meta.UID, n.meta.GID = nd.UID, nd.GID
		n.meta.User, n.meta.Group = nd.User, nd.Group
	}
	if o.Xattrs && len(nd.Xattrs) > 0 {
		n.meta.Xattrs = slices.Clone(nd.Xattrs)
	}
	if nd.Type != tree.TypeSymlink {
		n.meta.Mode = uint32(fs.FileMode(n.meta.Mode).Type() | fs.FileMode(nd.Mode)&^fs.ModeType)
	}
	if !nd.ModTime.IsZero() {
		n.meta.ModTime = nd.ModTime
		n.meta.AccessTime = nd.AccessTime
		if n.meta.AccessTime.IsZero() {
			n.meta.AccessTime = nd.ModTime
		}
	}
}

// memDir is an open directory of a Mem.
type memDir struct {
	m    *Mem
	n    *memNode
	path string

	posMu sync.Mutex
	names []string // the listing Names is going through, nil before
	pos   int
}

func (d *memDir) Name() string { return d.path }
func (d *memDir) Close() error { return nil }

func (d *memDir) join(name string) string { return filepath.Join(d.path, name) }

// entry returns the entry name of d; d.m.mu is held.
func (d *memDir) entry(op, name string) (*memNode, error) {
	if err := memCheckName(d.path, name); err != nil {
		return nil, err
	}
	n := d.n.kids[name]
	if n == nil {
		return nil, memErr(op, d.join(name), syscall.ENOENT)
	}
	return n, nil
}

func (d *memDir) Names(n int) ([]string, error) {
	d.posMu.Lock()
	defer d.posMu.Unlock()
	if d.names == nil {
		d.m.mu.Lock()
		d.names = make([]string, 0, len(d.n.kids))
		for k := range d.n.kids {
			d.names = append(d.names, k)
		}
		d.m.mu.Unlock()
		slices.Sort(d.names)
	}
	rest := d.names[d.pos:]
	if n <= 0 {
		d.pos = len(d.names)
		return slices.Clone(rest), nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	rest = rest[:min(n, len(rest))]
	d.pos += len(rest)
	return slices.Clone(rest), nil
}

func (d *memDir) Node(name string, xattrs bool) (*tree.Node, error) {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	n, err := d.entry("lstat", name)
	if err != nil {
		return nil, err
	}
	return n.node(name, xattrs), nil
}

func (d *memDir) Lstat(name string) (fs.FileInfo, error) {
	nd, err := d.Node(name, false)
	if err != nil {
		return nil, err
	}
	return memInfo{nd}, nil
}

func (d *memDir) Xattrs() ([]tree.Xattr, error) {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	return slices.Clone(d.n.meta.Xattrs), nil
}

func (d *memDir) XattrsAt(name string) ([]tree.Xattr, error) {
	nd, err := d.Node(name, true)
	if err != nil {
		return nil, err
	}
	return nd.Xattrs, nil
}

func (d *memDir) OpenDir(name string) (Dir, error) {
	n, err := d.openAs(name, tree.TypeDir, syscall.ENOTDIR)
	if err != nil {
		return nil, err
	}
	return &memDir{m: d.m, n: n, path: d.join(name)}, nil
}

func (d *memDir) OpenFile(name string) (File, error) {
	n, err := d.openAs(name, tree.TypeFile, errors.New("not a regular file"))
	if err != nil {
		return nil, err
	}
	return &memFile{m: d.m, n: n, path: d.join(name)}, nil
}

// openAs finds the entry name, which must be of type typ (not a symlink:
// ELOOP, as O_NOFOLLOW; another type: notErr).
func (d *memDir) openAs(name string, typ tree.NodeType, notErr error) (*memNode, error) {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	n, err := d.entry("open", name)
	if err != nil {
		return nil, err
	}
	if n.meta.Type == tree.TypeSymlink {
		return nil, memErr("open", d.join(name), syscall.ELOOP)
	}
	if n.meta.Type != typ {
		return nil, memErr("open", d.join(name), notErr)
	}
	return n, nil
}

func (d *memDir) Create(name string, nd *tree.Node) error {
	if nd == nil {
		return memErr("create", d.join(name), errors.New("nil node"))
	}
	if nd.Type == tree.TypeSocket {
		return nil
	}
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	if err := memCheckName(d.path, name); err != nil {
		return err
	}
	if old := d.n.kids[name]; old != nil {
		if nd.Type == tree.TypeDir && old.meta.Type == tree.TypeDir {
			return nil
		}
		return memErr("create", d.join(name), syscall.EEXIST)
	}
	var n *memNode
	switch nd.Type {
	case tree.TypeDir:
		n = d.m.newNode(tree.TypeDir, fs.ModeDir|0o700)
	case tree.TypeFile:
		n = d.m.newNode(tree.TypeFile, 0o600)
	case tree.TypeSymlink:
		n = d.m.newNode(tree.TypeSymlink, fs.ModeSymlink|0o777)
		n.meta.LinkTarget = nd.LinkTarget
	case tree.TypeFIFO:
		n = d.m.newNode(tree.TypeFIFO, fs.ModeNamedPipe|0o600)
	case tree.TypeDev:
		n = d.m.newNode(tree.TypeDev, fs.ModeDevice|0o600)
		n.meta.Device = nd.Device
	case tree.TypeCharDev:
		n = d.m.newNode(tree.TypeCharDev, fs.ModeDevice|fs.ModeCharDevice|0o600)
		n.meta.Device = nd.Device
	default:
		return memErr("create", d.join(name), fmt.Errorf("unknown node type %q", nd.Type))
	}
	d.n.kids[name] = n
	return nil
}

func (d *memDir) Apply(name string, nd *tree.Node, o Meta) error {
	if nd == nil {
		return memErr("apply", d.join(name), errors.New("nil node"))
	}
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	n, err := d.entry("apply", name)
	if err != nil {
		return err
	}
	n.apply(nd, o)
	return nil
}

func (d *memDir) CreateFile(name string, size int64) (Writer, error) {
	if size < 0 {
		return nil, memErr("create", d.join(name), fmt.Errorf("negative size %d", size))
	}
	if err := d.Create(name, &tree.Node{Type: tree.TypeFile}); err != nil {
		return nil, err
	}
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	return &memWriter{m: d.m, n: d.n.kids[name], path: d.join(name), size: size}, nil
}

// other returns the memDir of a Dir of the same Mem.
func (d *memDir) other(op string, nd Dir) (*memDir, error) {
	for {
		switch v := nd.(type) {
		case *memDir:
			if v.m != d.m {
				return nil, memErr(op, nd.Name(), syscall.EXDEV)
			}
			return v, nil
		case interface{ Unwrap() Dir }:
			nd = v.Unwrap()
		default:
			return nil, memErr(op, nd.Name(), syscall.EXDEV)
		}
	}
}

func (d *memDir) Rename(name string, newdir Dir, newname string) error {
	nd, err := d.other("rename", newdir)
	if err != nil {
		return err
	}
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	n, err := d.entry("rename", name)
	if err != nil {
		return err
	}
	if err := memCheckName(nd.path, newname); err != nil {
		return err
	}
	if old := nd.n.kids[newname]; old != nil && old != n {
		switch {
		case old.meta.Type == tree.TypeDir && n.meta.Type != tree.TypeDir:
			return memErr("rename", nd.join(newname), syscall.EISDIR)
		case old.meta.Type == tree.TypeDir && len(old.kids) > 0:
			return memErr("rename", nd.join(newname), syscall.ENOTEMPTY)
		case old.meta.Type != tree.TypeDir && n.meta.Type == tree.TypeDir:
			return memErr("rename", nd.join(newname), syscall.ENOTDIR)
		}
		old.nlink--
	} else if old == n {
		return nil // rename(2) does nothing for two links to one file
	}
	delete(d.n.kids, name)
	nd.n.kids[newname] = n
	return nil
}

func (d *memDir) Link(name string, newdir Dir, newname string) error {
	nd, err := d.other("link", newdir)
	if err != nil {
		return err
	}
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	n, err := d.entry("link", name)
	if err != nil {
		return err
	}
	if n.meta.Type == tree.TypeDir {
		return memErr("link", d.join(name), syscall.EPERM)
	}
	if err := memCheckName(nd.path, newname); err != nil {
		return err
	}
	if nd.n.kids[newname] != nil {
		return memErr("link", nd.join(newname), syscall.EEXIST)
	}
	nd.n.kids[newname] = n
	n.nlink++
	return nil
}

func (d *memDir) RemoveAll(name string) error {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	if err := memCheckName(d.path, name); err != nil {
		return err
	}
	if n := d.n.kids[name]; n != nil {
		n.nlink--
		delete(d.n.kids, name)
	}
	return nil
}

// memFile reads a file's current content: like a real file, a change
// made while it is open shows.
type memFile struct {
	m    *Mem
	n    *memNode
	path string
	off  int64
}

func (f *memFile) Read(p []byte) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if f.off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	k := copy(p, f.n.data[f.off:])
	f.off += int64(k)
	return k, nil
}

func (f *memFile) Seek(off int64, whence int) (int64, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	switch whence {
	case io.SeekCurrent:
		off += f.off
	case io.SeekEnd:
		off += int64(len(f.n.data))
	}
	if off < 0 {
		return 0, memErr("seek", f.path, syscall.EINVAL)
	}
	f.off = off
	return off, nil
}

func (f *memFile) Close() error { return nil }
func (f *memFile) Name() string { return f.path }

func (f *memFile) Xattrs() ([]tree.Xattr, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	return slices.Clone(f.n.meta.Xattrs), nil
}

// memWriter writes a new file of a Mem.
type memWriter struct {
	m    *Mem
	n    *memNode
	path string
	size int64
}

func (w *memWriter) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > w.size || int64(len(p)) > w.size-off {
		return 0, fmt.Errorf("write %q: %d bytes at offset %d exceed the file size %d", w.path, len(p), off, w.size)
	}
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(w.n.data)) {
		w.n.data = append(w.n.data, make([]byte, end-int64(len(w.n.data)))...)
	}
	copy(w.n.data[off:], p)
	return len(p), nil
}

func (w *memWriter) Sync() error { return nil }

func (w *memWriter) Close() error {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	if int64(len(w.n.data)) < w.size {
		w.n.data = append(w.n.data, make([]byte, w.size-int64(len(w.n.data)))...)
	}
	return nil
}

// memInfo is the fs.FileInfo of a Mem entry.
type memInfo struct{ n *tree.Node }

func (i memInfo) Name() string       { return string(i.n.Name) }
func (i memInfo) Size() int64        { return int64(i.n.Size) }
func (i memInfo) Mode() fs.FileMode  { return fs.FileMode(i.n.Mode) }
func (i memInfo) ModTime() time.Time { return i.n.ModTime }
func (i memInfo) IsDir() bool        { return i.n.Type == tree.TypeDir }
func (i memInfo) Sys() any           { return i.n }

// Links is how many names (hard links) the file has.
func (i memInfo) Links() uint64 { return i.n.Links }
