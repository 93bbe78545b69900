package app_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source/mongodb"
	"github.com/bunkerbackup/bunker/internal/source/mysql"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
)

// TestRestore backs files up and restores them with app.Restore: every
// file comes back bit for bit with its mode, progress reports the
// totals, includes select, and a missing snapshot is an error that keeps
// its cause.
func TestRestore(t *testing.T) {
	ctx, done := app.WithScope(context.Background())
	defer done()
	ev := &events{}
	a := &app.App{Events: ev}
	repo := newRepo(t)
	src := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string][]byte{}
	for i, name := range []string{"a.txt", "sub/b.bin", "sub/deep/c.bin", "empty"} {
		data := make([]byte, []int{11, 300 << 10, 70 << 10, 0}[i])
		for j := range data {
			data[j] = byte(rng.UintN(256))
		}
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o640); err != nil {
			t.Fatal(err)
		}
		want[name] = data
	}
	if _, err := a.RunBackup(ctx, app.Backup{Repo: repo, Paths: []string{src}}); err != nil {
		t.Fatal(err)
	}

	target := t.TempDir()
	res, err := a.Restore(ctx, app.RestoreRequest{Repo: repo, Snapshot: "latest", Path: src, Target: target, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.FilesRestored != int64(len(want)) || res.Verified != len(want) || len(res.Failed)+len(res.VerifyFailures) != 0 {
		t.Errorf("result %+v, want %d files restored and verified", res, len(want))
	}
	got := map[string][]byte{}
	err = filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(target, p)
		if fi, _ := d.Info(); fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode %v, want 0640", rel, fi.Mode())
		}
		got[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("restored %d files, want %d", len(got), len(want))
	}
	for name, data := range want {
		if !bytes.Equal(got[name], data) {
			t.Errorf("%s: %d bytes restored differ from the %d backed up", name, len(got[name]), len(data))
		}
	}
	var last app.Progress
	for _, p := range ev.progress {
		if p.Op == "restore" {
			last = p
		}
	}
	if !last.Final || last.Files != int64(len(want)) {
		t.Errorf("last restore progress %+v, want a final one with %d files", last, len(want))
	}

	// Only what the includes name.
	target2 := t.TempDir()
	if res, err = a.Restore(ctx, app.RestoreRequest{Repo: repo, Snapshot: "latest", Path: src, Target: target2, Include: []string{"*.txt"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target2, "sub", "b.bin")); res.FilesRestored != 1 || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("--include *.txt restored %d files (sub/b.bin: %v), want a.txt only", res.FilesRestored, err)
	}

	if _, err := a.Restore(ctx, app.RestoreRequest{Repo: repo, Snapshot: "ffffffff", Target: t.TempDir()}); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("restore of a missing snapshot: %v, want ErrNotFound", err)
	}
	for _, req := range []app.RestoreRequest{{Snapshot: "latest"}, {Snapshot: "latest", Target: "x", Overwrite: "sometimes"}} {
		if err := req.Validate(); err == nil || !strings.Contains(err.Error(), map[bool]string{true: "target", false: "overwrite"}[req.Target == ""]) {
			t.Errorf("Validate(%+v): %v", req, err)
		}
	}
}

// TestFindSourceBackup: "latest" is the newest backup of the source, log
// archives and other sources left out; one named by ID that is not a
// backup of the source is refused, saying why.
func TestFindSourceBackup(t *testing.T) {
	ctx, done := app.WithScope(context.Background())
	defer done()
	a := &app.App{}
	repo := newRepo(t)
	save := func(src, kind string) *snapshot.Snapshot {
		res, err := a.RunSourceBackup(ctx, app.SourceBackup{Repo: repo, Source: src, Kind: kind, Paths: []string{"/" + src},
			Save: writeFiles(map[string]string{"f": src + kind}, nil)})
		if err != nil {
			t.Fatal(err)
		}
		return res.Snapshot
	}
	want := save("mongodb", snapshot.KindFull)
	archive := save("mongodb", app.KindContinuous)
	save("postgres", snapshot.KindFull)
	f, err := a.FindSourceBackup(ctx, repo, "latest", "mongodb", snapshot.Filter{})
	if err != nil || f.Snapshot.ID != want.ID || len(f.All) != 3 {
		t.Fatalf("latest mongodb backup: %v, %v; want %s among 3", f, err, want.ShortID())
	}
	if _, err := a.FindSourceBackup(ctx, repo, archive.ID.String(), "mongodb", snapshot.Filter{}); err == nil || !strings.Contains(err.Error(), "is not a mongodb backup") {
		t.Errorf("a log archive named by ID: %v", err)
	}
	if _, err := a.FindSourceBackup(ctx, repo, "latest", "mysql", snapshot.Filter{}); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("latest of a source without backups: %v, want ErrNotFound", err)
	}
}

// TestRestoreRequestsValidate: what does not go together is refused
// before anything is opened.
func TestRestoreRequestsValidate(t *testing.T) {
	for i, err := range []error{
		(&app.PostgresRestore{PhysicalOptions: app.PostgresPhysicalOptions{PGData: "d"}}).Validate(),
		(&app.PostgresRestore{Physical: true}).Validate(),
		(&app.MySQLRestore{PhysicalOptions: mysql.PhysicalRestoreOptions{DataDir: "d"}}).Validate(),
		(&app.MongoRestore{Options: mongodb.RestoreOptions{Jobs: -1}}).Validate(),
	} {
		if err == nil {
			t.Errorf("request %d: accepted", i)
		}
	}
	asItWas := postgres.RecoveryTarget{Action: "promote"}
	if err := (&app.PostgresRestore{Physical: true, PhysicalOptions: app.PostgresPhysicalOptions{PGData: "d", Target: asItWas}}).Validate(); err != nil {
		t.Errorf("a physical restore as the backup was: %v", err)
	}
}
