//go:build linux || darwin

package fsmeta

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

// maxXattrTries bounds the retries when an attribute list or value grows
// between asking for its size and reading it.
const maxXattrTries = 8

// readXattrs returns all extended attributes of l (not following a
// symlink), sorted by name. No xattr support on the filesystem means no
// attributes, not an error.
func readXattrs(l loc) ([]tree.Xattr, error) {
	var xs []tree.Xattr
	err := withXattrPath(l, func(p string) error {
		var err error
		xs, err = pathXattrs(p).read(l.disp)
		return err
	})
	return xs, err
}

// ReadXattrsAt returns the extended attributes of the entry name inside
// the open directory dir, not following a symlink, sorted by name.
func ReadXattrsAt(dir *os.File, name string) ([]tree.Xattr, error) {
	var xs []tree.Xattr
	err := withDir(dir, name, func(l loc) error {
		var err error
		xs, err = readXattrs(l)
		return err
	})
	return xs, err
}

// ReadXattrsFile returns the extended attributes of an open file or
// directory, sorted by name. It spares the path lookups (through
// /proc/self/fd) that reading them by name inside a directory costs.
func ReadXattrsFile(f *os.File) ([]tree.Xattr, error) {
	fd := int(f.Fd())
	return xattrOps{
		list: func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
		get:  func(name string, b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) },
	}.read(f.Name())
}

// xattrOps lists and reads the attributes of one file, by path or fd.
type xattrOps struct {
	list func(buf []byte) (int, error)
	get  func(name string, buf []byte) (int, error)
}

func pathXattrs(p string) xattrOps {
	return xattrOps{
		list: func(b []byte) (int, error) { return unix.Llistxattr(p, b) },
		get:  func(name string, b []byte) (int, error) { return unix.Lgetxattr(p, name, b) },
	}
}

func (o xattrOps) read(disp string) ([]tree.Xattr, error) {
	names, err := o.names()
	if err != nil {
		if isNotSupported(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list xattrs of %q: %w", disp, err)
	}
	var xs []tree.Xattr
	var errs []error
	for _, name := range names {
		val, err := o.value(name)
		if errors.Is(err, errNoAttr) {
			continue // removed since it was listed
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read xattr %q of %q: %w", name, disp, err))
			continue
		}
		xs = append(xs, tree.Xattr{Name: tree.RawString(name), Value: val})
	}
	sortXattrs(xs)
	return xs, errors.Join(errs...)
}

// fetch calls op with a small buffer first, which is enough for almost
// every list and value in one system call, and with the size the kernel
// reports when it is not.
func fetch(op func([]byte) (int, error)) ([]byte, error) {
	buf := make([]byte, 256)
	for range maxXattrTries {
		n, err := op(buf)
		if err == nil {
			return buf[:n], nil
		}
		if err != unix.ERANGE {
			return nil, err
		}
		size, err := op(nil)
		if err != nil {
			return nil, err
		}
		buf = make([]byte, size)
	}
	return nil, unix.ERANGE
}

func (o xattrOps) names() ([]string, error) {
	b, err := fetch(o.list)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, name := range bytes.Split(b, []byte{0}) {
		if len(name) > 0 {
			names = append(names, string(name))
		}
	}
	return names, nil
}

func (o xattrOps) value(name string) ([]byte, error) {
	return fetch(func(b []byte) (int, error) { return o.get(name, b) })
}

// writeXattrs sets the given attributes on l, not following a symlink.
func writeXattrs(l loc, xs []tree.Xattr) error {
	return withXattrPath(l, func(p string) error {
		var errs []error
		for i, x := range xs {
			err := unix.Lsetxattr(p, string(x.Name), x.Value, 0)
			if i == 0 && errors.Is(err, unix.ENOENT) {
				return err // let withXattrPath try the next path
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("set xattr %q on %q: %w", string(x.Name), l.disp, err))
			}
		}
		return errors.Join(errs...)
	})
}
