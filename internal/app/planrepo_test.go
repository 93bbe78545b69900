package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/limit"
)

// TestPlanRepoLimits: a plan repository's limits reach the backend it
// opens, the stricter of them and the App's winning.
func TestPlanRepoLimits(t *testing.T) {
	ctx, done := app.WithScope(context.Background())
	defer done()
	env := map[string]string{"BUNKER_PASSWORD": "pw"}
	a := &app.App{Getenv: func(k string) string { return env[k] }}
	repo := initRepo(t, a)
	src := fmt.Sprintf("repositories:\n  - {name: r, location: %q, password: env:BUNKER_PASSWORD, limit_upload: 5M, limit_download: 800}\n", repo.Location)
	p, err := plan.Parse("p.yaml", []byte(src), a.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.PlanRepo(ctx, p, "r")
	if err != nil {
		t.Fatal(err)
	}
	if got.UploadBytes != 5<<20 || got.DownloadBytes != 800<<10 || got.Password != "pw" {
		t.Fatalf("PlanRepo: %+v", got)
	}
	a.Storage.UploadBytes = 1 << 20 // --limit-upload 1M: stricter than the plan's
	r, err := a.Open(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	lb, ok := storage.Find[*limit.Backend](r.Backend())
	if !ok {
		t.Fatal("the local repository was opened without its limits")
	}
	if l := lb.Limits(); l.UploadBytes != 1<<20 || l.DownloadBytes != 800<<10 {
		t.Errorf("limits reaching the store: %+v", l)
	}
	if _, err := a.PlanRepo(ctx, p, "nope"); err == nil || !strings.Contains(err.Error(), `no repository "nope"`) {
		t.Errorf("an unknown repository: %v", err)
	}
	env["BUNKER_PASSWORD"] = ""
	if _, err := a.PlanRepo(ctx, p, "r"); err == nil || !strings.Contains(err.Error(), "repository r password: environment variable BUNKER_PASSWORD is not set") {
		t.Errorf("a password that is not set: %v", err)
	}
}

// TestPlanRepoEnv: a plan repository's env reaches its storage backend
// on top of bunker's environment — here the S3 backend, whose requests
// are signed with the plan's access key (a secret reference) for the
// plan's region, not with bunker's own.
func TestPlanRepoEnv(t *testing.T) {
	ctx, done := app.WithScope(context.Background())
	defer done()
	var mu sync.Mutex
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.WriteHeader(http.StatusForbidden)
	}))
	defer srv.Close()
	keyFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(keyFile, []byte("plan-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"BUNKER_PASSWORD": "pw", "AWS_ACCESS_KEY_ID": "BUNKERS-OWN", "AWS_SECRET_ACCESS_KEY": "bunkers-own", "PLAN_KEY_ID": "PLANKEY"}
	a := &app.App{Getenv: func(k string) string { return env[k] }}
	src := fmt.Sprintf(`repositories:
  - name: s3
    location: s3:%s/bucket
    password: env:BUNKER_PASSWORD
    env:
      AWS_ACCESS_KEY_ID: env:PLAN_KEY_ID
      AWS_SECRET_ACCESS_KEY: file:%s
      AWS_REGION: eu-test-1
`, srv.URL, keyFile)
	p, err := plan.Parse("p.yaml", []byte(src), a.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := a.PlanRepo(ctx, p, "s3")
	if err != nil {
		t.Fatal(err)
	}
	if repo.Env["AWS_SECRET_ACCESS_KEY"] != "plan-secret" || repo.Env["AWS_ACCESS_KEY_ID"] != "PLANKEY" || repo.Env["AWS_REGION"] != "eu-test-1" {
		t.Fatalf("env resolved to %v", repo.Env)
	}
	if _, err := a.Open(ctx, repo); err == nil {
		t.Fatal("a store that answers 403 opened")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(auth) == 0 {
		t.Fatal("the backend sent no request")
	}
	for _, h := range auth {
		if !strings.Contains(h, "Credential=PLANKEY/") || !strings.Contains(h, "/eu-test-1/s3/aws4_request") {
			t.Errorf("request signed as %q, want the plan's key and region", h)
		}
	}
	// The App's own environment is untouched: another repository
	// without env sees bunker's.
	if env["AWS_ACCESS_KEY_ID"] != "BUNKERS-OWN" {
		t.Error("the plan's env leaked into the App's environment")
	}
	env["PLAN_KEY_ID"] = ""
	if _, err := a.PlanRepo(ctx, p, "s3"); err == nil || !strings.Contains(err.Error(), "repository s3 env AWS_ACCESS_KEY_ID: environment variable PLAN_KEY_ID is not set") {
		t.Errorf("an env reference that is not set: %v", err)
	}
}

// TestPlanWithEveryRepositoryKey runs a plan that uses every
// per-repository key on local repositories: the repositories' hooks run
// around the job (backup, copy), the check and the prune with their
// variables, in order; retention in a repository with a prune schedule
// forgets only, and the scheduled prune frees what it left; a failing
// before hook fails the run and runs on_failure.
func TestPlanWithEveryRepositoryKey(t *testing.T) {
	ctx, done := app.WithScope(context.Background())
	defer done()
	env := map[string]string{"PATH": os.Getenv("PATH"), "BUNKER_PASSWORD": "pw", "REMOTE_TOKEN": "t0ken"}
	a := &app.App{Getenv: func(k string) string { return env[k] }}
	main, second := initRepo(t, a), initRepo(t, a)
	files := t.TempDir()
	marks := filepath.Join(t.TempDir(), "hooks.log")
	fail := filepath.Join(t.TempDir(), "fail")
	hook := func(stage string) string {
		return fmt.Sprintf(`{command: 'echo "%s|$BUNKER_REPOSITORY|$BUNKER_ACTION|$BUNKER_JOB|$BUNKER_RESULT" >> %s'}`, stage, marks)
	}
	src := fmt.Sprintf(`
repositories:
  - name: main
    location: %q
    password: env:BUNKER_PASSWORD
    env: {BUNKER_S3_STORAGE_CLASS: STANDARD_IA, REMOTE_TOKEN: env:REMOTE_TOKEN}
    limit_upload: 50M
    limit_download: 50M
    hooks:
      before: [%s, {command: 'test ! -e %s'}]
      after: [%s]
      on_failure: [{command: 'echo "on_failure main $BUNKER_ACTION $BUNKER_ERROR" >> %s'}]
    check: {schedule: "@weekly", read_data_subset: 100%%}
    prune: {schedule: "@daily", max_unused: 0%%}
  - name: second
    location: %q
    password: env:BUNKER_PASSWORD
    hooks: {before: [%s], after: [%s]}
jobs:
  - name: home
    source: {type: files, paths: [%q]}
    repository: main
    schedule: every 1h
    copies: [{repository: second, retention: {keep_last: 1}}]
    retention: {keep_last: 1, prune: true}
`, main.Location, hook("before"), fail, hook("after"), marks, second.Location, hook("before"), hook("after"), files)
	p, err := plan.Parse("plan.yaml", []byte(src), a.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	for i := range 2 {
		// Each backup holds data of its own: the forgotten one leaves
		// packs behind for the prune.
		if err := os.WriteFile(filepath.Join(files, "f.txt"), bytes.Repeat([]byte{byte('a' + i)}, 64<<10), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := a.RunJob(ctx, app.JobRequest{Plan: p, Job: p.Job("home"), Log: &log, Backup: filesBackup})
		if err != nil || res.Copies["second"] != "ok" {
			t.Fatalf("run %d: %v %+v\n%s", i, err, res, log.String())
		}
	}
	if !strings.Contains(log.String(), "retention in main: keep 1 latest (prune runs on the repository's schedule, @daily)") || strings.Contains(log.String(), "prune: deleted") {
		t.Errorf("retention in a repository with a prune schedule did not forget only:\n%s", log.String())
	}
	log.Reset()
	if _, err := a.RunRepoCheck(ctx, app.RepoTaskRequest{Plan: p, Repository: "main", Log: &log}); err != nil {
		t.Fatalf("check: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "check of main: structure and data (100%)") {
		t.Errorf("check log:\n%s", log.String())
	}
	pr, err := a.RunRepoPrune(ctx, app.RepoTaskRequest{Plan: p, Repository: "main", Log: &log})
	if err != nil || pr.PacksDeleted+pr.PacksRepacked == 0 {
		t.Fatalf("prune: %v %+v\n%s", err, pr, log.String())
	}
	if !strings.Contains(log.String(), "prune of main (unused space tolerated: 0%)") {
		t.Errorf("prune log:\n%s", log.String())
	}
	b, _ := os.ReadFile(marks)
	want := strings.Repeat(`before|main|backup|home|
before|second|copy|home|
after|second|copy|home|success
after|main|backup|home|success
`, 2) + `before|main|check||
after|main|check||success
before|main|prune||
after|main|prune||success
`
	if string(b) != want {
		t.Errorf("hooks ran:\n%s\nwant:\n%s", b, want)
	}

	// A damaged repository: the check fails naming the problem, and the
	// repository's on_failure hears it.
	packs, _ := filepath.Glob(filepath.Join(main.Location, string(storage.PackFile), "*", "*"))
	if len(packs) == 0 {
		t.Fatal("no pack files in the main repository")
	}
	for _, f := range packs {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	log.Reset()
	if _, err := a.RunRepoCheck(ctx, app.RepoTaskRequest{Plan: p, Repository: "main", Log: &log}); err == nil ||
		!strings.Contains(err.Error(), "check of main: repository has errors") || !strings.Contains(log.String(), "problem: ") {
		t.Errorf("check of a repository without its packs: %v\n%s", err, log.String())
	}
	b, _ = os.ReadFile(marks)
	if !strings.Contains(string(b), "on_failure main check check of main: repository has errors") {
		t.Errorf("on_failure after a failed check:\n%s", b)
	}

	// A before hook of the repository fails: the run fails with it,
	// the repository's on_failure hears it, nothing is backed up.
	if err := os.WriteFile(fail, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(marks)
	res, err := a.RunJob(ctx, app.JobRequest{Plan: p, Job: p.Job("home"), Log: &log, Backup: filesBackup})
	if err == nil || !strings.Contains(err.Error(), "repository main before hook") || res.Snapshot != "" {
		t.Fatalf("a failing repository before hook: %v %+v", err, res)
	}
	if _, err := a.RunRepoCheck(ctx, app.RepoTaskRequest{Plan: p, Repository: "main", Log: &log}); err == nil {
		t.Fatal("a check whose before hook fails succeeded")
	}
	b, _ = os.ReadFile(marks)
	if got := string(b); !strings.HasPrefix(got, "before|main|backup|home|\non_failure main backup repository main before hook:") ||
		!strings.Contains(got, "before|main|check||\non_failure main check repository main before hook:") {
		t.Errorf("hooks ran:\n%s", got)
	}
}
