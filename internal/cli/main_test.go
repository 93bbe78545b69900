package cli_test

import (
	"os"
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
	os.Exit(m.Run())
}
