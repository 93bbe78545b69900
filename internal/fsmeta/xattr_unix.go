//go:build linux || darwin

package fsmeta

import (
	"bytes"
	"errors"
	"fmt"

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
		xs = nil
		names, err := listXattrs(p)
		if err != nil {
			if isNotSupported(err) {
				return nil
			}
			return fmt.Errorf("list xattrs of %q: %w", l.disp, err)
		}
		var errs []error
		for _, name := range names {
			val, err := getXattr(p, name)
			if errors.Is(err, errNoAttr) {
				continue // removed since it was listed
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("read xattr %q of %q: %w", name, l.disp, err))
				continue
			}
			xs = append(xs, tree.Xattr{Name: tree.RawString(name), Value: val})
		}
		return errors.Join(errs...)
	})
	sortXattrs(xs)
	return xs, err
}

func listXattrs(p string) ([]string, error) {
	for range maxXattrTries {
		size, err := unix.Llistxattr(p, nil)
		if err != nil {
			return nil, err
		}
		if size == 0 {
			return nil, nil
		}
		buf := make([]byte, size)
		n, err := unix.Llistxattr(p, buf)
		if err == unix.ERANGE {
			continue
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, name := range bytes.Split(buf[:n], []byte{0}) {
			if len(name) > 0 {
				names = append(names, string(name))
			}
		}
		return names, nil
	}
	return nil, unix.ERANGE
}

func getXattr(p, name string) ([]byte, error) {
	for range maxXattrTries {
		size, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, size)
		if size == 0 {
			return buf, nil
		}
		n, err := unix.Lgetxattr(p, name, buf)
		if err == unix.ERANGE {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	return nil, unix.ERANGE
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
