//go:build linux

package fsmeta

import (
	"errors"
	"fmt"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// errNoAttr is the errno for "no such extended attribute".
const errNoAttr = unix.ENODATA

func statFromSys(st *syscall.Stat_t) statInfo {
	return statInfo{
		mode:  st.Mode,
		uid:   st.Uid,
		gid:   st.Gid,
		ino:   st.Ino,
		dev:   uint64(st.Dev),
		rdev:  uint64(st.Rdev),
		nlink: uint64(st.Nlink),
		size:  st.Size,
		atime: utc(int64(st.Atim.Sec), int64(st.Atim.Nsec)),
		mtime: utc(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)),
		ctime: utc(int64(st.Ctim.Sec), int64(st.Ctim.Nsec)),
	}
}

func statFromUnix(st *unix.Stat_t) statInfo {
	return statInfo{
		mode:  st.Mode,
		uid:   st.Uid,
		gid:   st.Gid,
		ino:   st.Ino,
		dev:   uint64(st.Dev),
		rdev:  uint64(st.Rdev),
		nlink: uint64(st.Nlink),
		size:  st.Size,
		atime: utc(int64(st.Atim.Sec), int64(st.Atim.Nsec)),
		mtime: utc(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)),
		ctime: utc(int64(st.Ctim.Sec), int64(st.Ctim.Nsec)),
	}
}

// openNoatime opens with O_NOATIME, which only the file's owner (or
// CAP_FOWNER) may use; without permission it opens normally.
func openNoatime(l loc, flags int) (int, error) {
	fd, err := openat(l, flags|unix.O_NOATIME, 0)
	if err == unix.EPERM {
		fd, err = openat(l, flags, 0)
	}
	return fd, err
}

// xattrPaths returns the paths through which the l*xattr calls reach l:
// for a name inside an open directory /proc/self/fd/N/name, which works at
// any depth, and then the joined path in case /proc is not mounted.
func xattrPaths(l loc) []string {
	if l.dirfd == unix.AT_FDCWD {
		return []string{l.name}
	}
	return []string{"/proc/self/fd/" + strconv.Itoa(l.dirfd) + "/" + l.name, l.disp}
}

// withXattrPath runs fn with the first of xattrPaths(l) through which the
// entry exists.
func withXattrPath(l loc, fn func(p string) error) error {
	paths := xattrPaths(l)
	var err error
	for i, p := range paths {
		err = fn(p)
		if i+1 < len(paths) && errors.Is(err, unix.ENOENT) {
			continue // no /proc: try the next way
		}
		return err
	}
	return err
}

func mkfifoAt(l loc, perm uint32) error {
	if err := unix.Mkfifoat(l.dirfd, l.name, perm); err != nil {
		return fmt.Errorf("mkfifo %q: %w", l.disp, err)
	}
	return nil
}

func mknodAt(l loc, mode uint32, dev uint64) error {
	d := unix.Mkdev(unix.Major(dev), unix.Minor(dev))
	if err := unix.Mknodat(l.dirfd, l.name, mode, int(d)); err != nil {
		return fmt.Errorf("mknod %q (%d,%d): %w", l.disp, unix.Major(dev), unix.Minor(dev), err)
	}
	return nil
}

// chmodAt sets the permission bits of l, which must not be a symlink. It
// asks the kernel not to follow a symlink (fchmodat2, Linux 6.6+) and
// falls back to plain fchmodat, after checking l is not a symlink, on
// older kernels.
func chmodAt(l loc, perm uint32) error {
	err := unix.Fchmodat(l.dirfd, l.name, perm, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil && isNotSupported(err) {
		var st unix.Stat_t
		if err = unix.Fstatat(l.dirfd, l.name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
			if st.Mode&unix.S_IFMT == unix.S_IFLNK {
				return fmt.Errorf("chmod %q: is a symlink, not following it", l.disp)
			}
			err = unix.Fchmodat(l.dirfd, l.name, perm, 0)
		}
	}
	if err != nil {
		return fmt.Errorf("chmod %q to %#o: %w", l.disp, perm, err)
	}
	return nil
}

const utimeOmit = unix.UTIME_OMIT
