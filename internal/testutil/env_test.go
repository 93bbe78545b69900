package testutil

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// hostileEnv is what a developer's shell may hold: each would change what
// a test's bunker, server or client connects to or authenticates with.
var hostileEnv = map[string]string{
	"BUNKER_PASSWORD":                "x",
	"BUNKER_PASSWORD_COMMAND":        "false",
	"BUNKER_REPOSITORY":              "/nonexistent",
	"BUNKER_POSTGRES_DSN":            "host=/nonexistent",
	"PGPASSWORD":                     "x",
	"PGHOST":                         "/nonexistent",
	"PGSSLMODE":                      "verify-full",
	"MYSQL_PWD":                      "x",
	"AWS_ACCESS_KEY_ID":              "x",
	"AWS_PROFILE":                    "prod",
	"AZURE_STORAGE_KEY":              "x",
	"GOOGLE_CLOUD_PROJECT":           "x",
	"STORAGE_EMULATOR_HOST":          "127.0.0.1:1",
	"KUBECONFIG":                     "/nonexistent",
	"KUBERNETES_SERVICE_HOST":        "10.0.0.1",
	"SSH_AUTH_SOCK":                  "/nonexistent",
	"BUNKER_MONGODB_URI":             "mongodb://x",
	"GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent",
}

// kept are the harness's own variables and the ones every program needs.
var kept = []string{"BUNKER_TOOLS", "BUNKER_REQUIRE_SERVERS", "BUNKER_ARTIFACTS_DIR", "BUNKER_E2E_SEED", "PATH", "HOME"}

func TestCleanEnvRemovesForeignVariables(t *testing.T) {
	for k, v := range hostileEnv {
		t.Setenv(k, v)
	}
	for _, k := range kept {
		if os.Getenv(k) == "" {
			t.Setenv(k, "kept")
		}
	}
	env := CleanEnviron()
	removed := CleanEnv()
	for k := range hostileEnv {
		if v, ok := os.LookupEnv(k); ok {
			t.Errorf("CleanEnv left %s=%s", k, v)
		}
		if !slices.Contains(removed, k) {
			t.Errorf("CleanEnv did not report %s removed: %v", k, removed)
		}
		for _, kv := range env {
			if strings.HasPrefix(kv, k+"=") {
				t.Errorf("CleanEnviron kept %s", kv)
			}
		}
	}
	for _, k := range kept {
		if _, ok := os.LookupEnv(k); !ok {
			t.Errorf("CleanEnv removed %s", k)
		}
		if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, k+"=") }) {
			t.Errorf("CleanEnviron dropped %s", k)
		}
	}
	// A child started afterwards inherits none of them.
	out, err := exec.Command("env").Output()
	if err != nil {
		t.Skipf("no env program: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(line, "=")
		if _, hostile := hostileEnv[name]; hostile {
			t.Errorf("a child process inherited %s", line)
		}
	}
}
