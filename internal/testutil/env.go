package testutil

import (
	"os"
	"strings"
)

// harnessVars are the BUNKER_ variables the test harness itself reads
// (scripts/test.sh, .ci/run, the e2e knobs); they configure the tests, not
// bunker, and are kept.
var harnessVars = map[string]bool{
	"BUNKER_TOOLS":           true,
	"BUNKER_REQUIRE_SERVERS": true,
	"BUNKER_ARTIFACTS_DIR":   true,
	"BUNKER_E2E_SEED":        true,
	"BUNKER_E2E_RACE":        true,
	"BUNKER_E2E_KILL_TRIALS": true,
	"BUNKER_BENCH":           true,
}

// foreignPrefixes start the names of variables that change what bunker or
// the programs and clients it drives connect to or authenticate with:
// bunker's own, libpq's, MySQL/MariaDB's, MongoDB's, and the cloud and
// Kubernetes SDKs'.
var foreignPrefixes = []string{
	"BUNKER_",
	"PG", // libpq: PGHOST, PGPASSWORD, PGSSLMODE, PGSERVICE, PGOPTIONS…
	"MYSQL_", "MARIADB_", "LIBMYSQL_",
	"MONGODB_",
	"AWS_",
	"AZURE_", "AZURITE_",
	"GOOGLE_", "CLOUDSDK_",
	"KUBE", // KUBECONFIG, KUBERNETES_SERVICE_HOST (in-cluster config)
}

// foreignNames are single variables of the same kind.
var foreignNames = map[string]bool{
	"STORAGE_EMULATOR_HOST": true, // the GCS client's emulator switch
	"GCE_METADATA_HOST":     true,
	"SSH_AUTH_SOCK":         true,
	"SSH_AGENT_PID":         true,
	"NODE_NAME":             true, // bunker agent's node
}

// Foreign reports whether the environment variable name can change what a
// test's bunker, server or client does without the test saying so: a
// developer's BUNKER_PASSWORD, PGHOST or AWS_PROFILE. The harness's own
// BUNKER_ knobs are not foreign. Proxy variables are left alone: the Go
// toolchain (the e2e tests build the binary) may need them, and nothing
// proxies loopback.
func Foreign(name string) bool {
	if harnessVars[name] {
		return false
	}
	if foreignNames[name] {
		return true
	}
	for _, p := range foreignPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// CleanEnv removes every Foreign variable from this process's
// environment and returns the names it removed. Call it first in the
// TestMain of every test package that starts servers or child processes
// (which inherit the environment: an archive_command run by a test
// PostgreSQL server would take a developer's BUNKER_PASSWORD over the
// test's BUNKER_PASSWORD_FILE), before any test runs: a test then sees
// only the variables it sets itself.
func CleanEnv() []string {
	var removed []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name != "" && Foreign(name) {
			_ = os.Unsetenv(name)
			removed = append(removed, name)
		}
	}
	return removed
}

// CleanEnviron is os.Environ() without the Foreign variables: the base
// environment for a server or program a test starts.
func CleanEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !Foreign(name) {
			env = append(env, kv)
		}
	}
	return env
}
