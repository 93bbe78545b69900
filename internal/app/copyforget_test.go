package app_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/maintenance"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
)

// initRepo creates a local repository with a cheap key derivation.
func initRepo(t *testing.T, a *app.App) app.Repo {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	be, err := a.OpenBackend(ctx, dir, true, false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.Init(ctx, be, "pw", repository.Options{KDF: crypto.WeakKDF()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	return app.Repo{Location: dir, Password: "pw"}
}

func TestCopyThenForget(t *testing.T) {
	ctx, done := app.WithScope(context.Background())
	defer done()
	a := &app.App{}
	src, dst := initRepo(t, a), initRepo(t, a)
	files := t.TempDir()
	for i := range 3 {
		if err := os.WriteFile(filepath.Join(files, "f.txt"), []byte(fmt.Sprint("round ", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := a.RunBackup(ctx, app.Backup{Repo: src, Paths: []string{files}, Tags: []string{"job=x"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.RunBackup(ctx, app.Backup{Repo: src, Paths: []string{files}, Tags: []string{"other"}}); err != nil {
		t.Fatal(err)
	}
	job := snapshot.Filter{Tags: []string{"job=x"}}

	var copied int
	res, err := a.Copy(ctx, app.CopyRequest{From: src, To: dst, Filter: job, Copied: func(from, to *snapshot.Snapshot) { copied++ }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != 3 || res.Skipped != 0 || copied != 3 || res.BlobsAdded == 0 || res.BytesAdded == 0 {
		t.Errorf("first copy: %+v (callback %d times), want 3 snapshots copied with their data", res, copied)
	}
	if res, err = a.Copy(ctx, app.CopyRequest{From: src, To: dst, Filter: job}); err != nil {
		t.Fatal(err)
	}
	if res.Copied != 0 || res.Skipped != 3 || res.BlobsAdded != 0 {
		t.Errorf("second copy: %+v, want the 3 snapshots skipped and nothing added", res)
	}
	_, err = a.Copy(ctx, app.CopyRequest{From: src, To: app.Repo{Location: filepath.Join(t.TempDir(), "absent"), Password: "pw"}})
	if err == nil || !strings.HasPrefix(err.Error(), "target: ") || !errors.Is(err, repository.ErrNoRepository) {
		t.Errorf("copy to a missing repository: %v, want a target error wrapping ErrNoRepository", err)
	}

	// A policy that keeps nothing of a group is refused, decisions and all.
	fr, err := a.Forget(ctx, app.ForgetRequest{Repo: dst, Policy: snapshot.Policy{Tags: []string{"typo"}}, Filter: job, GroupBy: "tags"})
	if err == nil || !strings.Contains(err.Error(), "refusing to forget") || fr == nil || len(fr.Groups) != 1 || fr.Removed != 0 {
		t.Fatalf("forget keeping nothing: %+v, %v; want a refusal with the group's decisions", fr, err)
	}
	fr, err = a.Forget(ctx, app.ForgetRequest{Repo: dst, Policy: snapshot.Policy{Last: 1}, Filter: job, GroupBy: "tags", DryRun: true})
	if err != nil || len(fr.Remove) != 2 || fr.Removed != 0 {
		t.Fatalf("dry run: %+v, %v; want 2 to remove, none removed", fr, err)
	}
	fr, err = a.Forget(ctx, app.ForgetRequest{Repo: dst, Policy: snapshot.Policy{Last: 1}, Filter: job, GroupBy: "tags",
		Prune: &maintenance.Options{MaxUnused: 0.05}})
	if err != nil || fr.Removed != 2 || fr.Prune == nil || fr.Prune.Snapshots != 1 {
		t.Fatalf("forget --prune: %+v, %v; want 2 removed, then a prune that sees 1 snapshot", fr, err)
	}
	if pr, err := a.Prune(ctx, app.PruneRequest{Repo: dst, Options: maintenance.Options{DryRun: true}}); err != nil || pr.Snapshots != 1 {
		t.Errorf("prune dry run: %+v, %v", pr, err)
	}
}
