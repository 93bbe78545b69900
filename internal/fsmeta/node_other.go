//go:build !linux && !darwin

package fsmeta

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

// Node reads the metadata of the entry at path. fi must come from os.Lstat
// (or DirEntry.Info) of path; when it is nil, path is lstat'ed. On this
// platform only the type, mode bits, size, times and symlink target are
// known; withXattrs is ignored.
func (r *Reader) Node(path string, fi fs.FileInfo, withXattrs bool) (*tree.Node, error) {
	if fi == nil {
		var err error
		if fi, err = os.Lstat(path); err != nil {
			return nil, fmt.Errorf("lstat %q: %w", path, err)
		}
	}
	mode := fi.Mode()
	typ, err := NodeTypeOf(mode)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", path, err)
	}
	mt := fi.ModTime()
	n := &tree.Node{
		Name:       tree.RawString(fi.Name()),
		Type:       typ,
		Mode:       uint32(mode),
		ModTime:    utc(mt.Unix(), int64(mt.Nanosecond())),
		AccessTime: accessTime(fi),
	}
	switch typ {
	case tree.TypeFile:
		n.Size = uint64(fi.Size())
	case tree.TypeSymlink:
		target, err := os.Readlink(path)
		if err != nil {
			return nil, fmt.Errorf("readlink %q: %w", path, err)
		}
		n.LinkTarget = tree.RawString(target)
	}
	return n, nil
}

// NodeAt is Node for the entry name inside the open directory dir. On this
// platform it uses the joined path.
func (r *Reader) NodeAt(dir *os.File, name string, withXattrs bool) (*tree.Node, error) {
	p, err := atPath(dir, name)
	if err != nil {
		return nil, err
	}
	return r.Node(p, nil, withXattrs)
}

func atPath(dir *os.File, name string) (string, error) {
	if dir == nil {
		return "", fmt.Errorf("%q: nil directory", name)
	}
	if err := checkName(name); err != nil {
		return "", fmt.Errorf("in %q: %w", dir.Name(), err)
	}
	return joinName(dir, name), nil
}

// LstatAt is os.Lstat for the entry name inside the open directory dir.
func LstatAt(dir *os.File, name string) (fs.FileInfo, error) {
	p, err := atPath(dir, name)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, fmt.Errorf("lstat %q: %w", p, err)
	}
	return fi, nil
}

// OpenDirAt opens the directory name inside the open directory dir.
func OpenDirAt(dir *os.File, name string) (*os.File, error) {
	p, err := atPath(dir, name)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, fmt.Errorf("open directory %q: %w", p, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open directory %q: not a directory (%v)", p, fi.Mode().Type())
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open directory %q: %w", p, err)
	}
	return f, nil
}

// OpenFile opens the regular file at path for reading. Anything but a
// regular file is an error.
func OpenFile(path string) (*os.File, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("open %q: not a regular file (%v)", path, fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", path, err)
	}
	return f, nil
}

// OpenFileAt is OpenFile for the entry name inside the open directory dir.
func OpenFileAt(dir *os.File, name string) (*os.File, error) {
	p, err := atPath(dir, name)
	if err != nil {
		return nil, err
	}
	return OpenFile(p)
}

func createForWrite(path string) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("create %q: is a symlink, not following it", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %q: %w", path, err)
	}
	return f, nil
}

// CreateFileWriterAt creates the new regular file name inside the open
// directory dir and returns a FileWriter for it; a name that exists is an
// error wrapping fs.ErrExist (see the Unix version).
func CreateFileWriterAt(dir *os.File, name string, size int64) (*FileWriter, error) {
	if size < 0 {
		return nil, fmt.Errorf("create %q: negative size %d", name, size)
	}
	p, err := atPath(dir, name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %q: %w", p, err)
	}
	return NewFileWriter(f, size), nil
}

// Create creates the entry n at path: directories with mode 0700 (an
// existing directory is fine), regular files empty, symlinks to
// n.LinkTarget. FIFOs and devices fail with an error wrapping
// ErrNotSupported; sockets are skipped (nil).
func (r *Restorer) Create(path string, n *tree.Node) error {
	if n == nil {
		return fmt.Errorf("create %q: nil node", path)
	}
	switch n.Type {
	case tree.TypeDir:
		err := os.Mkdir(path, 0o700)
		if errors.Is(err, fs.ErrExist) {
			if fi, serr := os.Lstat(path); serr == nil && fi.IsDir() {
				return nil
			}
		}
		if err != nil {
			return fmt.Errorf("mkdir %q: %w", path, err)
		}
	case tree.TypeFile:
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("create %q: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("close %q: %w", path, err)
		}
	case tree.TypeSymlink:
		if err := os.Symlink(string(n.LinkTarget), path); err != nil {
			return fmt.Errorf("symlink %q -> %q: %w", path, string(n.LinkTarget), err)
		}
	case tree.TypeFIFO, tree.TypeDev, tree.TypeCharDev:
		return fmt.Errorf("create %s %q: %w", n.Type, path, ErrNotSupported)
	case tree.TypeSocket:
		return nil
	default:
		return fmt.Errorf("create %q: unknown node type %q", path, n.Type)
	}
	return nil
}

// CreateAt is Create for the entry name inside the open directory dir.
func (r *Restorer) CreateAt(dir *os.File, name string, n *tree.Node) error {
	p, err := atPath(dir, name)
	if err != nil {
		return err
	}
	return r.Create(p, n)
}

// Apply sets the mode bits (not for symlinks) and then the access and
// modification times of the existing entry at path. Ownership and xattrs
// are not supported on this platform and are silently left out. A
// directory must be applied after all its children are written.
func (r *Restorer) Apply(path string, n *tree.Node) error {
	if n == nil {
		return fmt.Errorf("apply metadata to %q: nil node", path)
	}
	if n.Type == tree.TypeSocket {
		return nil
	}
	var errs []error
	if n.Type != tree.TypeSymlink {
		if err := os.Chmod(path, fs.FileMode(n.Mode).Perm()); err != nil {
			errs = append(errs, fmt.Errorf("chmod %q: %w", path, err))
		}
	}
	atime := n.AccessTime
	if atime.IsZero() {
		atime = n.ModTime
	}
	if err := setTimes(path, n.Type == tree.TypeSymlink, atime, n.ModTime); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ApplyAt is Apply for the entry name inside the open directory dir.
func (r *Restorer) ApplyAt(dir *os.File, name string, n *tree.Node) error {
	p, err := atPath(dir, name)
	if err != nil {
		return err
	}
	return r.Apply(p, n)
}

// Link creates newpath as a hard link to oldpath.
func Link(oldpath, newpath string) error {
	if err := os.Link(oldpath, newpath); err != nil {
		return fmt.Errorf("hard link %q to %q: %w", newpath, oldpath, err)
	}
	return nil
}

// LinkAt creates newname in newdir as a hard link to oldname in olddir.
func LinkAt(olddir *os.File, oldname string, newdir *os.File, newname string) error {
	op, err := atPath(olddir, oldname)
	if err != nil {
		return err
	}
	np, err := atPath(newdir, newname)
	if err != nil {
		return err
	}
	return Link(op, np)
}

// RenameAt renames oldname in olddir to newname in newdir, replacing a
// file there.
func RenameAt(olddir *os.File, oldname string, newdir *os.File, newname string) error {
	op, err := atPath(olddir, oldname)
	if err != nil {
		return err
	}
	np, err := atPath(newdir, newname)
	if err != nil {
		return err
	}
	if err := os.Rename(op, np); err != nil {
		return fmt.Errorf("rename %q to %q: %w", op, np, err)
	}
	return nil
}
