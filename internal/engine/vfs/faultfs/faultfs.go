// Package faultfs wraps a vfs.FS and injects faults: an error such as
// ENOSPC or EIO at the N-th operation of a kind on a path, or a hook run
// just before it (to change a file between its lstat and its read, say).
// It is for tests; the wrapped filesystem is usually a vfs.Mem.
package faultfs

import (
	"errors"
	"io/fs"
	"path/filepath"
	"sync"

	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/vfs"
)

// Op is a kind of operation.
type Op string

// The operations a Rule can match. Each is counted per path: the path of
// the entry a Dir method names (the Dir's name joined with the entry's),
// of the file read or written, or the path given to an FS method.
const (
	OpOpenDir    Op = "opendir"    // FS.OpenDir, Dir.OpenDir
	OpNames      Op = "names"      // Dir.Names (path: the directory)
	OpNode       Op = "node"       // FS.Node, Dir.Node, Dir.Lstat
	OpXattrs     Op = "xattrs"     // Dir.Xattrs, Dir.XattrsAt, File.Xattrs
	OpOpen       Op = "open"       // Dir.OpenFile
	OpRead       Op = "read"       // File.Read
	OpData       Op = "data"       // File.NextData (vfs.DataFinder)
	OpCreate     Op = "create"     // Dir.Create, Dir.CreateFile, FS.MkdirAll
	OpApply      Op = "apply"      // Dir.Apply, FS.Apply
	OpWrite      Op = "write"      // Writer.WriteAt
	OpSync       Op = "sync"       // Writer.Sync
	OpCloseWrite Op = "closewrite" // Writer.Close
	OpRename     Op = "rename"     // Dir.Rename (path: the old name)
	OpLink       Op = "link"       // Dir.Link (path: the new name)
	OpRemove     Op = "remove"     // Dir.RemoveAll
)

// Rule is one fault.
type Rule struct {
	Op Op
	// Path is the path the operation is on; "" matches every path.
	Path string
	// N is the 1-based count of matching operations at which the rule
	// fires; 0 fires at every one.
	N int
	// Before, when set, runs just before the operation the rule fires
	// at (without any lock of this package held).
	Before func()
	// Err is returned by the operation the rule fires at, instead of
	// doing it; nil does the operation (after Before).
	Err error

	count int
}

// FS is a vfs.FS with faults.
type FS struct {
	inner vfs.FS

	mu    sync.Mutex
	rules []*Rule
	fired []Fired
}

// Fired records a rule that fired.
type Fired struct {
	Op   Op
	Path string
	Err  error
}

// New wraps inner.
func New(inner vfs.FS) *FS { return &FS{inner: inner} }

// Inject adds a rule.
func (f *FS) Inject(r Rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, &r)
}

// Fired lists the faults injected so far, in order.
func (f *FS) Fired() []Fired {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Fired(nil), f.fired...)
}

// check counts the operation against every rule and returns the error
// of the first that fires.
func (f *FS) check(op Op, path string) error {
	f.mu.Lock()
	var hooks []func()
	var err error
	for _, r := range f.rules {
		if r.Op != op || (r.Path != "" && r.Path != path) {
			continue
		}
		r.count++
		if r.N != 0 && r.count != r.N {
			continue
		}
		if r.Before != nil {
			hooks = append(hooks, r.Before)
		}
		if r.Err != nil && err == nil {
			err = &fs.PathError{Op: string(op), Path: path, Err: r.Err}
		}
		f.fired = append(f.fired, Fired{Op: op, Path: path, Err: r.Err})
	}
	f.mu.Unlock()
	for _, h := range hooks {
		h()
	}
	return err
}

// OpenDir implements vfs.FS.
func (f *FS) OpenDir(path string) (vfs.Dir, error) {
	if err := f.check(OpOpenDir, path); err != nil {
		return nil, err
	}
	d, err := f.inner.OpenDir(path)
	if err != nil {
		return nil, err
	}
	return &dir{fs: f, inner: d}, nil
}

// Node implements vfs.FS.
func (f *FS) Node(path string, xattrs bool) (*tree.Node, error) {
	if err := f.check(OpNode, path); err != nil {
		return nil, err
	}
	return f.inner.Node(path, xattrs)
}

// MkdirAll implements vfs.FS.
func (f *FS) MkdirAll(path string) error {
	if err := f.check(OpCreate, path); err != nil {
		return err
	}
	return f.inner.MkdirAll(path)
}

// Apply implements vfs.FS.
func (f *FS) Apply(path string, n *tree.Node, m vfs.Meta) error {
	if err := f.check(OpApply, path); err != nil {
		return err
	}
	return f.inner.Apply(path, n, m)
}

type dir struct {
	fs    *FS
	inner vfs.Dir
}

// Unwrap returns the wrapped directory (see vfs.OSFile).
func (d *dir) Unwrap() vfs.Dir { return d.inner }

func (d *dir) join(name string) string { return filepath.Join(d.inner.Name(), name) }

func (d *dir) Name() string { return d.inner.Name() }
func (d *dir) Close() error { return d.inner.Close() }

func (d *dir) Names(n int) ([]string, error) {
	if err := d.fs.check(OpNames, d.inner.Name()); err != nil {
		return nil, err
	}
	return d.inner.Names(n)
}

func (d *dir) Node(name string, xattrs bool) (*tree.Node, error) {
	if err := d.fs.check(OpNode, d.join(name)); err != nil {
		return nil, err
	}
	return d.inner.Node(name, xattrs)
}

func (d *dir) Lstat(name string) (fs.FileInfo, error) {
	if err := d.fs.check(OpNode, d.join(name)); err != nil {
		return nil, err
	}
	return d.inner.Lstat(name)
}

func (d *dir) Xattrs() ([]tree.Xattr, error) {
	if err := d.fs.check(OpXattrs, d.inner.Name()); err != nil {
		return nil, err
	}
	return d.inner.Xattrs()
}

func (d *dir) XattrsAt(name string) ([]tree.Xattr, error) {
	if err := d.fs.check(OpXattrs, d.join(name)); err != nil {
		return nil, err
	}
	return d.inner.XattrsAt(name)
}

func (d *dir) OpenDir(name string) (vfs.Dir, error) {
	if err := d.fs.check(OpOpenDir, d.join(name)); err != nil {
		return nil, err
	}
	sub, err := d.inner.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return &dir{fs: d.fs, inner: sub}, nil
}

func (d *dir) OpenFile(name string) (vfs.File, error) {
	p := d.join(name)
	if err := d.fs.check(OpOpen, p); err != nil {
		return nil, err
	}
	fl, err := d.inner.OpenFile(name)
	if err != nil {
		return nil, err
	}
	return &file{fs: d.fs, inner: fl, path: p}, nil
}

func (d *dir) Create(name string, n *tree.Node) error {
	if err := d.fs.check(OpCreate, d.join(name)); err != nil {
		return err
	}
	return d.inner.Create(name, n)
}

func (d *dir) Apply(name string, n *tree.Node, m vfs.Meta) error {
	if err := d.fs.check(OpApply, d.join(name)); err != nil {
		return err
	}
	return d.inner.Apply(name, n, m)
}

func (d *dir) CreateFile(name string, size int64) (vfs.Writer, error) {
	p := d.join(name)
	if err := d.fs.check(OpCreate, p); err != nil {
		return nil, err
	}
	w, err := d.inner.CreateFile(name, size)
	if err != nil {
		return nil, err
	}
	return &writer{fs: d.fs, inner: w, path: p}, nil
}

func (d *dir) Rename(name string, newdir vfs.Dir, newname string) error {
	if err := d.fs.check(OpRename, d.join(name)); err != nil {
		return err
	}
	return d.inner.Rename(name, newdir, newname)
}

func (d *dir) Link(name string, newdir vfs.Dir, newname string) error {
	if err := d.fs.check(OpLink, filepath.Join(newdir.Name(), newname)); err != nil {
		return err
	}
	return d.inner.Link(name, newdir, newname)
}

func (d *dir) RemoveAll(name string) error {
	if err := d.fs.check(OpRemove, d.join(name)); err != nil {
		return err
	}
	return d.inner.RemoveAll(name)
}

type file struct {
	fs    *FS
	inner vfs.File
	path  string
}

func (f *file) Read(p []byte) (int, error) {
	if err := f.fs.check(OpRead, f.path); err != nil {
		return 0, err
	}
	return f.inner.Read(p)
}

func (f *file) Seek(off int64, whence int) (int64, error) { return f.inner.Seek(off, whence) }
func (f *file) Close() error                              { return f.inner.Close() }
func (f *file) Name() string                              { return f.inner.Name() }

// NextData implements vfs.DataFinder for a file of a filesystem that can
// tell where its data lies; for others it fails with an error wrapping
// errors.ErrUnsupported, which tells a reader to read everything.
func (f *file) NextData(off int64) (start, end int64, err error) {
	if err := f.fs.check(OpData, f.path); err != nil {
		return 0, 0, err
	}
	df, ok := f.inner.(vfs.DataFinder)
	if !ok {
		return 0, 0, &fs.PathError{Op: "find data", Path: f.path, Err: errors.ErrUnsupported}
	}
	return df.NextData(off)
}

func (f *file) Xattrs() ([]tree.Xattr, error) {
	if err := f.fs.check(OpXattrs, f.path); err != nil {
		return nil, err
	}
	return f.inner.Xattrs()
}

type writer struct {
	fs    *FS
	inner vfs.Writer
	path  string
}

func (w *writer) WriteAt(p []byte, off int64) (int, error) {
	if err := w.fs.check(OpWrite, w.path); err != nil {
		return 0, err
	}
	return w.inner.WriteAt(p, off)
}

func (w *writer) Sync() error {
	if err := w.fs.check(OpSync, w.path); err != nil {
		return err
	}
	return w.inner.Sync()
}

func (w *writer) Close() error {
	err := w.fs.check(OpCloseWrite, w.path)
	if cerr := w.inner.Close(); err == nil {
		err = cerr
	}
	return err
}
