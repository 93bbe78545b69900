package location

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/limit"
)

// TestLocalHonoursLimits: --limit-upload and --limit-download hold for a
// local directory too (it may be an NFS mount); without limits the local
// backend is not wrapped.
func TestLocalHonoursLimits(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	be, err := Open(ctx, dir, Options{Create: true, Limits: limit.Options{UploadBytes: 1 << 20, DownloadBytes: 2 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	if _, ok := storage.Find[*limit.Backend](be); !ok {
		t.Errorf("a local repository with limits is opened without them: %T", be)
	}
	plain, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, ok := storage.Find[*limit.Backend](plain); ok {
		t.Errorf("a local repository without limits is wrapped: %T", plain)
	}
}
