//go:build !linux && !darwin

package safefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// rootSys uses os.Root, which keeps every name beneath the root; the
// checks for links and types are made with Lstat before each step (not
// atomic against a concurrent writer in the tree).
type rootSys struct{ r *os.Root }

func openRoot(abs string) (rootSys, error) {
	r, err := os.OpenRoot(abs)
	if err != nil {
		return rootSys{}, err
	}
	return rootSys{r: r}, nil
}

func (s rootSys) close() error { return s.r.Close() }

func native(parts []string) string { return filepath.FromSlash(strings.Join(parts, "/")) }

// checkDirs refuses a link or a non-directory among parts.
func (s rootSys) checkDirs(parts []string) error {
	for i := range parts {
		fi, err := s.r.Lstat(native(parts[:i+1]))
		if err != nil {
			return err
		}
		if err := wantDir(fi, strings.Join(parts[:i+1], "/")); err != nil {
			return err
		}
	}
	return nil
}

func wantDir(fi fs.FileInfo, comp string) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%s %w", comp, ErrSymlink)
	case !fi.IsDir():
		return fmt.Errorf("%s %w", comp, ErrNotDir)
	}
	return nil
}

func wantRegular(fi fs.FileInfo) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return ErrSymlink
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w (%v)", ErrNotRegular, fi.Mode().Type())
	}
	return nil
}

func (s rootSys) openFile(parts []string, flag int, perm fs.FileMode) (*os.File, error) {
	if err := s.checkDirs(parts[:len(parts)-1]); err != nil {
		return nil, err
	}
	name := native(parts)
	fi, err := s.r.Lstat(name)
	switch {
	case err == nil:
		if err := wantRegular(fi); err != nil {
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist) && flag&os.O_CREATE != 0:
	default:
		return nil, err
	}
	f, err := s.r.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if fi, err = f.Stat(); err == nil {
		err = wantRegular(fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (s rootSys) lstat(parts []string) (fs.FileInfo, error) {
	if err := s.checkDirs(parts[:len(parts)-1]); err != nil {
		return nil, err
	}
	return s.r.Lstat(native(parts))
}

func (s rootSys) mkdirAll(parts []string, perm fs.FileMode) error {
	for i := range parts {
		name := native(parts[:i+1])
		fi, err := s.r.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			if err = s.r.Mkdir(name, perm); err == nil || errors.Is(err, fs.ErrExist) {
				fi, err = s.r.Lstat(name)
			}
		}
		if err != nil {
			return err
		}
		if err := wantDir(fi, strings.Join(parts[:i+1], "/")); err != nil {
			return err
		}
	}
	return nil
}

func (s rootSys) remove(parts []string) error {
	if err := s.checkDirs(parts[:len(parts)-1]); err != nil {
		return err
	}
	return s.r.Remove(native(parts))
}
