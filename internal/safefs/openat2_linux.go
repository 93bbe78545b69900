package safefs

import (
	"errors"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// noOpenat2 is set once the kernel says it lacks openat2 (before 5.6).
var noOpenat2 atomic.Bool

// openat2Dir opens the directory name beneath dirfd with openat2, never
// following a link and never leaving dirfd. ok is false when openat2 is
// not available (old kernel, or refused by a seccomp filter): walk then.
func openat2Dir(dirfd int, name string) (fd int, err error, ok bool) {
	if noOpenat2.Load() {
		return -1, nil, false
	}
	how := &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range 16 {
		fd, err = unix.Openat2(dirfd, name, how)
		// EAGAIN: a concurrent rename made the kernel give up; retry.
		if err != unix.EINTR && err != unix.EAGAIN {
			break
		}
	}
	switch {
	case errors.Is(err, unix.ENOSYS):
		noOpenat2.Store(true)
		return -1, nil, false
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EINVAL), errors.Is(err, unix.E2BIG):
		return -1, nil, false
	}
	return fd, err, true
}
