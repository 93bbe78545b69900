package storagetest

import (
	"context"
	"io"
	"sync/atomic"

	"github.com/bunkerbackup/bunker/internal/storage"
)

// CountLoads is a backend that counts the reads (Load calls) of objects
// of one type, for tests that bound how often something is read.
type CountLoads struct {
	storage.Backend
	Type storage.FileType
	n    atomic.Int64
}

// Load counts a read of an object of c.Type and reads it.
func (c *CountLoads) Load(ctx context.Context, h storage.Handle, n int, off int64, fn func(io.Reader) error) error {
	if h.Type == c.Type {
		c.n.Add(1)
	}
	return c.Backend.Load(ctx, h, n, off, fn)
}

// Count is how many reads of objects of c.Type began so far.
func (c *CountLoads) Count() int64 { return c.n.Load() }
