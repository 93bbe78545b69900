package fusefs

import (
	"context"
	"errors"
	"log/slog"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

// Windows has no FUSE: mount says so, everything else builds.

// Repo is what the filesystem reads (see fusefs.go).
type Repo interface {
	LoadBlob(ctx context.Context, t pack.BlobType, id tree.ID, buf []byte) ([]byte, error)
	BlobLength(id tree.ID, t pack.BlobType) (int, bool)
}

// Options configure a mount (see fusefs.go).
type Options struct {
	AllowOther bool
	CacheBytes int
	Logger     *slog.Logger
}

// ErrNoFUSE means FUSE cannot be used on this machine.
var ErrNoFUSE = errors.New("FUSE is not available on Windows")

// Server is a mounted filesystem; there is none on Windows.
type Server struct{ dir string }

// Dir is the mountpoint.
func (s *Server) Dir() string { return s.dir }

// Unmount does nothing: nothing is mounted.
func (s *Server) Unmount() error { return nil }

// Wait returns at once.
func (s *Server) Wait() {}

// CheckMountpoint accepts any directory: CheckFUSE refuses first.
func CheckMountpoint(dir string) error { return nil }

// CheckFUSE says that Windows has no FUSE.
func CheckFUSE() error { return ErrNoFUSE }

// Mount fails: Windows has no FUSE.
func Mount(repo Repo, snaps []*snapshot.Snapshot, dir string, opts Options) (*Server, error) {
	return nil, ErrNoFUSE
}
