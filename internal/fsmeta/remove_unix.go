//go:build linux || darwin

package fsmeta

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// RemoveAllAt removes the entry name of the open directory dir and, for a
// directory, everything below it, without building long paths (works below
// PATH_MAX depth). A missing entry is not an error.
func RemoveAllAt(dir *os.File, name string) error {
	return withDir(dir, name, func(l loc) error {
		err := unix.Unlinkat(l.dirfd, l.name, 0)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("remove %q: %w", l.disp, err)
		}
		sub, oerr := OpenDirAt(dir, name)
		if oerr != nil {
			return fmt.Errorf("remove %q: %w", l.disp, err)
		}
		for {
			names, rerr := sub.Readdirnames(256)
			for _, n := range names {
				if e := RemoveAllAt(sub, n); e != nil {
					sub.Close()
					return e
				}
			}
			if rerr == io.EOF || len(names) == 0 {
				break
			}
			if rerr != nil {
				sub.Close()
				return fmt.Errorf("remove %q: %w", l.disp, rerr)
			}
		}
		sub.Close()
		if err := unix.Unlinkat(l.dirfd, l.name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove %q: %w", l.disp, err)
		}
		return nil
	})
}
