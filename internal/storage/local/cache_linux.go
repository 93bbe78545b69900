package local

import (
	"os"

	"golang.org/x/sys/unix"
)

// dropCache tells the kernel that the pages of f, which was just synced,
// will not be read again soon. A backup writes far more than it reads
// back, and keeping every written pack in the page cache evicts what the
// user's programs had cached. It also lets the next pack reuse these pages:
// on virtual machines that hand free memory back to the host, filling the
// page cache with never-touched memory costs several times the write itself.
// Failure is harmless and ignored.
func dropCache(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
