//go:build linux || darwin

package fsmeta

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

// Create creates the entry n at path, with restrictive permissions; Apply
// sets the final metadata:
//   - directories: mkdir with mode 0700; an existing directory is fine;
//   - regular files: an empty file with mode 0600 (the caller writes the
//     content, e.g. with CreateFileWriter);
//   - symlinks: symlink to n.LinkTarget;
//   - FIFOs: mkfifo with mode 0600;
//   - block and character devices: mknod with mode 0600 and the major and
//     minor number from n.Device (needs root);
//   - sockets: nothing is created and nil is returned.
//
// For paths longer than PATH_MAX use CreateAt.
func (r *Restorer) Create(path string, n *tree.Node) error {
	return r.create(pathLoc(path), n)
}

// CreateAt is Create for the entry name inside the open directory dir.
// name must be a valid node name (one path component).
func (r *Restorer) CreateAt(dir *os.File, name string, n *tree.Node) error {
	return withDir(dir, name, func(l loc) error { return r.create(l, n) })
}

func (r *Restorer) create(l loc, n *tree.Node) error {
	if n == nil {
		return fmt.Errorf("create %q: nil node", l.disp)
	}
	switch n.Type {
	case tree.TypeDir:
		err := unix.Mkdirat(l.dirfd, l.name, 0o700)
		if err == unix.EEXIST {
			if st, serr := lstatAt(l); serr == nil && st.mode&unix.S_IFMT == unix.S_IFDIR {
				return nil
			}
		}
		if err != nil {
			return fmt.Errorf("mkdir %q: %w", l.disp, err)
		}
	case tree.TypeFile:
		fd, err := openat(l, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("create %q: %w", l.disp, err)
		}
		if err := unix.Close(fd); err != nil {
			return fmt.Errorf("close %q: %w", l.disp, err)
		}
	case tree.TypeSymlink:
		if err := unix.Symlinkat(string(n.LinkTarget), l.dirfd, l.name); err != nil {
			return fmt.Errorf("symlink %q -> %q: %w", l.disp, string(n.LinkTarget), err)
		}
	case tree.TypeFIFO:
		return mkfifoAt(l, 0o600)
	case tree.TypeDev:
		return mknodAt(l, unix.S_IFBLK|0o600, n.Device)
	case tree.TypeCharDev:
		return mknodAt(l, unix.S_IFCHR|0o600, n.Device)
	case tree.TypeSocket:
		return nil // see the package documentation
	default:
		return fmt.Errorf("create %q: unknown node type %q", l.disp, n.Type)
	}
	return nil
}

// Apply sets the metadata of n on the existing entry at path, in this
// order: owner (when r.Owner; lchown, never following a symlink), extended
// attributes (when r.Xattrs), mode (not for symlinks, whose mode Linux
// ignores) and last access and modification time (not following a
// symlink). A directory must be applied after all its children are
// written, as adding entries changes its mtime.
//
// Every step is tried even if an earlier one failed; the result joins all
// failures. Sockets are skipped (nil).
//
// For paths longer than PATH_MAX use ApplyAt.
func (r *Restorer) Apply(path string, n *tree.Node) error {
	return r.apply(pathLoc(path), n)
}

// ApplyAt is Apply for the entry name inside the open directory dir.
func (r *Restorer) ApplyAt(dir *os.File, name string, n *tree.Node) error {
	return withDir(dir, name, func(l loc) error { return r.apply(l, n) })
}

func (r *Restorer) apply(l loc, n *tree.Node) error {
	if n == nil {
		return fmt.Errorf("apply metadata to %q: nil node", l.disp)
	}
	if n.Type == tree.TypeSocket {
		return nil
	}
	var errs []error
	chownFailed := false
	if r.Owner {
		uid, gid := r.ownerIDs(n)
		if err := unix.Fchownat(l.dirfd, l.name, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			errs = append(errs, fmt.Errorf("lchown %q to %d:%d: %w", l.disp, uid, gid, err))
			chownFailed = true
		}
	}
	if r.Xattrs && len(n.Xattrs) > 0 {
		if err := writeXattrs(l, n.Xattrs); err != nil {
			errs = append(errs, err)
		}
	}
	if n.Type != tree.TypeSymlink {
		perm := unixPerm(fs.FileMode(n.Mode))
		if chownFailed {
			perm &^= modeSetuid | modeSetgid
		}
		if err := chmodAt(l, perm); err != nil {
			errs = append(errs, err)
		}
	}
	if err := setTimes(l, n.AccessTime, n.ModTime); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// setTimes sets atime and mtime of l without following a symlink. A zero
// atime is set to mtime; a zero mtime is left alone.
func setTimes(l loc, atime, mtime time.Time) error {
	if atime.IsZero() {
		atime = mtime
	}
	ts := make([]unix.Timespec, 2)
	for i, t := range []time.Time{atime, mtime} {
		if t.IsZero() {
			ts[i] = unix.Timespec{Nsec: utimeOmit}
			continue
		}
		var err error
		if ts[i], err = unix.TimeToTimespec(t); err != nil {
			return fmt.Errorf("set times of %q: %v: %w", l.disp, t, err)
		}
	}
	if err := unix.UtimesNanoAt(l.dirfd, l.name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %q: %w", l.disp, err)
	}
	return nil
}

// Link creates newpath as a hard link to oldpath. A symlink at oldpath is
// linked itself, not its target.
func Link(oldpath, newpath string) error {
	if err := unix.Linkat(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, 0); err != nil {
		return fmt.Errorf("hard link %q to %q: %w", newpath, oldpath, err)
	}
	return nil
}

// LinkAt creates newname in newdir as a hard link to oldname in olddir.
func LinkAt(olddir *os.File, oldname string, newdir *os.File, newname string) error {
	return withDir(olddir, oldname, func(ol loc) error {
		return withDir(newdir, newname, func(nl loc) error {
			if err := unix.Linkat(ol.dirfd, ol.name, nl.dirfd, nl.name, 0); err != nil {
				return fmt.Errorf("hard link %q to %q: %w", nl.disp, ol.disp, err)
			}
			return nil
		})
	})
}
