package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/testutil"
)

// bunkerSecretsInEnv puts bunker's secrets into this process's
// environment, where `bunker` run from an operator's shell or a unit file
// finds them (the in-process harness reads its own map; the programs
// bunker starts see the process environment), with a user variable a
// dump tool legitimately reads. It returns the secret values.
func bunkerSecretsInEnv(t *testing.T) []string {
	t.Helper()
	secrets := map[string]string{
		"BUNKER_PASSWORD":            testPassword,
		"BUNKER_PASSWORD_FILE":       "/etc/bunker/repo-password-path",
		"BUNKER_REST_PASSWORD":       "rest-password-of-the-host",
		"BUNKER_API_TOKEN":           "daemon-api-token-from-the-plan",
		"BUNKER_SFTP_KEY_PASSPHRASE": "sftp-key-passphrase",
		"BUNKER_S3_SSE_C_KEY":        "c3NlLWMta2V5LW9mLXRoZS1idWNrZXQtMzJieXRlcw==",
	}
	var vals []string
	for k, v := range secrets {
		t.Setenv(k, v)
		vals = append(vals, v)
	}
	t.Setenv("PGPASSWORD", "the-users-libpq-password")
	return vals
}

// TestStdinFromCommandGetsNoBunkerSecret: a --stdin-from-command command
// that prints its environment stores it in the snapshot; bunker's
// secrets must not be there, the user's own variables must.
func TestStdinFromCommandGetsNoBunkerSecret(t *testing.T) {
	e := initRepo(t)
	secrets := bunkerSecretsInEnv(t)
	sum, _ := e.backupJSON(0, "--stdin-from-command", "--stdin-filename", "env.txt", "--",
		"sh", "-c", `env; echo "pw=$BUNKER_PASSWORD"`)
	dumped := e.mustRun("dump", str(sum["snapshot_id"]), "/env.txt").Stdout
	for _, s := range secrets {
		if strings.Contains(dumped, s) {
			t.Errorf("the snapshot holds the secret %q", s)
		}
	}
	if !strings.Contains(dumped, "\npw=\n") {
		t.Errorf("the command saw BUNKER_PASSWORD")
	}
	if !strings.Contains(dumped, "PGPASSWORD=the-users-libpq-password") {
		t.Errorf("the command lost the user's PGPASSWORD")
	}
}

// TestPasswordCommandGetsNoOtherSecret: the command that computes the
// repository password sees the user's environment but not bunker's other
// secrets (the REST password, the API token…).
func TestPasswordCommandGetsNoOtherSecret(t *testing.T) {
	e := initRepo(t)
	secrets := bunkerSecretsInEnv(t)
	seen := filepath.Join(t.TempDir(), "seen")
	delete(e.env, "BUNKER_PASSWORD")
	e.mustRun("--password-command", "env > "+seen+"; echo '"+testPassword+"'", "snapshots")
	b, err := os.ReadFile(seen)
	must(t, err)
	for _, s := range secrets {
		if strings.Contains(string(b), s) {
			t.Errorf("the password command saw the secret %q", s)
		}
	}
	if !strings.Contains(string(b), "PGPASSWORD=the-users-libpq-password") {
		t.Errorf("the password command lost the user's environment")
	}
}

// TestPlanSecretCommandGetsNoOtherSecret: a plan's command: secret
// reference (here the repository password) runs without bunker's other
// secrets in its environment.
func TestPlanSecretCommandGetsNoOtherSecret(t *testing.T) {
	pe := newPlanEnv(t, `  - name: home
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
`)
	seen := filepath.Join(pe.dir, "seen")
	plan, err := os.ReadFile(pe.plan)
	must(t, err)
	plan = []byte(strings.Replace(string(plan), "password: env:MAIN_PW",
		`password: "command:env > ${DIR}/seen; echo '`+testPassword+`'"`, 1))
	must(t, os.WriteFile(pe.plan, plan, 0o600))
	secrets := bunkerSecretsInEnv(t)
	testutil.Expect(t, pe.run("run", "--plan", pe.plan, "home"), 0)
	b, err := os.ReadFile(seen)
	must(t, err)
	for _, s := range secrets {
		if strings.Contains(string(b), s) {
			t.Errorf("the secret command saw the secret %q", s)
		}
	}
	if !strings.Contains(string(b), "PGPASSWORD=the-users-libpq-password") {
		t.Errorf("the secret command lost the user's environment")
	}
}
