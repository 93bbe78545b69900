//go:build !linux

package volume

import (
	"context"
	"errors"

	"github.com/bunkerbackup/bunker/internal/source"
)

var errNotLinux = errors.New("volume file backup and restore need Linux")

// Save is not supported here.
func Save(ctx context.Context, sink source.Sink, prefix, dir string, o FileOptions) (Stats, error) {
	return Stats{}, errNotLinux
}

// Load is not supported here.
func Load(ctx context.Context, tree source.Tree, prefix, dir string, o FileOptions) (Stats, error) {
	return Stats{}, errNotLinux
}
