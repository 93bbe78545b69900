//go:build darwin

package fsmeta

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// errNoAttr is the errno for "no such extended attribute".
const errNoAttr = unix.ENOATTR

func statFromSys(st *syscall.Stat_t) statInfo {
	return statInfo{
		mode:  uint32(st.Mode),
		uid:   st.Uid,
		gid:   st.Gid,
		ino:   st.Ino,
		dev:   uint64(uint32(st.Dev)),
		rdev:  uint64(uint32(st.Rdev)),
		nlink: uint64(st.Nlink),
		size:  st.Size,
		atime: utc(st.Atimespec.Sec, st.Atimespec.Nsec),
		mtime: utc(st.Mtimespec.Sec, st.Mtimespec.Nsec),
		ctime: utc(st.Ctimespec.Sec, st.Ctimespec.Nsec),
	}
}

func statFromUnix(st *unix.Stat_t) statInfo {
	return statInfo{
		mode:  uint32(st.Mode),
		uid:   st.Uid,
		gid:   st.Gid,
		ino:   st.Ino,
		dev:   uint64(uint32(st.Dev)),
		rdev:  uint64(uint32(st.Rdev)),
		nlink: uint64(st.Nlink),
		size:  st.Size,
		atime: utc(st.Atim.Sec, st.Atim.Nsec),
		mtime: utc(st.Mtim.Sec, st.Mtim.Nsec),
		ctime: utc(st.Ctim.Sec, st.Ctim.Nsec),
	}
}

// openNoatime opens normally: macOS has no O_NOATIME.
func openNoatime(l loc, flags int) (int, error) {
	return openat(l, flags, 0)
}

// withXattrPath runs fn with a path to l. macOS has no /proc and no *xattrat
// calls, so entries inside an open directory are reached through the
// joined path, which fails beyond PATH_MAX.
func withXattrPath(l loc, fn func(p string) error) error {
	return fn(l.disp)
}

// mkfifoAt uses the joined path: macOS has no mkfifoat.
func mkfifoAt(l loc, perm uint32) error {
	if err := unix.Mkfifo(l.disp, perm); err != nil {
		return fmt.Errorf("mkfifo %q: %w", l.disp, err)
	}
	return nil
}

// mknodAt uses the joined path: macOS has no mknodat.
func mknodAt(l loc, mode uint32, dev uint64) error {
	d := unix.Mkdev(unix.Major(dev), unix.Minor(dev))
	if err := unix.Mknod(l.disp, mode, int(d)); err != nil {
		return fmt.Errorf("mknod %q (%d,%d): %w", l.disp, unix.Major(dev), unix.Minor(dev), err)
	}
	return nil
}

// chmodAt sets the permission bits of l without following a symlink.
func chmodAt(l loc, perm uint32) error {
	if err := unix.Fchmodat(l.dirfd, l.name, perm, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chmod %q to %#o: %w", l.disp, perm, err)
	}
	return nil
}

// utimeOmit is UTIME_OMIT from <sys/stat.h>.
const utimeOmit = -2
