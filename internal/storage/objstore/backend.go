package objstore

import (
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/bunkerbackup/bunker/internal/storage"
)

// The helpers below implement parts of the storage.Backend contract the
// same way for every backend that needs them.

// ListConfig lists the config, the one object of its type, with a Stat:
// fn gets its FileInfo if it exists, and a missing config is an empty
// listing. For backends whose store lists the config no better than it
// stats it; errors of stat are returned as they are.
func ListConfig(ctx context.Context, stat func(context.Context, storage.Handle) (storage.FileInfo, error), fn func(storage.FileInfo) error) error {
	fi, err := stat(ctx, storage.Handle{Type: storage.ConfigFile})
	if errors.Is(err, storage.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return fn(fi)
}

// LoadAtEnd finishes a Load whose range the store refused as not
// satisfiable (the offset is at or past the end of the object), given the
// size of the object: reading nothing from the very end is fine, as for a
// file, and calls fn with an empty reader, returning fn's error; any other
// range is past the end, a permanent error.
func LoadAtEnd(size int64, length int, offset int64, fn func(io.Reader) error) error {
	if length == 0 && offset == size {
		return fn(bytes.NewReader(nil))
	}
	_, err := storage.RangeLength(size, length, offset)
	return err
}
