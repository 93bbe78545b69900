package source

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// childSecrets are bunker's secrets as an operator's shell or a daemon's
// unit file holds them; a dump tool bunker runs must see none of them.
var childSecrets = []string{
	"BUNKER_PASSWORD", "BUNKER_PASSWORD_FILE", "BUNKER_PASSWORD_COMMAND", "BUNKER_FROM_PASSWORD",
	"BUNKER_NEW_PASSWORD", "BUNKER_REST_PASSWORD", "BUNKER_SFTP_KEY", "BUNKER_SFTP_KEY_PASSPHRASE",
	"BUNKER_S3_SSE_C_KEY", "BUNKER_POSTGRES_DSN", "BUNKER_MYSQL_DSN", "BUNKER_MONGODB_URI",
	"BUNKER_MONGODB_PASSWORD_FILE",
	// Names a plan's env: references give the API token and passwords.
	"BUNKER_API_TOKEN", "BUNKER_REPO_PASSWORD", "BUNKER_SMTP_SECRET",
}

// childKept are the user's variables the tools read (libpq's, MySQL's,
// the cloud SDKs'), and bunker's non-secret settings.
var childKept = []string{
	"PGPASSWORD", "PGHOST", "MYSQL_PWD", "AWS_SECRET_ACCESS_KEY", "MONGODB_URI",
	"BUNKER_CACHE_DIR", "BUNKER_REST_FINGERPRINT", "BUNKER_S3_SSE_KMS_KEY_ID", "BUNKER_REPOSITORY",
}

// envTool writes a "dump tool" that prints its environment.
func envTool(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pg_dump")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nenv\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// childEnvOf runs c and returns the environment it printed, by name.
func childEnvOf(t *testing.T, c *Command) map[string]string {
	t.Helper()
	out, err := c.CombinedOutput(context.Background())
	if err != nil {
		t.Fatalf("run %s: %v", c.Name(), err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

func TestCommandChildGetsNoBunkerSecret(t *testing.T) {
	for _, k := range childSecrets {
		t.Setenv(k, "secret-of-"+k)
	}
	for _, k := range childKept {
		t.Setenv(k, "user-value-of-"+k)
	}
	c := &Command{Path: envTool(t), Env: []string{"PGPASSFILE=/run/bunker/pgpass", "PGCONNECT_TIMEOUT=30"}}
	out, err := c.CombinedOutput(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range childSecrets {
		if strings.Contains(string(out), "secret-of-"+k) || strings.Contains(string(out), k+"=") {
			t.Errorf("the tool saw %s", k)
		}
	}
	env := childEnvOf(t, c)
	for _, k := range childKept {
		if env[k] != "user-value-of-"+k {
			t.Errorf("the tool lost %s: got %q", k, env[k])
		}
	}
	if env["PGPASSFILE"] != "/run/bunker/pgpass" || env["PGCONNECT_TIMEOUT"] != "30" {
		t.Errorf("the tool lost what the source passed: PGPASSFILE=%q PGCONNECT_TIMEOUT=%q", env["PGPASSFILE"], env["PGCONNECT_TIMEOUT"])
	}
	if env["PATH"] == "" || env["HOME"] == "" {
		t.Errorf("the tool lost PATH or HOME")
	}
}

// A secret the caller passes on purpose reaches the child, over an
// inherited value of the same name.
func TestCommandChildGetsSecretPassedExplicitly(t *testing.T) {
	t.Setenv("BUNKER_PASSWORD", "inherited")
	c := &Command{Path: envTool(t), Env: []string{"BUNKER_PASSWORD=passed"}}
	if got := childEnvOf(t, c)["BUNKER_PASSWORD"]; got != "passed" {
		t.Fatalf("BUNKER_PASSWORD = %q, want the value passed", got)
	}
}

func TestIsSecretVar(t *testing.T) {
	for _, k := range childSecrets {
		if !IsSecretVar(k) {
			t.Errorf("IsSecretVar(%s) = false", k)
		}
	}
	if !IsSecretVar("bunker_password") {
		t.Errorf("IsSecretVar is case-sensitive: Windows names are not")
	}
	for _, k := range append(childKept, "", "PATH", "BUNKER_", "BUNKER_JOB", "BUNKER_RESTORE_DIR", "BUNKER_SFTP_KNOWN_HOSTS", "BUNKER_REST_CA") {
		if IsSecretVar(k) {
			t.Errorf("IsSecretVar(%q) = true", k)
		}
	}
}
