package app_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/maintenance"
)

// TestPruneGivesTheMemoryLimitBack: a prune sets soft memory limits for
// its phases; the limit the process had before (a daemon's, or the next
// job's) is in force again once it returns. (The process-wide limit is
// why this test does not run in parallel.)
func TestPruneGivesTheMemoryLimitBack(t *testing.T) {
	ctx, done := app.WithScope(context.Background())
	defer done()
	a := &app.App{MemoryBudget: true, Getenv: func(string) string { return "" }}
	repo := initRepo(t, a)
	files := t.TempDir()
	if err := os.WriteFile(filepath.Join(files, "f.txt"), []byte("some data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RunBackup(ctx, app.Backup{Repo: repo, Paths: []string{files}}); err != nil {
		t.Fatal(err)
	}
	const before = 3 << 30
	prev := debug.SetMemoryLimit(before)
	defer debug.SetMemoryLimit(prev)
	if _, err := a.Prune(ctx, app.PruneRequest{Repo: repo, Options: maintenance.Options{}}); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("memory limit after prune: %d, want the %d it had before", got, before)
	}
}
