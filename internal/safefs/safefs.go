package safefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrSymlink says a component of a name is a symbolic link, which a Root
// never follows.
var ErrSymlink = errors.New("is a symbolic link (not followed)")

// ErrNotRegular says a name that must be a regular file is something else.
var ErrNotRegular = errors.New("is not a regular file")

// ErrNotDir says a component that must be a directory is something else.
var ErrNotDir = errors.New("is not a directory")

// Root is an open directory beneath which names are resolved. It is safe
// for concurrent use; Close it when done.
type Root struct {
	path string
	sys  rootSys
}

// Open opens the directory dir as a Root.
func Open(dir string) (*Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	sys, err := openRoot(abs)
	if err != nil {
		return nil, err
	}
	return &Root{path: abs, sys: sys}, nil
}

// Path is the absolute path the root was opened at.
func (r *Root) Path() string { return r.path }

// Close releases the root's directory.
func (r *Root) Close() error { return r.sys.close() }

// Join is the path of name beneath the root, for messages.
func (r *Root) Join(name string) string {
	return filepath.Join(r.path, filepath.FromSlash(name))
}

// split checks a name and returns its components.
func split(name string) ([]string, error) {
	if name == "" {
		return nil, errors.New("empty name")
	}
	if strings.HasPrefix(name, "/") || filepath.IsAbs(name) || filepath.VolumeName(name) != "" {
		return nil, fmt.Errorf("name %q is absolute", name)
	}
	if strings.ContainsRune(name, 0) {
		return nil, fmt.Errorf("name %q holds a NUL byte", name)
	}
	if filepath.Separator != '/' && strings.ContainsRune(name, filepath.Separator) {
		return nil, fmt.Errorf("name %q holds %q: use slashes", name, filepath.Separator)
	}
	parts := strings.Split(name, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return nil, fmt.Errorf("name %q: component %q is not allowed", name, p)
		}
	}
	return parts, nil
}

func (r *Root) pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: r.Join(name), Err: err}
}

// OpenFile opens the regular file name beneath the root with the flags of
// os.OpenFile (O_CREATE creates it with perm, before the umask). It
// refuses a symbolic link at any component (ErrSymlink) and anything but a
// regular file at the last one (ErrNotRegular); such an entry is left as
// it is.
func (r *Root) OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	parts, err := split(name)
	if err != nil {
		return nil, r.pathErr("open", name, err)
	}
	f, err := r.sys.openFile(parts, flag, perm)
	if err != nil {
		return nil, r.pathErr("open", name, err)
	}
	return f, nil
}

// Lstat returns the metadata of name beneath the root without following a
// link at its last component; a link at an earlier one is ErrSymlink.
func (r *Root) Lstat(name string) (fs.FileInfo, error) {
	parts, err := split(name)
	if err != nil {
		return nil, r.pathErr("lstat", name, err)
	}
	fi, err := r.sys.lstat(parts)
	if err != nil {
		return nil, r.pathErr("lstat", name, err)
	}
	return fi, nil
}

// MkdirAll creates the directory name beneath the root and its missing
// parents with perm (before the umask). An existing directory is fine; a
// link or a file at any component is refused.
func (r *Root) MkdirAll(name string, perm fs.FileMode) error {
	parts, err := split(name)
	if err != nil {
		return r.pathErr("mkdir", name, err)
	}
	if err := r.sys.mkdirAll(parts, perm); err != nil {
		return r.pathErr("mkdir", name, err)
	}
	return nil
}

// Remove removes the file, link or empty directory name beneath the root
// (a link itself, never its target). A missing name is not an error.
func (r *Root) Remove(name string) error {
	parts, err := split(name)
	if err != nil {
		return r.pathErr("remove", name, err)
	}
	if err := r.sys.remove(parts); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return r.pathErr("remove", name, err)
	}
	return nil
}

// WriteFile writes data to the regular file name beneath the root,
// creating it with perm or truncating it, like os.WriteFile without
// following links.
func (r *Root) WriteFile(name string, data []byte, perm fs.FileMode) error {
	f, err := r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return r.pathErr("write", name, err)
	}
	return nil
}
