package cli_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/cli"
	"github.com/bunkerbackup/bunker/internal/testutil"
)

// TestMain runs the tests without the caller's BUNKER_*, libpq, MySQL,
// cloud and Kubernetes variables: the servers and programs the tests
// start must see only what each test sets.
func TestMain(m *testing.M) {
	testutil.CleanEnv()
	// No plan of this machine's /etc/bunker reaches a test.
	*cli.SystemPlanDir = "/nonexistent/bunker-test/etc"
	code := m.Run()
	if testutil.WholeRun() {
		if missing := jsonRuns.Missing(slices.DeleteFunc(cli.CommandPaths(), checkedInE2E)); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: no test ran these commands with --json, so docs/JSON.md is not checked against them: %s\n", strings.Join(missing, ", "))
			code = max(code, 1)
		}
	}
	os.Exit(code)
}

// checkedInE2E are the commands whose --json lines the tests of
// internal/e2e check against docs/JSON.md (they run the binary against
// PostgreSQL with its WAL archived by bunker); that package's TestMain
// fails when one did not run there.
func checkedInE2E(path string) bool {
	return slices.Contains([]string{"backup postgres", "restore postgres", "pg check", "pg wal-receive"}, path)
}
