//go:build unix

package local

import (
	"errors"
	"os"
	"syscall"
)

// fsyncDir makes the entries of directory dir (renames, links, removals)
// durable. File systems that cannot sync a directory are tolerated.
func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.ENOTTY) {
		// Some file systems (and macOS's F_FULLFSYNC on some of them)
		// refuse to sync a directory; there is nothing better to do.
		err = nil
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func isReadOnlyFS(err error) bool {
	return errors.Is(err, syscall.EROFS)
}

// removeFile removes a file. Read-only files can be removed on Unix as long
// as the directory is writable.
func removeFile(name string) error {
	return os.Remove(name)
}

// replaceFile atomically renames from to to, replacing to if it exists.
func replaceFile(from, to string) error {
	return os.Rename(from, to)
}
