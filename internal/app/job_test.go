package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/plan"
)

// TestRunJob runs a plan's files job in-process, and its drills: before and after hooks
// with the run's variables and nothing else of the environment, the
// backup, a copy with its own retention, retention in the main
// repository; then a failing run: on_failure hooks get the cause in
// BUNKER_ERROR and the error keeps it.
func TestRunJob(t *testing.T) {
	ctx, done := app.WithScope(context.Background())
	defer done()
	env := map[string]string{"PATH": os.Getenv("PATH"), "BUNKER_PASSWORD": "pw", "SECRET_TOKEN": "hunter2"}
	a := &app.App{Getenv: func(k string) string { return env[k] }}
	main, second := initRepo(t, a), initRepo(t, a)
	files := t.TempDir()
	if err := os.WriteFile(filepath.Join(files, "f.txt"), []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	marks := t.TempDir()
	src := fmt.Sprintf(`
repositories:
  - {name: main, location: %q, password: env:BUNKER_PASSWORD}
  - {name: second, location: %q, password: env:BUNKER_PASSWORD}
jobs:
  - name: home
    source: {type: files, paths: [%q]}
    repository: main
    schedule: every 1h
    copies:
      - {repository: second, retention: {keep_last: 1}}
    retention: {keep_last: 2}
    hooks:
      before: [{command: 'echo "before $BUNKER_JOB token=$SECRET_TOKEN" > %s/before'}]
      after: [{command: 'echo "after $BUNKER_RESULT $BUNKER_SNAPSHOT" > %s/after'}]
      on_failure: [{command: 'echo "failed: $BUNKER_ERROR" > %s/failed'}]
drills:
  - name: weekly
    job: home
    schedule: "@weekly"
    validate:
      checks:
        - {command: 'find . -name f.txt -exec cat {} +', expect: content}
  - name: wrong
    job: home
    schedule: "@weekly"
    validate:
      checks:
        - {command: 'find . -name f.txt -exec cat {} +', expect: other}
`, main.Location, second.Location, files, marks, marks, marks)
	p, err := plan.Parse("plan.yaml", []byte(src), a.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	j := p.Job("home")
	var log bytes.Buffer
	var res *app.JobResult
	for range 3 {
		if res, err = a.RunJob(ctx, app.JobRequest{Plan: p, Job: j, Log: &log, Backup: filesBackup}); err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
	}
	if res.Snapshot == "" || res.Copies["second"] != "ok" || res.CopyFailed() != "" || res.Attempts != 1 {
		t.Fatalf("result %+v\n%s", res, log.String())
	}
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(marks, name))
		return strings.TrimSpace(string(b))
	}
	if got := read("before"); got != "before home token=" {
		t.Errorf("before hook saw %q: the environment leaked or BUNKER_JOB is missing", got)
	}
	if got := read("after"); got != "after success "+res.Snapshot {
		t.Errorf("after hook saw %q", got)
	}
	for _, c := range []struct {
		repo app.Repo
		want int
	}{{main, 2}, {second, 1}} {
		repo, want := c.repo, c.want
		r, err := a.Open(ctx, repo)
		if err != nil {
			t.Fatal(err)
		}
		all, _, err := snapshot.LoadAll(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != want {
			t.Errorf("%s holds %d snapshots after retention, want %d", repo.Location, len(all), want)
		}
	}

	// A drill restores the newest snapshot into a sandbox and runs its
	// check there; a check that prints something else fails it.
	dr, err := a.Drill(ctx, app.DrillRequest{Plan: p, Drill: p.Drills[0], Log: &log})
	if err != nil || dr.Snapshot != res.Snapshot {
		t.Fatalf("drill: %v, %+v\n%s", err, dr, log.String())
	}
	if _, err := a.Drill(ctx, app.DrillRequest{Plan: p, Drill: p.Drills[1], Log: io.Discard}); err == nil || !strings.Contains(err.Error(), `want "other"`) {
		t.Errorf("a drill whose check fails: %v", err)
	}

	// A missing source: the run fails with its cause, on_failure says it.
	j.Source.Paths = []string{filepath.Join(files, "gone")}
	res, err = a.RunJob(ctx, app.JobRequest{Plan: p, Job: j, Log: io.Discard, Backup: filesBackup})
	if err == nil || !strings.Contains(err.Error(), "gone") || !strings.Contains(res.Error, "gone") {
		t.Fatalf("a run of a missing path: %v, result %+v", err, res)
	}
	if got := read("failed"); !strings.Contains(got, "backup into main failed") || !strings.Contains(got, "gone") {
		t.Errorf("on_failure hook saw %q", got)
	}
}

// filesBackup is the files case of a front end's app.JobBackup.
func filesBackup(ctx context.Context, uc *app.App, j *plan.Job, repo app.Repo, tags []string, log io.Writer) (*app.BackupResult, error) {
	return uc.RunBackup(ctx, app.Backup{Repo: repo, Tags: tags, Paths: j.Source.Paths})
}
