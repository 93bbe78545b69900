package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

// What every platform shares; the filesystem itself is in fusefs.go
// (not Windows, which has no FUSE: fusefs_windows.go).

// Repo is what the filesystem reads: blobs, and the plaintext lengths of
// data blobs from the index (a file's blob offsets are computed from
// them, so a read loads only the blobs it covers).
// *repository.Repository with a loaded index implements it.
type Repo interface {
	LoadBlob(ctx context.Context, t pack.BlobType, id tree.ID, buf []byte) ([]byte, error)
	BlobLength(id tree.ID, t pack.BlobType) (int, bool)
}

// Options configure a mount.
type Options struct {
	// AllowOther lets other users than the one mounting see the files
	// (fuse's allow_other; for non-root users it needs user_allow_other
	// in /etc/fuse.conf). Permissions are checked by the kernel against
	// the modes and owners in the snapshots (default_permissions).
	AllowOther bool
	// CacheBytes bounds the decoded data blobs and trees kept in memory.
	// Default 64 MiB.
	CacheBytes int
	// Logger gets the errors the kernel only sees as EIO (a blob that
	// cannot be loaded). Default slog.Default().
	Logger *slog.Logger
}

// Validate says what is wrong in o.
func (o *Options) Validate() error {
	if o.CacheBytes < 0 {
		return fmt.Errorf("cache size %d is negative", o.CacheBytes)
	}
	return nil
}

// defaultCacheBytes is the default bound of the blob and tree caches.
const defaultCacheBytes = 64 << 20

// ErrNoFUSE means FUSE cannot be used on this machine: no /dev/fuse or
// no fusermount3.
var ErrNoFUSE = errors.New("FUSE is not available")

// CheckMountpoint returns an error naming dir when it cannot be a
// mountpoint: it is missing, not a directory, or not empty.
func CheckMountpoint(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("mountpoint %s does not exist (create an empty directory)", dir)
	}
	if err != nil {
		return fmt.Errorf("mountpoint: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("mountpoint %s is not a directory", dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("mountpoint: %w", err)
	}
	names, err := f.Readdirnames(1)
	_ = f.Close()
	if len(names) > 0 {
		return fmt.Errorf("mountpoint %s is not empty (it holds %s)", dir, names[0])
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("mountpoint: %w", err)
	}
	return nil
}
