package app_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

// TestQueries reads two snapshots back with Snapshots, List, Find, Diff
// and Stats.
func TestQueries(t *testing.T) {
	ctx, done := app.WithScope(context.Background())
	defer done()
	a := &app.App{}
	repo := initRepo(t, a)
	dir := backupFiles(t, ctx, a, repo, "first")
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "b.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "d.txt"), []byte("delta\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RunBackup(ctx, app.Backup{Repo: repo, Paths: []string{dir}, Tags: []string{"second"}}); err != nil {
		t.Fatal(err)
	}

	sr, err := a.Snapshots(ctx, app.SnapshotsRequest{Repo: repo, GroupBy: "tags"})
	if err != nil || len(sr.Snapshots) != 2 || len(sr.Groups) != 2 {
		t.Fatalf("snapshots by tags: %+v, %v", sr, err)
	}
	first, second := sr.Snapshots[0], sr.Snapshots[1]
	if sr, err = a.Snapshots(ctx, app.SnapshotsRequest{Repo: repo, Latest: 1}); err != nil || len(sr.Snapshots) != 1 || sr.Snapshots[0].ID != second.ID {
		t.Errorf("snapshots --latest 1: %+v, %v", sr, err)
	}
	if _, err = a.Snapshots(ctx, app.SnapshotsRequest{Repo: repo, Snapshots: []string{"ffffffff"}}); err == nil {
		t.Error("snapshots naming a missing one: no error")
	}

	var listed []string
	var found *snapshot.Snapshot
	lr, err := a.List(ctx, app.ListRequest{Repo: repo, Snapshot: "latest", Path: dir + "/sub", Recursive: true,
		Found: func(sn *snapshot.Snapshot) { found = sn }, Node: func(p string, n *tree.Node) { listed = append(listed, p) }})
	want := []string{dir + "/sub/c.txt", dir + "/sub/d.txt"}
	if err != nil || found == nil || found.ID != second.ID || lr.Path != dir+"/sub" || !slices.Equal(listed, want) {
		t.Errorf("ls latest %s/sub: %+v %v, listed %v; want %v", dir, lr, err, listed, want)
	}

	fr, err := a.Find(ctx, app.FindRequest{Repo: repo, Patterns: []string{"*.TXT"}, IgnoreCase: true, Snapshots: []string{first.ID.String()}})
	if err != nil || fr.Matches != 3 {
		t.Errorf("find -i *.TXT in the first snapshot: %+v, %v; want 3 matches", fr, err)
	}
	if _, err = a.Find(ctx, app.FindRequest{Repo: repo, Patterns: []string{"["}}); err == nil || !strings.Contains(err.Error(), "bad pattern") {
		t.Errorf("find with a malformed pattern: %v", err)
	}

	var changes []string
	dr, err := a.Diff(ctx, app.DiffRequest{Repo: repo, From: first.ID.String(), To: "latest", Change: func(mark, p string) {
		changes = append(changes, mark+" "+strings.TrimPrefix(p, dir))
	}})
	wantChanges := []string{"M /a.txt", "- /b.txt", "+ /sub/d.txt"}
	if err != nil || dr.Added != 1 || dr.Removed != 1 || dr.Changed != 1 || !slices.Equal(changes, wantChanges) {
		t.Errorf("diff: %+v %v, changes %q; want %q", dr, err, changes, wantChanges)
	}

	st, err := a.Stats(ctx, app.StatsRequest{Repo: repo, Mode: app.StatsRestoreSize})
	if err != nil || st.Snapshots != 2 || st.Files != 6 || st.Packs == 0 || st.PackBytes == 0 {
		t.Errorf("stats restore-size: %+v, %v", st, err)
	}
	if st, err = a.Stats(ctx, app.StatsRequest{Repo: repo, Mode: app.StatsRawData, Snapshots: []string{"latest"}}); err != nil || st.Blobs == 0 || st.StoredSize == 0 {
		t.Errorf("stats raw-data: %+v, %v", st, err)
	}
}
