//go:build unix

package state

import (
	"os"
	"syscall"
)

// unlock drops the flock bbolt took on f. Closing f alone is not enough
// when bbolt panicked after mapping the file: the mapping keeps the open
// file, and with it the lock, alive.
func unlock(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
