package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/testsrv"
	"github.com/bunkerbackup/bunker/internal/testutil"
)

// TestPostgresInfoAndCheck: with archive_command running bunker's
// wal-push, pg info shows the base backup and a continuous archive;
// forgetting one archived segment makes it name the gap; pg check
// succeeds against that server and fails, saying why, against one whose
// archive_mode is off.
func TestPostgresInfoAndCheck(t *testing.T) {
	dir := testsrv.SharedDir(t)
	pwfile := filepath.Join(dir, "pw")
	must(t, os.WriteFile(pwfile, []byte(testPassword+"\n"), 0o644))
	repoDir := filepath.Join(dir, "repo")
	archive := fmt.Sprintf("BUNKER_PASSWORD_FILE=%s %s -r %s pg wal-push %%p", pwfile, bunkerBin, repoDir)
	src := testsrv.Postgres(t, testsrv.PGOptions{Settings: map[string]string{"archive_mode": "on", "archive_command": archive}})
	r := newRepo(t, repoDir)
	r.cred = src.Cred()
	r.env = []string{"BUNKER_PASSWORD_FILE=" + pwfile, "PATH=" + os.Getenv("PATH"), "HOME=" + dir, "BUNKER_POSTGRES_DSN=" + src.DSN("postgres")}
	r.mustRun("--insecure-kdf-for-tests", "init")

	r.mustRun("backup", "postgres", "--physical", "--wal-method", "none")
	for i := 0; i < 4; i++ {
		src.PSQL(t, "postgres", fmt.Sprintf("CREATE TABLE t%d AS SELECT %d AS x", i, i))
		src.WaitArchived(t)
	}

	type gap struct {
		Timeline    uint32
		First, Last string
		Count       int
	}
	type info struct {
		System      string `json:"system_identifier"`
		BaseBackups []struct {
			ID, Kind, Time string
			StartWAL       string `json:"start_wal"`
			Size           int64
		} `json:"base_backups"`
		WAL struct {
			First, Last string
			Timelines   []uint32
			Segments    int
			Continuous  bool
			Gaps        []gap
		} `json:"wal"`
		Oldest string `json:"oldest_recoverable"`
		Newest string `json:"newest_recoverable"`
	}
	pgInfo := func() info {
		t.Helper()
		res := r.mustRun("--json", "pg", "info")
		lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
		if len(lines) != 1 {
			t.Fatalf("want one pg_info line (one server):\n%s", res)
		}
		var in info
		must(t, json.Unmarshal([]byte(lines[0]), &in))
		if m := res.Message(t, "pg_info"); m["system_identifier"] == "" {
			t.Fatalf("no system identifier: %s", res)
		}
		return in
	}
	in := pgInfo()
	if len(in.BaseBackups) != 1 || in.BaseBackups[0].Kind != "full" || in.BaseBackups[0].Size == 0 || in.BaseBackups[0].StartWAL == "" {
		t.Errorf("base backups: %+v", in.BaseBackups)
	}
	if !in.WAL.Continuous || len(in.WAL.Gaps) != 0 || in.WAL.Segments < 4 || in.Oldest == "" || in.Newest == "" || in.Oldest > in.Newest {
		t.Errorf("archive after continuous archiving: %+v", in)
	}
	text := r.mustRun("pg", "info")
	for _, want := range []string{"system " + in.System, "base backups: 1", "continuous: no gap", "recoverable: "} {
		if !strings.Contains(text.Stdout, want) {
			t.Errorf("pg info lacks %q:\n%s", want, text)
		}
	}

	// Forget the archive snapshot of a segment after the base backup's
	// start, before the end of the archive.
	list := r.mustRun("--json", "pg", "wal-list")
	var wal []struct{ Name, Kind, Snapshot string }
	testutil.DecodeMessages(t, list.Stdout, "wal", &wal)
	perSnap := map[string]int{}
	for _, w := range wal {
		perSnap[w.Snapshot]++
	}
	var victim, victimSnap string
	for _, w := range wal {
		if w.Kind == "segment" && w.Name > in.BaseBackups[0].StartWAL && w.Name < in.WAL.Last && perSnap[w.Snapshot] == 1 {
			victim, victimSnap = w.Name, w.Snapshot
			break
		}
	}
	if victim == "" {
		t.Fatalf("no segment in the middle of the archive alone in its snapshot: %s", list.Stdout)
	}
	r.mustRun("forget", victimSnap)
	in = pgInfo()
	if in.WAL.Continuous || len(in.WAL.Gaps) != 1 || in.WAL.Gaps[0].First != victim || in.WAL.Gaps[0].Last != victim || in.WAL.Gaps[0].Count != 1 {
		t.Errorf("after forgetting %s: %+v", victim, in.WAL)
	}
	if in.Oldest != "" {
		t.Errorf("the only base backup is before the gap, yet recoverable from %s", in.Oldest)
	}
	text = r.mustRun("pg", "info")
	if !strings.Contains(text.Stdout, "gap: "+victim+" missing") {
		t.Errorf("pg info does not name the gap at %s:\n%s", victim, text)
	}

	// pg check against the archiving server.
	res := r.mustRun("--json", "pg", "check", "--timeout", "60s")
	m := res.Message(t, "pg_check")
	if m["ok"] != true || m["system_identifier"] != in.System || !strings.HasPrefix(fmt.Sprint(m["segment"]), "0000000") {
		t.Errorf("pg check: %s", res)
	}
	res = r.mustRun("pg", "check")
	if !strings.Contains(res.Stdout, "WAL archiving works: segment ") {
		t.Errorf("pg check: %s", res)
	}

	// And against a server that does not archive.
	off := testsrv.Postgres(t, testsrv.PGOptions{})
	res = r.expect(1, "pg", "check", "--dsn", off.DSN("postgres"), "--timeout", "5s")
	if !strings.Contains(res.Stderr, `archive_mode is "off"`) {
		t.Errorf("pg check against a server with archive_mode off: %s", res)
	}

	// And against one whose archive_command fails: the message names the
	// server's last failure. A first failure before the check, so that
	// pg_stat_archiver has one however slowly the archiver runs.
	failing := testsrv.Postgres(t, testsrv.PGOptions{Settings: map[string]string{
		"archive_mode":    "on",
		"archive_command": "echo 'bunker test: archiving refused' >&2; exit 1",
	}})
	failing.PSQL(t, "postgres", "CREATE TABLE t AS SELECT 1 AS x; SELECT pg_switch_wal()")
	deadline := time.Now().Add(60 * time.Second)
	for failing.PSQL(t, "postgres", "SELECT failed_count FROM pg_stat_archiver") == "0" {
		if time.Now().After(deadline) {
			t.Fatalf("archive_command never ran; log:\n%s", failing.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	res = r.expect(1, "pg", "check", "--dsn", failing.DSN("postgres"), "--timeout", "3s")
	for _, want := range []string{"archive_command fails", "did not arrive in the repository within 3s", "pg_stat_archiver: last failed WAL 0000000", "does not run bunker's wal-push"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("pg check against a failing archive_command lacks %q:\n%s", want, res)
		}
	}
}
