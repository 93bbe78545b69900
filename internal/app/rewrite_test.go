package app_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/checker"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/exclude"
)

func TestRewriteKeepsOriginals(t *testing.T) {
	ctx, done := app.WithScope(context.Background())
	defer done()
	a := &app.App{}
	repo := initRepo(t, a)
	files := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(files, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.txt", "a")
	write("logs/x.log", "log one")
	write("logs/deep/y.log", "log two, longer")
	for range 2 {
		if _, err := a.RunBackup(ctx, app.Backup{Repo: repo, Paths: []string{files}, Tags: []string{"t"}}); err != nil {
			t.Fatal(err)
		}
	}
	ex := exclude.Options{Patterns: []string{"*.log"}}

	res, err := a.Rewrite(ctx, app.RewriteRequest{Repo: repo, Exclude: ex, DryRun: true})
	if err != nil || res.Examined != 2 || len(res.Rewritten) != 2 || res.Rewritten[0].New != nil {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	want := []string{files + "/logs/deep/y.log", files + "/logs/x.log"}
	if got := res.Rewritten[0].Removed; !slices.Equal(got, want) {
		t.Errorf("dry run removes %v, want %v", got, want)
	}
	if n := len(loadSnapshots(t, a, repo)); n != 2 {
		t.Fatalf("a dry run left %d snapshots", n)
	}

	var seen int
	res, err = a.Rewrite(ctx, app.RewriteRequest{Repo: repo, Exclude: ex, Rewritten: func(app.RewrittenSnapshot) { seen++ }})
	if err != nil || len(res.Rewritten) != 2 || seen != 2 {
		t.Fatalf("rewrite: %+v, %v (callback %d times)", res, err, seen)
	}
	all := loadSnapshots(t, a, repo)
	if len(all) != 4 {
		t.Fatalf("want the 2 originals and 2 rewrites, have %d snapshots", len(all))
	}
	for _, rw := range res.Rewritten {
		old, nsn := rw.Old, rw.New
		if rw.Forgotten || nsn == nil || nsn.Original == nil || *nsn.Original != old.ID || !nsn.HasTag(app.RewriteTag) || !nsn.HasTag("t") {
			t.Errorf("rewrite of %s: %+v", old.ShortID(), nsn)
			continue
		}
		if !nsn.Time.Equal(old.Time) || nsn.Hostname != old.Hostname || !slices.Equal(nsn.Paths, old.Paths) || nsn.Tree == old.Tree {
			t.Errorf("rewrite of %s changed time, host or paths, or kept the tree", old.ShortID())
		}
		if nsn.Summary == nil || nsn.Summary.Files != old.Summary.Files-2 || nsn.Summary.TotalBytes != old.Summary.TotalBytes-22 {
			t.Errorf("summary of the rewrite: %+v (original %+v), want 2 files and 22 bytes fewer", nsn.Summary, old.Summary)
		}
	}
	// The rewrites have nothing left to drop; a pattern matching nothing
	// leaves everything alone.
	res, err = a.Rewrite(ctx, app.RewriteRequest{Repo: repo, Exclude: ex, Filter: snapshot.Filter{Tags: []string{app.RewriteTag}}})
	if err != nil || res.Examined != 2 || len(res.Rewritten) != 0 {
		t.Errorf("rewriting the rewrites: %+v, %v", res, err)
	}
	res, err = a.Rewrite(ctx, app.RewriteRequest{Repo: repo, Exclude: exclude.Options{Patterns: []string{"/nowhere"}}})
	if err != nil || res.Examined != 4 || len(res.Rewritten) != 0 {
		t.Errorf("a pattern matching nothing: %+v, %v", res, err)
	}
	if _, err := a.Rewrite(ctx, app.RewriteRequest{Repo: repo}); err == nil {
		t.Error("a rewrite without patterns was accepted")
	}
	if cr, err := a.Check(ctx, app.CheckRequest{Repo: repo, Options: checker.Options{ReadData: true}}); err != nil || !cr.OK() {
		t.Errorf("check after rewrite: %+v, %v", cr, err)
	}
}

func loadSnapshots(t *testing.T, a *app.App, repo app.Repo) []*snapshot.Snapshot {
	t.Helper()
	res, err := a.Snapshots(context.Background(), app.SnapshotsRequest{Repo: repo})
	if err != nil {
		t.Fatal(err)
	}
	return res.Snapshots
}
