package restorer

import (
	"os"

	"golang.org/x/sys/unix"
)

// openSpillFile makes a spill file without a name in dir (O_TMPFILE, mode
// 0600): nothing else can open it, and it is gone when closed, even if the
// process is killed. File systems without O_TMPFILE get an unlinked file.
func openSpillFile(dir string) (*os.File, string, error) {
	f, err := os.OpenFile(dir, os.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return f, "", nil
	}
	return createUnlinked(dir)
}

// punchHole frees the blocks of [off, off+n) of f; a file system that
// cannot keeps them until the file is closed.
func punchHole(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.Fallocate(int(fd), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	})
}
