package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/testsrv"
	"github.com/bunkerbackup/bunker/internal/testutil"
)

// pgRepo makes a repository that the postgres user owns and runs every
// bunker command as postgres (archive_command runs as the server's user).
func pgRepo(t *testing.T, pg *testsrv.PGServer) *repo {
	t.Helper()
	dir := testsrv.SharedDir(t)
	r := newRepo(t, filepath.Join(dir, "repo"))
	r.cred = pg.Cred()
	pw := filepath.Join(dir, "repo-password")
	must(t, os.WriteFile(pw, []byte(testPassword+"\n"), 0o600))
	must(t, os.Chown(pw, int(r.cred.Uid), int(r.cred.Gid)))
	r.env = []string{"BUNKER_PASSWORD_FILE=" + pw, "PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	r.mustRun("--insecure-kdf-for-tests", "init")
	return r
}

// pgDump is the plain SQL dump of one database, for comparing servers.
func pgDump(t *testing.T, pg *testsrv.PGServer, db string) string {
	t.Helper()
	return pg.Tool(t, "pg_dump", "--no-sync", "--restrict-key=bunkertest", "-d", db)
}

// roles lists the non-system roles with their attributes and password
// hashes.
func roles(t *testing.T, pg *testsrv.PGServer) string {
	return pg.PSQL(t, "postgres", `SELECT rolname, rolsuper, rolcanlogin, rolcreatedb, coalesce(rolpassword, '')
		FROM pg_authid WHERE rolname NOT LIKE 'pg\_%' AND rolname <> 'postgres' ORDER BY 1`)
}

func TestPostgresLogicalRoundTrip(t *testing.T) {
	src := testsrv.Postgres(t, testsrv.PGOptions{})
	src.PSQL(t, "postgres", `CREATE ROLE shop_owner LOGIN PASSWORD 'owner pw'; CREATE ROLE reader NOLOGIN`)
	src.PSQL(t, "postgres", `CREATE DATABASE shop OWNER shop_owner`)
	src.PSQL(t, "postgres", `CREATE DATABASE "odd/name ü"`)
	src.PSQL(t, "shop", `SET ROLE shop_owner;
		CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, price numeric(10,2), tags text[], data jsonb, img bytea, at timestamptz DEFAULT now());
		INSERT INTO items (name, price, tags, data, img) SELECT 'item ' || g, g * 1.25, ARRAY['a', 'b' || g], jsonb_build_object('n', g), decode(md5(g::text), 'hex') FROM generate_series(1, 5000) g;
		INSERT INTO items (name) VALUES ('NULLs and ''quotes'' and ünïcödé');
		CREATE INDEX items_name ON items (name);
		CREATE VIEW cheap AS SELECT * FROM items WHERE price < 10;
		CREATE FUNCTION total() RETURNS numeric LANGUAGE sql AS 'SELECT sum(price) FROM items';
		RESET ROLE; GRANT SELECT ON items TO reader`)
	src.PSQL(t, "odd/name ü", `CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 100)`)

	r := initRepo(t)
	r.env = append(r.env, "BUNKER_POSTGRES_DSN="+src.DSN("postgres"))
	res := r.mustRun("--json", "backup", "postgres", "--jobs", "2")
	sum := res.Message(t, "summary")
	for _, k := range []string{"bytes_read", "data_added", "duration_seconds"} {
		if _, ok := sum[k]; !ok {
			t.Errorf("summary lacks %s: %v", k, sum)
		}
	}
	if num(sum["bytes_read"]) < 100_000 {
		t.Errorf("bytes_read %v is too small for the dumps", sum["bytes_read"])
	}
	snaps := r.mustRun("--json", "snapshots")
	for _, out := range []string{snaps.Stdout, res.Stdout, res.Stderr} {
		if strings.Contains(out, src.Password) || strings.Contains(out, "secret") {
			t.Fatalf("the database password leaked into bunker's output:\n%s", out)
		}
	}
	var list []struct {
		Metadata map[string]string `json:"metadata"`
	}
	testutil.DecodeMessages(t, snaps.Stdout, "snapshot", &list)
	if len(list) != 1 || list[0].Metadata["databases"] != "odd/name ü,postgres,shop" || list[0].Metadata["server_version"] == "" || list[0].Metadata["system_identifier"] == "" {
		t.Fatalf("snapshot metadata: %v", list)
	}

	dst := testsrv.Postgres(t, testsrv.PGOptions{})
	dsnFile := filepath.Join(t.TempDir(), "pw")
	must(t, os.WriteFile(dsnFile, []byte(dst.Password+"\n"), 0o600))
	r.mustRun("restore", "postgres", "latest", "--dsn", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres", dst.Port), "--db-password-file", dsnFile)
	for _, db := range []string{"shop", "odd/name ü"} {
		if a, b := pgDump(t, src, db), pgDump(t, dst, db); a != b {
			t.Errorf("database %s differs after the round trip:\n%s", db, lineDiff(a, b))
		}
	}
	if a, b := roles(t, src), roles(t, dst); a != b {
		t.Errorf("roles differ:\nsource:\n%s\nrestored:\n%s", a, b)
	}
	if owner := dst.PSQL(t, "postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop'"); owner != "shop_owner" {
		t.Errorf("shop is owned by %q", owner)
	}

	// Restoring over existing databases fails per database (exit 3)
	// unless --clean.
	res = r.expect(3, "restore", "postgres", "latest", "--database", "shop", "--dsn", dst.DSN("postgres"))
	if !strings.Contains(res.Stderr, "shop") || !strings.Contains(res.Stderr, "already exists") {
		t.Errorf("restore over an existing database: %s", res)
	}
	src.PSQL(t, "shop", "DELETE FROM items WHERE id > 10")
	r.mustRun("--json", "restore", "postgres", "latest", "--database", "shop", "--no-globals", "--clean", "--dsn", dst.DSN("postgres"))
	if n := dst.PSQL(t, "shop", "SELECT count(*) FROM items"); n != "5001" {
		t.Errorf("after --clean restore: %s rows", n)
	}
}

func TestPostgresFailures(t *testing.T) {
	src := testsrv.Postgres(t, testsrv.PGOptions{})
	r := initRepo(t)

	// Wrong password: the server's message, no snapshot.
	res := r.expect(1, "backup", "postgres", "--dsn", strings.Replace(src.DSN("postgres"), "secret", "wrong", 1))
	if !strings.Contains(res.Stderr, "password authentication failed") || strings.Contains(res.Stderr, "wrong") {
		t.Errorf("wrong password: %s", res)
	}
	// Missing tools.
	res = r.expect(1, "backup", "postgres", "--dsn", src.DSN("postgres"), "--pg-bin", t.TempDir())
	if !strings.Contains(res.Stderr, "pg_dump") || !strings.Contains(res.Stderr, "not found") {
		t.Errorf("missing pg_dump: %s", res)
	}
	if ids := r.snapshotIDs(); len(ids) != 0 {
		t.Fatalf("failed backups left snapshots: %v", ids)
	}

	// The server dies mid-dump.
	src.PSQL(t, "postgres", `CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 1500000) g`)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := r.command(ctx, "backup", "postgres", "--dsn", src.DSN("postgres"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	must(t, cmd.Start())
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if n := src.PSQL(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY public.big%'"); n != "0" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	src.Kill(t)
	err := cmd.Wait()
	if err == nil {
		t.Fatalf("the backup succeeded although the server died:\n%s", stderr.String())
	}
	msg := stderr.String()
	if !strings.Contains(msg, "pg_dump") || !strings.Contains(msg, "no snapshot saved") {
		t.Errorf("the error does not name pg_dump's failure:\n%s", msg)
	}
	if ids := r.snapshotIDs(); len(ids) != 0 {
		t.Fatalf("a killed dump left snapshots: %v", ids)
	}
	r.mustRun("check")
}

func TestPostgresPhysicalRoundTrip(t *testing.T) {
	src := testsrv.Postgres(t, testsrv.PGOptions{})
	src.PSQL(t, "postgres", `CREATE DATABASE app`)
	src.PSQL(t, "app", `CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 200000) g`)
	r := pgRepo(t, src)
	r.env = append(r.env, "BUNKER_POSTGRES_DSN="+src.DSN("postgres"))
	first := r.mustRun("--json", "backup", "postgres", "--physical").Message(t, "summary")
	src.PSQL(t, "app", `INSERT INTO t VALUES (0, 'second')`)
	second := r.mustRun("--json", "backup", "postgres", "--physical").Message(t, "summary")
	// Unchanged relation files are not stored again.
	if a, b := num(first["data_added"]), num(second["data_added"]); b > a/4 {
		t.Errorf("second base backup added %v bytes, first %v: no deduplication", b, a)
	}
	var list []struct {
		Kind     string            `json:"kind"`
		Metadata map[string]string `json:"metadata"`
	}
	testutil.DecodeMessages(t, r.mustRun("--json", "snapshots").Stdout, "snapshot", &list)
	if len(list) != 2 || list[0].Kind != "full" || list[1].Kind != "incremental" || list[1].Metadata["start_lsn"] == "" || list[1].Metadata["timeline"] != "1" {
		t.Fatalf("snapshots: %+v", list)
	}
	want := pgDump(t, src, "app")

	dst := testsrv.Postgres(t, testsrv.PGOptions{NoInit: true})
	res := r.mustRun("restore", "postgres", "latest", "--physical", "--pgdata", dst.DataDir)
	if !strings.Contains(res.Stderr+res.Stdout, "verified") {
		t.Errorf("restore did not run pg_verifybackup:\n%s", res)
	}
	dst.Start(t)
	if got := pgDump(t, dst, "app"); got != want {
		t.Errorf("restored cluster differs:\n%s", lineDiff(want, got))
	}
	// A corrupted restore is caught by pg_verifybackup.
	dst2 := testsrv.Postgres(t, testsrv.PGOptions{NoInit: true})
	r.mustRun("--json", "restore", "postgres", "latest", "--physical", "--pgdata", dst2.DataDir)
	must(t, os.WriteFile(filepath.Join(dst2.DataDir, "PG_VERSION"), []byte("99\n"), 0o600))
	out, err := exec.Command(filepath.Join(src.Bin, "pg_verifybackup"), "--no-parse-wal", dst2.DataDir).CombinedOutput()
	if err == nil {
		t.Errorf("pg_verifybackup accepted a changed file: %s", out)
	}
	// A non-empty target is refused.
	res = r.expect(1, "restore", "postgres", "latest", "--physical", "--pgdata", dst2.DataDir)
	if !strings.Contains(res.Stderr, "not empty") {
		t.Errorf("restore into a non-empty directory: %s", res)
	}
}

// insertTimed inserts n rows, one per gap, and returns each row's commit
// time as the server saw it.
func insertTimed(t *testing.T, pg *testsrv.PGServer, n int, gap time.Duration) []time.Time {
	t.Helper()
	pg.PSQL(t, "postgres", `CREATE TABLE IF NOT EXISTS ticks (id int PRIMARY KEY, at timestamptz NOT NULL)`)
	var times []time.Time
	for i := 1; i <= n; i++ {
		out := pg.PSQL(t, "postgres", fmt.Sprintf(`INSERT INTO ticks VALUES (%d, clock_timestamp()) RETURNING extract(epoch FROM at)::numeric(20,6)`, i))
		f, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
		if err != nil {
			t.Fatalf("insert: %q", out)
		}
		times = append(times, time.Unix(0, int64(f*1e9)))
		time.Sleep(gap)
	}
	return times
}

func ticks(t *testing.T, pg *testsrv.PGServer) string {
	return pg.PSQL(t, "postgres", "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM ticks")
}

// waitPromoted waits until a recovering server has finished recovery.
func waitPromoted(t *testing.T, pg *testsrv.PGServer) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if pg.PSQL(t, "postgres", "SELECT pg_is_in_recovery()") == "f" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("recovery did not finish; log:\n%s", pg.Log())
}

func TestPostgresPITRArchiveCommand(t *testing.T) {
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
	times := insertTimed(t, src, 8, 400*time.Millisecond)
	lsn := src.PSQL(t, "postgres", "SELECT pg_current_wal_lsn()")
	src.WaitArchived(t)
	list := r.mustRun("--json", "pg", "wal-list")
	var wal []struct {
		Name string `json:"name"`
	}
	testutil.DecodeMessages(t, list.Stdout, "wal", &wal)
	if len(wal) < 2 {
		t.Fatalf("archived WAL: %s", list.Stdout)
	}

	// T between the commits of rows 5 and 6.
	target := times[4].Add(times[5].Sub(times[4]) / 2)
	dst := testsrv.Postgres(t, testsrv.PGOptions{NoInit: true})
	res := r.mustRun("restore", "postgres", "latest", "--physical", "--pgdata", dst.DataDir, "--target-time", target.UTC().Format(time.RFC3339Nano))
	if !strings.Contains(res.Stdout, "recovery is configured") {
		t.Errorf("restore output: %s", res)
	}
	dst.Start(t)
	waitPromoted(t, dst)
	if got := ticks(t, dst); got != "1,2,3,4,5" {
		t.Fatalf("restored to %s: rows %q, want 1..5; log:\n%s", target.Format(time.RFC3339Nano), got, dst.Log())
	}

	// By LSN: everything up to the last insert.
	dst2 := testsrv.Postgres(t, testsrv.PGOptions{NoInit: true})
	r.mustRun("restore", "postgres", "latest", "--physical", "--pgdata", dst2.DataDir, "--target-lsn", lsn, "--wal-dir", filepath.Join(dst2.Dir, "walfetch"))
	dst2.Start(t)
	waitPromoted(t, dst2)
	if got := ticks(t, dst2); got != "1,2,3,4,5,6,7,8" {
		t.Fatalf("restored to LSN %s: rows %q; log:\n%s", lsn, got, dst2.Log())
	}

	// wal-fetch as restore_command, run in the restored data directory.
	seg := wal[len(wal)-1].Name
	out := filepath.Join(dir, "fetched", seg)
	must(t, os.MkdirAll(filepath.Dir(out), 0o777))
	must(t, os.Chmod(filepath.Dir(out), 0o777))
	cmd := r.command(context.Background(), "pg", "wal-fetch", seg, out)
	cmd.Dir = dst2.DataDir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("wal-fetch %s: %v\n%s", seg, err, b)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() != 16<<20 {
		t.Fatalf("fetched segment: %v %v", fi, err)
	}
	// Pushing a segment again (archive_command retried after a crash)
	// is harmless: it stays fetchable, with the same content.
	r.mustRun("pg", "wal-push", out)
	again := filepath.Join(dir, "again")
	cmd = r.command(context.Background(), "pg", "wal-fetch", seg, again)
	cmd.Dir = dst2.DataDir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("wal-fetch after a second push: %v\n%s", err, b)
	}
	a1, _ := os.ReadFile(out)
	a2, _ := os.ReadFile(again)
	if !bytes.Equal(a1, a2) {
		t.Error("the segment pushed twice reads back different")
	}
	cmd = r.command(context.Background(), "pg", "wal-fetch", "00000001000000FF000000FF", out)
	cmd.Dir = dst2.DataDir
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "not in the archive") {
		t.Errorf("fetching a missing segment: %v %s", err, b)
	}

	// WAL retention follows the base backups: a new base backup and
	// forgetting the old one leave the old WAL expirable.
	r.mustRun("backup", "postgres", "--physical", "--wal-method", "none")
	ids := physicalIDs(t, r)
	r.mustRun("forget", ids[0])
	res = r.mustRun("--json", "pg", "wal-expire")
	if n := num(res.Message(t, "summary")["forgotten"]); n < 1 {
		t.Errorf("wal-expire forgot nothing: %s", res)
	}
	r.mustRun("check")
}

func physicalIDs(t *testing.T, r *repo) []string {
	t.Helper()
	var list []struct {
		ID       string            `json:"id"`
		Metadata map[string]string `json:"metadata"`
	}
	testutil.DecodeMessages(t, r.mustRun("--json", "snapshots").Stdout, "snapshot", &list)
	var ids []string
	for _, s := range list {
		if s.Metadata["type"] == "physical" {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

func TestPostgresPITRStreaming(t *testing.T) {
	src := testsrv.Postgres(t, testsrv.PGOptions{})
	r := initRepo(t)
	r.env = append(r.env, "BUNKER_POSTGRES_DSN="+src.DSN("postgres"))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// With --json -v, what it archives is logged as JSON lines on stderr.
	recv := r.command(ctx, "--json", "-v", "pg", "wal-receive", "--interval", "1s", "--spool", filepath.Join(t.TempDir(), "spool"))
	var out, stdout strings.Builder
	recv.Stdout, recv.Stderr = &stdout, &out
	must(t, recv.Start())
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = recv.Process.Signal(syscall.SIGTERM)
			_ = recv.Wait()
		}
	}
	defer stop()
	// The base backup after the receiver streams: its WAL is archived.
	deadline := time.Now().Add(time.Minute)
	for src.PSQL(t, "postgres", "SELECT count(*) FROM pg_stat_replication") == "0" {
		if time.Now().After(deadline) {
			t.Fatalf("wal-receive does not stream:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.mustRun("backup", "postgres", "--physical", "--wal-method", "none")

	times := insertTimed(t, src, 6, 400*time.Millisecond)
	// No segment switch: the last commits are only in the growing
	// segment, archived as a partial one within the interval.
	time.Sleep(2500 * time.Millisecond)
	stop()
	if !strings.Contains(out.String(), "archived") {
		t.Fatalf("wal-receive archived nothing:\n%s", out.String())
	}
	checkJSON(t, recv.Args[1:], stdout.String(), out.String())

	target := times[3].Add(times[4].Sub(times[3]) / 2)
	dst := testsrv.Postgres(t, testsrv.PGOptions{NoInit: true})
	r.mustRun("restore", "postgres", "latest", "--physical", "--pgdata", dst.DataDir, "--target-time", target.Format(time.RFC3339Nano))
	dst.Start(t)
	waitPromoted(t, dst)
	if got := ticks(t, dst); got != "1,2,3,4" {
		t.Fatalf("restored to %s from streamed WAL: rows %q, want 1..4; receiver:\n%s\nlog:\n%s", target, got, out.String(), dst.Log())
	}
}

// lineDiff shows the first line where two texts differ.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, x, y)
		}
	}
	return "(equal)"
}

// TestPostgresDumpDedup: a second dump after 1% of the rows changed adds
// a small fraction of the first. The changed rows are a contiguous key
// range (recent rows change); rows updated at random all over a table
// touch every chunk of its dump, see docs/PERFORMANCE.md.
func TestPostgresDumpDedup(t *testing.T) {
	src := testsrv.Postgres(t, testsrv.PGOptions{})
	src.PSQL(t, "postgres", "CREATE DATABASE bench")
	src.Tool(t, "pgbench", "-i", "-q", "-s", "10", "bench")
	r := initRepo(t)
	r.env = append(r.env, "BUNKER_POSTGRES_DSN="+src.DSN("postgres"))
	first := r.mustRun("--json", "backup", "postgres", "--database", "bench").Message(t, "summary")
	src.PSQL(t, "bench", "UPDATE pgbench_accounts SET abalance = abalance + 7 WHERE aid <= 10000") // 1% of 1,000,000
	second := r.mustRun("--json", "backup", "postgres", "--database", "bench").Message(t, "summary")
	a, b := num(first["data_added"]), num(second["data_added"])
	t.Logf("first dump added %d bytes, second %d (%.1f%%)", a, b, 100*float64(b)/float64(a))
	if b*10 >= a {
		t.Errorf("second dump added %d bytes, first %d: not under 10%%", b, a)
	}
}

// A retention policy keeps the whole WAL archive of a server without a
// physical base backup (logical backups replay no WAL): forgetting any
// of it could break a recovery through it.
func TestForgetPolicyKeepsLogArchives(t *testing.T) {
	src := testsrv.Postgres(t, testsrv.PGOptions{})
	r := initRepo(t)
	r.env = append(r.env, "BUNKER_POSTGRES_DSN="+src.DSN("postgres"))
	dir := t.TempDir()
	for i := 0; i < 3; i++ {
		seg := filepath.Join(dir, fmt.Sprintf("0000000100000000000000%02X", i+1))
		must(t, os.WriteFile(seg, []byte("wal"), 0o600))
		r.mustRun("pg", "wal-push", "--system-id", "42", seg)
	}
	r.mustRun("backup", "postgres")
	r.mustRun("backup", "postgres")
	r.mustRun("forget", "--keep-last", "1")
	var list []struct {
		Kind string `json:"kind"`
	}
	testutil.DecodeMessages(t, r.mustRun("--json", "snapshots").Stdout, "snapshot", &list)
	kinds := map[string]int{}
	for _, s := range list {
		kinds[s.Kind]++
	}
	if kinds["continuous"] != 3 || kinds["full"] != 1 {
		t.Fatalf("after forget --keep-last 1: %v", kinds)
	}
}
