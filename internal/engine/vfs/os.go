package vfs

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/fsmeta"
)

// OS is the real filesystem, through internal/fsmeta. It caches user and
// group names, so one OS should serve a whole backup or restore. Safe for
// concurrent use.
type OS struct {
	read *fsmeta.Reader
	// meta[i] applies metadata for Meta{Owner: i&1 != 0, Xattrs: i&2 != 0}.
	// Held in place (one allocation for the OS): a backup creates one.
	meta [4]fsmeta.Restorer
}

// NewOS returns the real filesystem. Ownership is restored only when the
// process runs as root (CAP_CHOWN), as fsmeta.NewRestorer decides.
func NewOS() *OS {
	o := &OS{read: fsmeta.NewReader()}
	root := os.Geteuid() == 0 // as fsmeta.NewRestorer decides
	for i := range o.meta {
		o.meta[i].Owner, o.meta[i].Xattrs = root && i&1 != 0, i&2 != 0
	}
	return o
}

func (o *OS) restorer(m Meta) *fsmeta.Restorer {
	i := 0
	if m.Owner {
		i |= 1
	}
	if m.Xattrs {
		i |= 2
	}
	return &o.meta[i]
}

// OpenDir opens the directory at path, following links to it.
func (o *OS) OpenDir(path string) (Dir, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &osDir{f: f, fs: o}, nil
}

// Node implements FS.
func (o *OS) Node(path string, xattrs bool) (*tree.Node, error) {
	return o.read.Node(path, nil, xattrs)
}

// MkdirAll implements FS.
func (o *OS) MkdirAll(path string) error { return os.MkdirAll(path, 0o700) }

// Apply implements FS.
func (o *OS) Apply(path string, n *tree.Node, m Meta) error {
	return o.restorer(m).Apply(path, n)
}

// osDir is an open directory descriptor.
type osDir struct {
	f  *os.File
	fs *OS
}

// OSFile returns the descriptor of an OS directory (seen through
// wrappers that have an Unwrap() Dir method), for the few callers that
// still take an *os.File; nil for other filesystems.
func OSFile(d Dir) *os.File {
	for {
		switch v := d.(type) {
		case *osDir:
			return v.f
		case interface{ Unwrap() Dir }:
			d = v.Unwrap()
		default:
			return nil
		}
	}
}

func (d *osDir) Name() string                  { return d.f.Name() }
func (d *osDir) Close() error                  { return d.f.Close() }
func (d *osDir) Names(n int) ([]string, error) { return d.f.Readdirnames(n) }

func (d *osDir) Node(name string, xattrs bool) (*tree.Node, error) {
	return d.fs.read.NodeAt(d.f, name, xattrs)
}

func (d *osDir) Lstat(name string) (fs.FileInfo, error) { return fsmeta.LstatAt(d.f, name) }
func (d *osDir) Xattrs() ([]tree.Xattr, error)          { return fsmeta.ReadXattrsFile(d.f) }
func (d *osDir) XattrsAt(name string) ([]tree.Xattr, error) {
	return fsmeta.ReadXattrsAt(d.f, name)
}

func (d *osDir) OpenDir(name string) (Dir, error) {
	f, err := fsmeta.OpenDirAt(d.f, name)
	if err != nil {
		return nil, err
	}
	return &osDir{f: f, fs: d.fs}, nil
}

func (d *osDir) OpenFile(name string) (File, error) {
	f, err := fsmeta.OpenFileAt(d.f, name)
	if err != nil {
		return nil, err
	}
	// osFile is one pointer: held in the File interface without an
	// allocation.
	return osFile{f}, nil
}

func (d *osDir) Create(name string, n *tree.Node) error {
	// Creating uses no option of the Restorer.
	return d.fs.restorer(Meta{}).CreateAt(d.f, name, n)
}

func (d *osDir) Apply(name string, n *tree.Node, m Meta) error {
	return d.fs.restorer(m).ApplyAt(d.f, name, n)
}

func (d *osDir) CreateFile(name string, size int64) (Writer, error) {
	return fsmeta.CreateFileWriterAt(d.f, name, size)
}

// other returns the descriptor of a Dir of this filesystem.
func (d *osDir) other(op string, nd Dir) (*os.File, error) {
	if f := OSFile(nd); f != nil {
		return f, nil
	}
	return nil, &fs.PathError{Op: op, Path: nd.Name(), Err: fmt.Errorf("not a directory of the OS filesystem: %w", syscall.EXDEV)}
}

func (d *osDir) Rename(name string, newdir Dir, newname string) error {
	nf, err := d.other("rename", newdir)
	if err != nil {
		return err
	}
	return fsmeta.RenameAt(d.f, name, nf, newname)
}

func (d *osDir) Link(name string, newdir Dir, newname string) error {
	nf, err := d.other("link", newdir)
	if err != nil {
		return err
	}
	return fsmeta.LinkAt(d.f, name, nf, newname)
}

func (d *osDir) RemoveAll(name string) error { return fsmeta.RemoveAllAt(d.f, name) }

// osFile is a regular file opened by fsmeta.OpenFileAt.
type osFile struct{ f *os.File }

func (f osFile) Read(p []byte) (int, error)                { return f.f.Read(p) }
func (f osFile) Seek(off int64, whence int) (int64, error) { return f.f.Seek(off, whence) }
func (f osFile) Close() error                              { return f.f.Close() }
func (f osFile) Name() string                              { return f.f.Name() }
func (f osFile) Xattrs() ([]tree.Xattr, error)             { return fsmeta.ReadXattrsFile(f.f) }
func (f osFile) Prefetch(n int64)                          { fsmeta.Prefetch(f.f, n) }

// NextData implements DataFinder (fsmeta.NextData: Linux only; elsewhere
// an error wrapping errors.ErrUnsupported).
func (f osFile) NextData(off int64) (start, end int64, err error) {
	return fsmeta.NextData(f.f, off)
}
