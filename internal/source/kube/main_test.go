package kube

import (
	"os"
	"testing"

	"github.com/bunkerbackup/bunker/internal/testutil"
)

// TestMain runs the tests without the caller's BUNKER_*, libpq, MySQL,
// cloud and Kubernetes variables: the servers and programs the tests
// start must see only what each test sets.
func TestMain(m *testing.M) {
	testutil.CleanEnv()
	os.Exit(m.Run())
}
