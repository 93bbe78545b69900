//go:build windows

package fsmeta

import (
	"fmt"
	"io/fs"
	"syscall"
	"time"

	"golang.org/x/sys/windows"
)

func accessTime(fi fs.FileInfo) time.Time {
	if d, ok := fi.Sys().(*syscall.Win32FileAttributeData); ok && d != nil {
		ns := d.LastAccessTime.Nanoseconds()
		return utc(ns/1e9, ns%1e9)
	}
	return time.Time{}
}

// setTimes sets the access and write times of path itself, also when it is
// a symlink or directory (the handle is opened on the reparse point with
// backup semantics). A zero time is left alone.
func setTimes(path string, _ bool, atime, mtime time.Time) error {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return fmt.Errorf("set times of %q: %w", path, err)
	}
	h, err := windows.CreateFile(p, windows.FILE_WRITE_ATTRIBUTES,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_BACKUP_SEMANTICS|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return fmt.Errorf("set times of %q: open: %w", path, err)
	}
	defer windows.CloseHandle(h)
	var a, m *windows.Filetime
	if !atime.IsZero() {
		ft := windows.NsecToFiletime(atime.UnixNano())
		a = &ft
	}
	if !mtime.IsZero() {
		ft := windows.NsecToFiletime(mtime.UnixNano())
		m = &ft
	}
	if err := windows.SetFileTime(h, nil, a, m); err != nil {
		return fmt.Errorf("set times of %q: %w", path, err)
	}
	return nil
}
