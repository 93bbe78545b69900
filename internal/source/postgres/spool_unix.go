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

// checkSpoolDir refuses a spool directory that users other than its
// owner may write to (group or others write, sticky or not).
func checkSpoolDir(fi fs.FileInfo) error {
	if !fi.IsDir() {
		return errors.New("not a directory")
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("others may write to it (mode %v): files planted there would be archived as WAL; make it 0700", fi.Mode().Perm())
	}
	return nil
}

// openSpooled opens a spooled file for archiving: never through a
// symlink, and only a regular file with no other name, so that nothing
// put in the spool makes the pusher (perhaps root) archive a file from
// elsewhere.
func openSpooled(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", p)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); err == nil && ok && st.Nlink != 1 {
		err = fmt.Errorf("%s has %d names (a hard link to a file elsewhere?)", p, st.Nlink)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

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
