//go:build unix

package postgres

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// TryLock takes the spool's lock, which says that someone archives the
// spool, without waiting. ok is false when another process holds it; the
// lock lasts until unlock is called or the process ends (even by kill -9:
// the kernel drops an flock with the process's files).
func (s *WALSpool) TryLock() (unlock func(), ok bool, err error) {
	f, err := os.OpenFile(filepath.Join(s.Dir, spoolLockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("WAL spool lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("WAL spool lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, true, nil
}

// locked reports whether someone holds the spool's lock. It creates
// nothing (pg info may run as another user than the pusher).
func (s *WALSpool) locked() (bool, error) {
	f, err := os.Open(filepath.Join(s.Dir, spoolLockName))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("WAL spool lock: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return true, nil
		}
		return false, fmt.Errorf("WAL spool lock %s: %w", f.Name(), err)
	}
	return false, nil
}
