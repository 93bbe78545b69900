package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/operator"
)

// TestOperatorRunnerTenantEnvRunsNothing is issue 15 finding 1 from the
// tenant's side, at the runner itself: even a Repo whose Env holds a
// password command and an empty password (had it got past the operator's
// allow-list) runs no command, and its backend sees no key file.
func TestOperatorRunnerTenantEnvRunsNothing(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	parent := &App{Getenv: func(k string) string {
		if k == "HOME" {
			return dir
		}
		return ""
	}}
	r := &cliRunner{parent: parent}
	cmd := "touch " + marker + "; echo pw"
	for _, repo := range []operator.Repo{
		{URL: filepath.Join(dir, "repo"), Password: "", Env: map[string]string{"BUNKER_PASSWORD_COMMAND": cmd}},
		{URL: filepath.Join(dir, "repo"), Password: "real", Env: map[string]string{"BUNKER_PASSWORD": "", "BUNKER_PASSWORD_COMMAND": cmd}},
	} {
		_ = r.Check(context.Background(), repo)
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("the tenant's BUNKER_PASSWORD_COMMAND ran (Env %v)", repo.Env)
		}
		child, _, _ := r.child(repo)
		for _, k := range []string{"BUNKER_PASSWORD_COMMAND", "BUNKER_PASSWORD_FILE"} {
			if v := child.Getenv(k); v != "" {
				t.Errorf("child %s = %q", k, v)
			}
		}
		if v := child.BackendGetenv("HOME"); v != "" {
			t.Errorf("backend HOME = %q: the operator's key files are in reach", v)
		}
	}
}

// TestOperatorRunnerKeepsCause: a command the operator's runner runs
// in-process fails with its own error, cause and all — an uninitialised
// repository stays repository.ErrNoRepository for the operator's status,
// not a line of text read back from the output.
func TestOperatorRunnerKeepsCause(t *testing.T) {
	dir := t.TempDir()
	r := &cliRunner{parent: &App{Getenv: func(string) string { return "" }}}
	repo := operator.Repo{URL: filepath.Join(dir, "never-initialised"), Password: "pw"}
	_, code, err := r.run(context.Background(), repo, "cat", "config")
	if !errors.Is(err, repository.ErrNoRepository) || code != ExitNoRepository {
		t.Fatalf("run: exit %d, %v; want ErrNoRepository (exit %d) kept in the chain", code, err, ExitNoRepository)
	}
}
