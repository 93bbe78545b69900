//go:build unix

package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/testsrv"
)

// TestPostgresPhysicalArchiveTimeout: a base backup that relies on the WAL
// archive (--wal-method none) while archive_command fails on every
// segment (as it did in issue 14, finding 10, with permission denied)
// gives up after --archive-timeout instead of waiting forever, says it is
// waiting meanwhile, names pg_stat_archiver's last failure, and saves no
// snapshot.
func TestPostgresPhysicalArchiveTimeout(t *testing.T) {
	pg := testsrv.Postgres(t, testsrv.PGOptions{Settings: map[string]string{
		"archive_mode":    "on",
		"archive_command": "echo 'bunker test: archiving refused' >&2; exit 1",
	}})
	// A first failure before the backup, so that pg_stat_archiver has one
	// to name however slowly the archiver runs on a loaded machine.
	pg.PSQL(t, "postgres", "CREATE TABLE t AS SELECT 1 AS x; SELECT pg_switch_wal()")
	deadline := time.Now().Add(60 * time.Second)
	for pg.PSQL(t, "postgres", "SELECT failed_count FROM pg_stat_archiver") == "0" {
		if time.Now().After(deadline) {
			t.Fatalf("archive_command never ran; log:\n%s", pg.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	e := initRepo(t)
	e.env["BUNKER_POSTGRES_DSN"] = pg.DSN("postgres")
	res := e.expect(1, "backup", "postgres", "--physical", "--wal-method", "none", "--archive-timeout", "5s")
	for _, want := range []string{
		"the server waits for WAL archiving",               // progress while waiting
		"did not complete within the archive timeout (5s)", // the verdict
		"pg_stat_archiver: last failed WAL 0000000",        // the archiver's last failure…
		"failures)",
	} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("output lacks %q:\n%s", want, res)
		}
	}
	if n := len(e.snapshots()); n != 0 {
		t.Errorf("%d snapshots saved by a backup whose WAL was never archived", n)
	}
	// The server is not left waiting for the client that gave up (its
	// process ends soon after it is told to).
	deadline = time.Now().Add(30 * time.Second)
	for pg.PSQL(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'BackupWaitWalArchive'") != "0" {
		if time.Now().After(deadline) {
			t.Fatal("the server still waits for the archive on behalf of the backup that gave up")
		}
		time.Sleep(50 * time.Millisecond)
	}

	e.expect(1, "backup", "postgres", "--physical", "--archive-timeout", "-1s")
}
