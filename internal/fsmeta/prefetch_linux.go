package fsmeta

import (
	"os"

	"golang.org/x/sys/unix"
)

// Prefetch asks the kernel to start reading the first n bytes of f into
// the page cache in the background (posix_fadvise WILLNEED), so that a
// file queued for reading is already cached when its turn comes: on a
// cold cache, reading many small files one after the other waits on the
// disk for each. Failure is harmless and ignored.
func Prefetch(f *os.File, n int64) {
	_ = unix.Fadvise(int(f.Fd()), 0, n, unix.FADV_WILLNEED)
}
