package operator

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/source/kube"
)

// inProcessRunner is the operator's runner for the runner tests: its
// HOME is dir, its kubeconfig names an API server nothing listens on (the
// tests fail before any request), and its own environment holds a
// password command that must never run for a tenant either.
func inProcessRunner(t *testing.T, dir, cmd string) *InProcess {
	t.Helper()
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		switch k {
		case "HOME":
			return dir
		case "KUBECONFIG":
			return kc
		case "BUNKER_PASSWORD_COMMAND":
			return cmd
		}
		return ""
	}
	return &InProcess{Core: func() (*app.App, error) { return &app.App{Getenv: getenv}, nil },
		Getenv: getenv, Kube: kube.Conn{Getenv: getenv}}
}

// TestOperatorRunnerTenantEnvRunsNothing is issue 15 finding 1 from the
// tenant's side, at the runner itself: even a Repo whose Env holds a
// password command and an empty password (had it got past the operator's
// allow-list) runs no command in a check, a backup or a restore, its
// backend sees no key file, and the use cases see no password setting.
func TestOperatorRunnerTenantEnvRunsNothing(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	cmd := "touch " + marker + "; echo pw"
	r := inProcessRunner(t, dir, cmd)
	ctx := context.Background()
	for _, repo := range []Repo{
		{URL: filepath.Join(dir, "repo"), Password: "", Env: map[string]string{"BUNKER_PASSWORD_COMMAND": cmd}},
		{URL: filepath.Join(dir, "repo"), Password: "real", Env: map[string]string{"BUNKER_PASSWORD": "", "BUNKER_PASSWORD_COMMAND": cmd}},
	} {
		_ = r.Check(ctx, repo)
		_, _ = r.Backup(ctx, BackupRequest{Repo: repo})
		_, _ = r.Restore(ctx, RestoreRequest{Repo: repo, Snapshot: "latest"})
		_, _ = r.volumeBackup(ctx, repo, app.KubernetesVolumeBackup{})
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("a BUNKER_PASSWORD_COMMAND ran (Env %v)", repo.Env)
		}
		c, err := r.core(repo)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"BUNKER_PASSWORD_COMMAND", "BUNKER_PASSWORD_FILE", "BUNKER_PASSWORD"} {
			if v := c.Getenv(k); v != "" {
				t.Errorf("use case %s = %q", k, v)
			}
		}
		if v := c.Storage.Getenv("HOME"); v != "" {
			t.Errorf("backend HOME = %q: the operator's key files are in reach", v)
		}
	}
}

// TestOperatorRunnerKeepsCause: what the operator's runner runs fails
// with the use case's own error, cause and all — an uninitialised
// repository stays repository.ErrNoRepository for the operator's status,
// not a line of text read back from an output.
func TestOperatorRunnerKeepsCause(t *testing.T) {
	dir := t.TempDir()
	r := inProcessRunner(t, dir, "")
	repo := Repo{URL: filepath.Join(dir, "never-initialised"), Password: "pw"}
	ctx := context.Background()
	_, backupErr := r.Backup(ctx, BackupRequest{Repo: repo})
	_, restoreErr := r.Restore(ctx, RestoreRequest{Repo: repo, Snapshot: "latest"})
	_, volumeErr := r.volumeBackup(ctx, repo, app.KubernetesVolumeBackup{})
	for what, err := range map[string]error{"check": r.Check(ctx, repo), "backup": backupErr, "restore": restoreErr, "volume backup": volumeErr} {
		if code := app.ExitCode(ctx, err); !errors.Is(err, repository.ErrNoRepository) || code != app.ExitNoRepository {
			t.Errorf("%s: exit %d, %v; want ErrNoRepository (exit %d) kept in the chain", what, code, err, app.ExitNoRepository)
		}
	}
}
