package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/bunkerbackup/bunker/internal/testsrv"
)

// TestPostgresRootBackupKeepsOwnerArchiving replays issue 14, finding 10:
// the repository belongs to postgres, whose archive_command (bunker pg
// wal-push) writes into it, and root runs the base backup. What root
// writes must stay postgres's, so archiving goes on and the backup, which
// waits for its WAL to be archived, completes.
func TestPostgresRootBackupKeepsOwnerArchiving(t *testing.T) {
	dir := testsrv.SharedDir(t)
	pwfile := filepath.Join(dir, "pw")
	must(t, os.WriteFile(pwfile, []byte(testPassword+"\n"), 0o644))
	repoDir := filepath.Join(dir, "repo")
	archive := fmt.Sprintf("BUNKER_PASSWORD_FILE=%s %s -r %s pg wal-push %%p", pwfile, bunkerBin, repoDir)
	src := testsrv.Postgres(t, testsrv.PGOptions{Settings: map[string]string{"archive_mode": "on", "archive_command": archive}})
	env := []string{"BUNKER_PASSWORD_FILE=" + pwfile, "PATH=" + os.Getenv("PATH"), "HOME=" + dir, "BUNKER_POSTGRES_DSN=" + src.DSN("postgres")}

	owner := newRepo(t, repoDir)
	owner.cred = src.Cred()
	owner.env = env
	owner.mustRun("--insecure-kdf-for-tests", "init")

	root := newRepo(t, repoDir)
	root.env = env
	root.mustRun("backup", "postgres", "--physical", "--wal-method", "none", "--archive-timeout", "2m")
	src.PSQL(t, "postgres", "CREATE TABLE t AS SELECT generate_series(1, 1000) AS id")
	src.WaitArchived(t)

	cred := src.Cred()
	err := filepath.WalkDir(repoDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != cred.Uid || st.Gid != cred.Gid {
			t.Errorf("%s: owner %d:%d, want postgres's %d:%d", p, st.Uid, st.Gid, cred.Uid, cred.Gid)
		}
		return nil
	})
	must(t, err)
	owner.mustRun("check")
	if ids := physicalIDs(t, owner); len(ids) != 1 {
		t.Errorf("physical snapshots: %v", ids)
	}
}
