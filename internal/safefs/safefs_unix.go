//go:build linux || darwin

package safefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

type rootSys struct{ fd int }

func openRoot(abs string) (rootSys, error) {
	fd, err := openat(unix.AT_FDCWD, abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return rootSys{}, &fs.PathError{Op: "open", Path: abs, Err: err}
	}
	return rootSys{fd: fd}, nil
}

func (s rootSys) close() error { return unix.Close(s.fd) }

// openat retries on EINTR.
func openat(dirfd int, name string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, perm)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// componentError names the component of a longer name that is in the way.
type componentError struct {
	comp string
	err  error
}

func (e *componentError) Error() string { return e.comp + " " + e.err.Error() }
func (e *componentError) Unwrap() error { return e.err }

// classify turns the error of opening name in dirfd into ErrSymlink,
// ErrNotDir or ErrNotRegular when the entry is the reason; comp is the
// component for the message ("" for the last one).
func classify(dirfd int, name, comp string, wantDir bool, err error) error {
	var st unix.Stat_t
	if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		var why error
		switch t := st.Mode & unix.S_IFMT; {
		case t == unix.S_IFLNK:
			why = ErrSymlink
		case wantDir && t != unix.S_IFDIR:
			why = ErrNotDir
		case !wantDir && t != unix.S_IFREG:
			why = fmt.Errorf("%w (%v)", ErrNotRegular, ModeFromUnix(uint32(st.Mode)).Type())
		}
		if why != nil {
			if comp != "" {
				return &componentError{comp: comp, err: why}
			}
			return why
		}
	}
	return err
}

// walk opens the directory parts beneath the root one component at a
// time, never following a link; with create, missing directories are
// made with perm. The descriptor is the root's own (owned false) for no
// parts.
func (s rootSys) walk(parts []string, create bool, perm uint32) (fd int, owned bool, err error) {
	fd = s.fd
	for i, p := range parts {
		comp := strings.Join(parts[:i+1], "/")
		flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		nfd, err := openat(fd, p, flags, 0)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(fd, p, perm); err == nil || errors.Is(err, unix.EEXIST) {
				nfd, err = openat(fd, p, flags, 0)
			}
		}
		if err != nil {
			err = classify(fd, p, comp, true, err)
		}
		if owned {
			unix.Close(fd)
		}
		if err != nil {
			return -1, false, err
		}
		fd, owned = nfd, true
	}
	return fd, owned, nil
}

// openDir opens the directory parts beneath the root: in one openat2 call
// where the kernel has it, else by walking.
func (s rootSys) openDir(parts []string) (int, bool, error) {
	if len(parts) == 0 {
		return s.fd, false, nil
	}
	fd, err, ok := openat2Dir(s.fd, strings.Join(parts, "/"))
	if !ok {
		return s.walk(parts, false, 0)
	}
	if err == nil {
		return fd, true, nil
	}
	// Let the walk name the component in the way.
	if wfd, owned, werr := s.walk(parts, false, 0); werr != nil {
		return -1, false, werr
	} else if owned {
		unix.Close(wfd)
	}
	return -1, false, err
}

func (s rootSys) openFile(parts []string, flag int, perm fs.FileMode) (*os.File, error) {
	dfd, owned, err := s.openDir(parts[:len(parts)-1])
	if err != nil {
		return nil, err
	}
	if owned {
		defer unix.Close(dfd)
	}
	last := parts[len(parts)-1]
	// Look before opening: opening a FIFO or a device can have effects.
	var st unix.Stat_t
	switch err := unix.Fstatat(dfd, last, &st, unix.AT_SYMLINK_NOFOLLOW); {
	case err == nil:
		if t := st.Mode & unix.S_IFMT; t == unix.S_IFLNK {
			return nil, ErrSymlink
		} else if t != unix.S_IFREG {
			return nil, fmt.Errorf("%w (%v)", ErrNotRegular, ModeFromUnix(uint32(st.Mode)).Type())
		}
	case errors.Is(err, unix.ENOENT) && flag&os.O_CREATE != 0:
	default:
		return nil, err
	}
	fd, err := openat(dfd, last, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, classify(dfd, last, "", false, err)
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("%w (%v)", ErrNotRegular, ModeFromUnix(uint32(st.Mode)).Type())
	}
	if flag&unix.O_NONBLOCK == 0 {
		if err := unix.SetNonblock(fd, false); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	return os.NewFile(uintptr(fd), filepath.Join(parts...)), nil
}

func (s rootSys) lstat(parts []string) (fs.FileInfo, error) {
	dfd, owned, err := s.openDir(parts[:len(parts)-1])
	if err != nil {
		return nil, err
	}
	if owned {
		defer unix.Close(dfd)
	}
	last := parts[len(parts)-1]
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, last, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, err
	}
	return &fileInfo{name: last, st: st}, nil
}

func (s rootSys) mkdirAll(parts []string, perm fs.FileMode) error {
	fd, owned, err := s.walk(parts, true, uint32(perm.Perm()))
	if err != nil {
		return err
	}
	if owned {
		unix.Close(fd)
	}
	return nil
}

func (s rootSys) remove(parts []string) error {
	dfd, owned, err := s.openDir(parts[:len(parts)-1])
	if err != nil {
		return err
	}
	if owned {
		defer unix.Close(dfd)
	}
	last := parts[len(parts)-1]
	err = unix.Unlinkat(dfd, last, 0)
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM) {
		err = unix.Unlinkat(dfd, last, unix.AT_REMOVEDIR)
	}
	return err
}

// fileInfo is an fstatat result as an fs.FileInfo; Sys is *unix.Stat_t.
type fileInfo struct {
	name string
	st   unix.Stat_t
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.st.Size }
func (fi *fileInfo) Mode() fs.FileMode  { return ModeFromUnix(uint32(fi.st.Mode)) }
func (fi *fileInfo) ModTime() time.Time { return time.Unix(fi.st.Mtim.Unix()) }
func (fi *fileInfo) IsDir() bool        { return fi.Mode().IsDir() }
func (fi *fileInfo) Sys() any           { return &fi.st }

// ModeFromUnix converts a raw st_mode to a Go file mode, the way os.Lstat
// does.
func ModeFromUnix(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFREG:
	default:
		mode |= fs.ModeIrregular
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
