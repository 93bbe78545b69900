package fusefs

import (
	"fmt"

	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
)

// Windows has no FUSE: mount says so, everything else builds.

// Server is a mounted filesystem; there is none on Windows.
type Server struct{ dir string }

// Dir is the mountpoint.
func (s *Server) Dir() string { return s.dir }

// Unmount does nothing: nothing is mounted.
func (s *Server) Unmount() error { return nil }

// Wait returns at once.
func (s *Server) Wait() {}

// CheckFUSE says that Windows has no FUSE.
func CheckFUSE() error { return fmt.Errorf("%w on Windows", ErrNoFUSE) }

// Mount fails: Windows has no FUSE.
func Mount(repo Repo, snaps []*snapshot.Snapshot, dir string, opts Options) (*Server, error) {
	return nil, CheckFUSE()
}
