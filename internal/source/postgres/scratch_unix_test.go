//go:build unix

package postgres

import (
	"context"
	"testing"

	"github.com/bunkerbackup/bunker/internal/testsrv"
)

// TestScratchServerGetsNoBunkerSecret is a hostile dump restored by a
// drill: SQL run as the scratch cluster's superuser reads the server's
// environment with COPY FROM PROGRAM. The daemon's repository password
// and API token must not be in it.
func TestScratchServerGetsNoBunkerSecret(t *testing.T) {
	bin := testsrv.PGBinDir()
	if bin == "" {
		testsrv.Missing(t, "no PostgreSQL server programs (Debian package postgresql)")
	}
	t.Setenv("BUNKER_PASSWORD", "repository-password-of-the-daemon")
	t.Setenv("BUNKER_API_TOKEN", "api-token-of-the-daemon")
	t.Setenv("PGAPPNAME", "kept-user-variable")
	ctx := context.Background()
	s, err := StartScratch(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	got, err := s.Query(ctx, "postgres", `CREATE TEMP TABLE e(l text); `+
		`COPY e FROM PROGRAM 'echo "pw=$BUNKER_PASSWORD token=$BUNKER_API_TOKEN app=$PGAPPNAME"'; SELECT l FROM e`)
	if err != nil {
		t.Fatal(err)
	}
	if got != "pw= token= app=kept-user-variable" {
		t.Fatalf("the scratch server's environment: %q", got)
	}
}
