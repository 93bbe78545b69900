package local

import (
	"errors"
	"io/fs"

	"github.com/bunkerbackup/bunker/internal/storage"
)

// osError keeps an operating system error and the storage sentinel it maps
// to, so that errors.Is finds both while the message stays the OS one.
type osError struct {
	sentinel error
	err      error
}

func (e *osError) Error() string   { return e.err.Error() }
func (e *osError) Unwrap() []error { return []error{e.sentinel, e.err} }

// classify returns the storage sentinel matching an OS error, or nil.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return storage.ErrNotExist
	case errors.Is(err, fs.ErrExist):
		return storage.ErrExists
	case isNoSpace(err):
		return storage.ErrNoSpace
	case errors.Is(err, fs.ErrPermission), isReadOnlyFS(err):
		return storage.ErrPermission
	}
	return nil
}

// mapErr wraps an OS error so that it also matches the storage sentinel it
// stands for (ErrNotExist, ErrExists, ErrNoSpace, ErrPermission). Errors
// without a matching sentinel are returned as they are.
func mapErr(err error) error {
	s := classify(err)
	if s == nil {
		return err
	}
	return &osError{sentinel: s, err: err}
}
