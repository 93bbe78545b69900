//go:build !linux && !darwin && !windows

package fsmeta

import (
	"fmt"
	"io/fs"
	"os"
	"time"
)

func accessTime(fs.FileInfo) time.Time { return time.Time{} }

// setTimes sets the times of path. Symlinks are left alone: this platform
// build has no portable lutimes.
func setTimes(path string, symlink bool, atime, mtime time.Time) error {
	if symlink || mtime.IsZero() {
		return nil
	}
	if err := os.Chtimes(path, atime, mtime); err != nil {
		return fmt.Errorf("set times of %q: %w", path, err)
	}
	return nil
}
