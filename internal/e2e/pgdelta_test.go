package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/testsrv"
)

// TestPostgresDeltaRestore: a physical restore with --delta into the data
// directory of a stopped server that ran on since the restore keeps the
// files that did not change, rewrites the changed ones, deletes what the
// backup lacks, and the server starts as the backup was. A directory that
// is not a data directory, or one whose server runs, is refused.
func TestPostgresDeltaRestore(t *testing.T) {
	src := testsrv.Postgres(t, testsrv.PGOptions{})
	src.PSQL(t, "postgres", `CREATE DATABASE app`)
	src.PSQL(t, "app", `CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 100000) g`)
	r := pgRepo(t, src)
	r.env = append(r.env, "BUNKER_POSTGRES_DSN="+src.DSN("postgres"))
	r.mustRun("backup", "postgres", "--physical")
	want := pgDump(t, src, "app")

	dst := testsrv.Postgres(t, testsrv.PGOptions{NoInit: true})
	r.mustRun("restore", "postgres", "latest", "--physical", "--pgdata", dst.DataDir)
	dst.Start(t)
	dst.PSQL(t, "app", `INSERT INTO t SELECT g, 'after' FROM generate_series(200001, 250000) g`)
	dst.PSQL(t, "postgres", `CREATE DATABASE scratch`)
	// A server that runs is refused.
	if res := r.expect(1, "restore", "postgres", "latest", "--physical", "--delta", "--pgdata", dst.DataDir); !strings.Contains(res.Stderr, "postmaster.pid") {
		t.Errorf("delta restore under a running server: %s", res)
	}
	dst.Stop(t)
	must(t, os.WriteFile(filepath.Join(dst.DataDir, "stray"), []byte("not in the backup"), 0o600))

	res := r.mustRun("--json", "restore", "postgres", "latest", "--physical", "--delta", "--pgdata", dst.DataDir)
	sum := res.Message(t, "summary")
	if num(sum["files_kept"]) < 100 || num(sum["files_written"]) < 1 || num(sum["deleted"]) < 1 {
		t.Errorf("delta restore kept %v, wrote %v, deleted %v files; want most kept, some written and deleted:\n%s",
			sum["files_kept"], sum["files_written"], sum["deleted"], res)
	}
	if _, err := os.Stat(filepath.Join(dst.DataDir, "stray")); !os.IsNotExist(err) {
		t.Errorf("a file the backup lacks survived the delta restore: %v", err)
	}
	dst.Start(t)
	if got := pgDump(t, dst, "app"); got != want {
		t.Errorf("after the delta restore the cluster differs from the backup:\n%s", lineDiff(want, got))
	}
	if out := dst.PSQL(t, "postgres", `SELECT count(*) FROM pg_database WHERE datname = 'scratch'`); strings.TrimSpace(out) != "0" {
		t.Errorf("the database created after the backup is still there (%s)", out)
	}
	dst.Stop(t)

	// A directory that is not a data directory is never emptied.
	other := t.TempDir()
	must(t, os.WriteFile(filepath.Join(other, "precious"), []byte("x"), 0o600))
	if res := r.expect(1, "restore", "postgres", "latest", "--physical", "--delta", "--pgdata", other); !strings.Contains(res.Stderr, "PG_VERSION") {
		t.Errorf("delta restore into a non-data directory: %s", res)
	}
	if _, err := os.Stat(filepath.Join(other, "precious")); err != nil {
		t.Errorf("the refused directory lost a file: %v", err)
	}
}
