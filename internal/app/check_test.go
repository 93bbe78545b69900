package app_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/checker"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
)

// recorder keeps what a use case says.
type recorder struct {
	mu       sync.Mutex
	warnings []string
	progress []app.Progress
}

func (r *recorder) Warn(msg string) { r.mu.Lock(); r.warnings = append(r.warnings, msg); r.mu.Unlock() }
func (r *recorder) Info(string)     {}
func (r *recorder) Progress(p app.Progress) {
	r.mu.Lock()
	r.progress = append(r.progress, p)
	r.mu.Unlock()
}

// backupFiles backs up a directory of a few files into repo, tagged
// tags, and returns the directory.
func backupFiles(t *testing.T, ctx context.Context, a *app.App, repo app.Repo, tags ...string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"a.txt": "alpha\n", "b.txt": "bravo\n", "sub/c.txt": "charlie\n"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.RunBackup(ctx, app.Backup{Repo: repo, Paths: []string{dir}, Tags: tags}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCheck(t *testing.T) {
	ctx, done := app.WithScope(context.Background())
	defer done()
	rec := &recorder{}
	a := &app.App{Events: rec}
	repo := initRepo(t, a)
	backupFiles(t, ctx, a, repo)

	res, err := a.Check(ctx, app.CheckRequest{Repo: repo})
	if err != nil || !res.OK() || res.Snapshots != 1 || res.Packs == 0 || res.Blobs == 0 || res.PacksRead != 0 {
		t.Fatalf("check of a sound repository: %+v, %v", res, err)
	}
	res, err = a.Check(ctx, app.CheckRequest{Repo: repo, Options: checker.Options{ReadData: true}})
	if err != nil || !res.OK() || res.PacksRead != res.Packs || res.BytesRead == 0 {
		t.Fatalf("check --read-data of a sound repository: %+v, %v", res, err)
	}
	rec.mu.Lock()
	n := len(rec.progress)
	last := app.Progress{}
	if n > 0 {
		last = rec.progress[n-1]
	}
	rec.mu.Unlock()
	if n == 0 || !last.Final || last.Op != "check" {
		t.Errorf("progress: %d reports, the last %+v; want a final check report", n, last)
	}

	_, err = a.Check(ctx, app.CheckRequest{Repo: app.Repo{Location: repo.Location, Password: "wrong"}})
	if !errors.Is(err, repository.ErrWrongPassword) || app.ExitCode(ctx, err) != app.ExitWrongPassword {
		t.Errorf("check with a wrong password: %v, want ErrWrongPassword", err)
	}
	_, err = a.Check(ctx, app.CheckRequest{Repo: app.Repo{Location: filepath.Join(t.TempDir(), "absent"), Password: "pw"}})
	if app.ExitCode(ctx, err) != app.ExitNoRepository {
		t.Errorf("check of a missing repository: %v (exit %d), want exit %d", err, app.ExitCode(ctx, err), app.ExitNoRepository)
	}

	// Flip a byte in the middle of every pack: reading the data finds
	// them damaged, and the result comes with the error.
	packs := 0
	err = filepath.WalkDir(filepath.Join(repo.Location, "packs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b[len(b)/2] ^= 0xff
		packs++
		return os.WriteFile(p, b, 0o644)
	})
	if err != nil || packs == 0 {
		t.Fatalf("damaging packs: %v (%d packs)", err, packs)
	}
	res, err = a.Check(ctx, app.CheckRequest{Repo: repo, Options: checker.Options{ReadData: true}})
	if err == nil || !strings.Contains(err.Error(), "repository has errors") || res == nil || res.OK() || len(res.DamagedPacks) == 0 {
		t.Fatalf("check --read-data of damaged packs: %+v, %v; want the result and an error", res, err)
	}
	if app.ExitCode(ctx, err) != app.ExitError {
		t.Errorf("exit code %d, want %d", app.ExitCode(ctx, err), app.ExitError)
	}
}
