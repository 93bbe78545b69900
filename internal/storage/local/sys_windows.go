//go:build windows

package local

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// Windows error codes not exported by package syscall.
const (
	errorHandleDiskFull syscall.Errno = 39
	errorDiskFull       syscall.Errno = 112
	errorWriteProtect   syscall.Errno = 19
)

// fsyncDir is a no-op: Windows cannot open a directory for syncing, and
// NTFS journals renames itself.
func fsyncDir(string) error { return nil }

func isNoSpace(err error) bool {
	return errors.Is(err, errorDiskFull) || errors.Is(err, errorHandleDiskFull)
}

func isReadOnlyFS(err error) bool {
	return errors.Is(err, errorWriteProtect)
}

// removeFile removes a file, clearing its read-only attribute first if
// Windows refuses to delete it.
func removeFile(name string) error {
	err := os.Remove(name)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	if os.Chmod(name, 0o666) != nil {
		return err
	}
	return os.Remove(name)
}

// replaceFile renames from to to, replacing to if it exists. Windows refuses
// to replace a read-only file, so the target is made writable on failure
// and the rename retried.
func replaceFile(from, to string) error {
	err := os.Rename(from, to)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	if os.Chmod(to, 0o666) != nil {
		return err
	}
	return os.Rename(from, to)
}
