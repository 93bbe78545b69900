//go:build linux || darwin

package fsmeta

import (
	"errors"
	"fmt"
	"github.com/bunkerbackup/bunker/internal/safefs"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

// statInfo is the part of a stat result that nodes need, in one form for
// syscall.Stat_t and unix.Stat_t of every platform.
type statInfo struct {
	mode                uint32 // raw st_mode
	uid, gid            uint32
	ino, dev, rdev      uint64
	nlink               uint64
	size                int64
	atime, mtime, ctime time.Time
}

// fileModeFromUnix converts a raw st_mode to a Go file mode, the way
// os.Lstat does.
func fileModeFromUnix(m uint32) fs.FileMode { return safefs.ModeFromUnix(m) }

// loc names one directory entry for the *at system calls: either a path
// (dirfd is AT_FDCWD) or a single name inside the directory dirfd.
type loc struct {
	dirfd int
	name  string // the path, or the name inside dirfd
	disp  string // the path, for messages and path-only calls
}

func pathLoc(path string) loc { return loc{dirfd: unix.AT_FDCWD, name: path, disp: path} }

// withDir runs fn with the descriptor of dir and a loc for name in it. The
// descriptor stays valid while fn runs.
func withDir(dir *os.File, name string, fn func(l loc) error) error {
	if dir == nil {
		return fmt.Errorf("%q: nil directory", name)
	}
	if err := checkName(name); err != nil {
		return fmt.Errorf("in %q: %w", dir.Name(), err)
	}
	rc, err := dir.SyscallConn()
	if err != nil {
		return fmt.Errorf("directory %q: %w", dir.Name(), err)
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		ferr = fn(loc{dirfd: int(fd), name: name, disp: joinName(dir, name)})
	}); err != nil {
		return fmt.Errorf("directory %q: %w", dir.Name(), err)
	}
	return ferr
}

func lstatAt(l loc) (statInfo, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(l.dirfd, l.name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return statInfo{}, fmt.Errorf("lstat %q: %w", l.disp, err)
		}
		return statFromUnix(&st), nil
	}
}

// Node reads the metadata of the entry at path. fi must come from os.Lstat
// (or DirEntry.Info) of path; when it is nil or carries no stat data, path
// is lstat'ed. The name of the node is fi.Name() (the base name of path
// when fi is nil).
//
// Extended attributes are read when withXattrs is set; a filesystem
// without xattr support yields none. If only the xattrs could not be read,
// Node returns the node without them together with the error, so the
// caller can keep the entry and note the problem in Node.Error.
//
// For paths longer than PATH_MAX use NodeAt.
func (r *Reader) Node(path string, fi fs.FileInfo, withXattrs bool) (*tree.Node, error) {
	l := pathLoc(path)
	var st statInfo
	var name string
	if fi != nil {
		name = fi.Name()
	} else {
		name = filepath.Base(path)
	}
	if sys, ok := sysStat(fi); ok {
		st = statFromSys(sys)
	} else {
		var err error
		if st, err = lstatAt(l); err != nil {
			return nil, err
		}
	}
	return r.node(l, name, st, withXattrs)
}

func sysStat(fi fs.FileInfo) (*syscall.Stat_t, bool) {
	if fi == nil {
		return nil, false
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	return sys, ok && sys != nil
}

// NodeAt is Node for the entry name inside the open directory dir. It
// works at any depth, as it never builds the entry's full path (see the
// package documentation for xattrs).
func (r *Reader) NodeAt(dir *os.File, name string, withXattrs bool) (*tree.Node, error) {
	var n *tree.Node
	err := withDir(dir, name, func(l loc) error {
		st, err := lstatAt(l)
		if err != nil {
			return err
		}
		n, err = r.node(l, name, st, withXattrs)
		return err
	})
	return n, err
}

func (r *Reader) node(l loc, name string, st statInfo, withXattrs bool) (*tree.Node, error) {
	mode := fileModeFromUnix(st.mode)
	typ, err := NodeTypeOf(mode)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", l.disp, err)
	}
	n := &tree.Node{
		Name:       tree.RawString(name),
		Type:       typ,
		Mode:       uint32(mode),
		ModTime:    st.mtime,
		AccessTime: st.atime,
		ChangeTime: st.ctime,
		UID:        st.uid,
		GID:        st.gid,
		User:       r.UserName(st.uid),
		Group:      r.GroupName(st.gid),
		Inode:      st.ino,
		DeviceID:   st.dev,
		Links:      st.nlink,
	}
	switch typ {
	case tree.TypeFile:
		n.Size = uint64(st.size)
	case tree.TypeSymlink:
		target, err := readlinkAt(l)
		if err != nil {
			return nil, err
		}
		n.LinkTarget = tree.RawString(target)
	case tree.TypeDev, tree.TypeCharDev:
		n.Device = st.rdev
	}
	if withXattrs {
		xs, err := readXattrs(l)
		if err != nil {
			return n, err
		}
		n.Xattrs = xs
	}
	return n, nil
}

func readlinkAt(l loc) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(l.dirfd, l.name, buf)
		if err != nil {
			return "", fmt.Errorf("readlink %q: %w", l.disp, err)
		}
		if n < size {
			return string(buf[:n]), nil
		}
		if size >= 1<<20 {
			return "", fmt.Errorf("readlink %q: target longer than %d bytes", l.disp, size)
		}
	}
}

// fileInfo is the fs.FileInfo LstatAt returns.
type fileInfo struct {
	name string
	st   statInfo
	sys  *unix.Stat_t
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.st.size }
func (fi *fileInfo) Mode() fs.FileMode  { return fileModeFromUnix(fi.st.mode) }
func (fi *fileInfo) ModTime() time.Time { return fi.st.mtime }
func (fi *fileInfo) IsDir() bool        { return fi.Mode().IsDir() }
func (fi *fileInfo) Sys() any           { return fi.sys }

// Links is how many names (hard links) the file has.
func (fi *fileInfo) Links() uint64 { return fi.st.nlink }

// LstatAt is os.Lstat for the entry name inside the open directory dir.
// Its Sys method returns a *unix.Stat_t.
func LstatAt(dir *os.File, name string) (fs.FileInfo, error) {
	var fi *fileInfo
	err := withDir(dir, name, func(l loc) error {
		var st unix.Stat_t
		if err := unix.Fstatat(l.dirfd, l.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("lstat %q: %w", l.disp, err)
		}
		fi = &fileInfo{name: name, st: statFromUnix(&st), sys: &st}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return fi, nil
}

// OpenDirAt opens the directory name inside the open directory dir, not
// following a symlink. The result's Name is the joined path (for
// messages only: it may be longer than PATH_MAX).
func OpenDirAt(dir *os.File, name string) (*os.File, error) {
	var f *os.File
	err := withDir(dir, name, func(l loc) error {
		fd, err := openat(l, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open directory %q: %w", l.disp, err)
		}
		f = os.NewFile(uintptr(fd), l.disp)
		return nil
	})
	return f, err
}

// OpenFile opens the regular file at path for reading, without following a
// symlink, without blocking if path turned into a FIFO since it was
// listed, and (on Linux, where permitted) without updating its access
// time. Anything but a regular file is an error.
func OpenFile(path string) (*os.File, error) {
	return openRegular(pathLoc(path))
}

// OpenFileAt is OpenFile for the entry name inside the open directory dir.
func OpenFileAt(dir *os.File, name string) (*os.File, error) {
	var f *os.File
	err := withDir(dir, name, func(l loc) error {
		var err error
		f, err = openRegular(l)
		return err
	})
	return f, err
}

func openRegular(l loc) (*os.File, error) {
	fd, err := openNoatime(l, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", l.disp, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("stat %q: %w", l.disp, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("open %q: not a regular file (%v)", l.disp, fileModeFromUnix(uint32(st.Mode)).Type())
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open %q: %w", l.disp, err)
	}
	return os.NewFile(uintptr(fd), l.disp), nil
}

// openat retries on EINTR.
func openat(l loc, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Openat(l.dirfd, l.name, flags, perm)
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

func createForWrite(path string) (*os.File, error) {
	return createAt(pathLoc(path))
}

func createAt(l loc) (*os.File, error) {
	fd, err := openat(l, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %q: %w", l.disp, err)
	}
	return os.NewFile(uintptr(fd), l.disp), nil
}

// CreateFileWriterAt creates the new regular file name inside the open
// directory dir with mode 0600 and returns a FileWriter for content of the
// given size. Unlike CreateFileWriter it never opens an existing entry: a
// name that exists (a file, a link, a FIFO or a device node a hostile
// snapshot put there) is an error wrapping fs.ErrExist; the caller removes
// what it means to replace first.
func CreateFileWriterAt(dir *os.File, name string, size int64) (*FileWriter, error) {
	if size < 0 {
		return nil, fmt.Errorf("create %q: negative size %d", name, size)
	}
	var f *os.File
	err := withDir(dir, name, func(l loc) error {
		fd, err := openat(l, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("create %q: %w", l.disp, err)
		}
		f = os.NewFile(uintptr(fd), l.disp)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return NewFileWriter(f, size), nil
}

// isNotSupported reports whether err says the filesystem or kernel lacks a
// feature (xattrs, fchmodat2, ...).
func isNotSupported(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS)
}

// RenameAt renames oldname in olddir to newname in newdir, replacing a
// file or link there (never following one).
func RenameAt(olddir *os.File, oldname string, newdir *os.File, newname string) error {
	return withDir(olddir, oldname, func(ol loc) error {
		return withDir(newdir, newname, func(nl loc) error {
			if err := unix.Renameat(ol.dirfd, ol.name, nl.dirfd, nl.name); err != nil {
				return fmt.Errorf("rename %q to %q: %w", ol.disp, nl.disp, err)
			}
			return nil
		})
	})
}
