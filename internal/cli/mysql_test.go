package cli_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/cli"
	"github.com/bunkerbackup/bunker/internal/testsrv"
	"github.com/bunkerbackup/bunker/internal/testutil"
	driver "github.com/go-sql-driver/mysql"
)

// mysqlPopulate fills a server with two databases holding what a backup
// must keep: many column types, utf8mb4 text, binary data, NULLs, a view,
// a trigger, a procedure, a function, an event, and an account with
// database, table and role grants.
func mysqlPopulate(t *testing.T, s *testsrv.MariaDBServer) {
	t.Helper()
	blob := randBytes(42, 300<<10)
	s.Exec(t,
		"CREATE DATABASE app CHARACTER SET utf8mb4",
		`CREATE TABLE app.items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) NOT NULL, note TEXT,
			price DECIMAL(10,2), ratio DOUBLE, born DATE, seen DATETIME(6), ts TIMESTAMP NULL, flags BIT(8),
			kind ENUM('a','b'), data BLOB, doc JSON, big BIGINT UNSIGNED, KEY (name))`,
		`INSERT INTO app.items (name, note, price, ratio, born, seen, ts, flags, kind, data, doc, big) VALUES
			('plain', 'a note', 9.99, 0.5, '2024-02-29', '2024-02-29 12:34:56.789012', '2024-03-01 00:00:01', b'10100101', 'a', x'00FF0A27225C0D1A', '{"k": [1, 2]}', 18446744073709551615),
			('ünïcode 😀 中文', 'line1\nline2\ttab \\ backslash '' quote', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
			('empty', '', 0, -1e300, '1000-01-01', '9999-12-31 23:59:59.999999', NULL, b'0', 'b', '', 'null', 0)`,
		"CREATE VIEW app.cheap AS SELECT id, name FROM app.items WHERE price < 10",
		"CREATE TABLE app.audit (id INT AUTO_INCREMENT PRIMARY KEY, item INT, at DATETIME)",
		"CREATE TRIGGER app.items_ai AFTER INSERT ON app.items FOR EACH ROW INSERT INTO app.audit (item, at) VALUES (NEW.id, NOW())",
		"CREATE PROCEDURE app.add_item(IN n VARCHAR(100)) BEGIN INSERT INTO app.items (name) VALUES (n); END",
		"CREATE FUNCTION app.twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
		"CREATE EVENT app.cleanup ON SCHEDULE EVERY 1 DAY DO DELETE FROM app.audit WHERE at < NOW() - INTERVAL 30 DAY",
		"CALL app.add_item('by procedure')",
		"CREATE DATABASE `weird db-ü` CHARACTER SET utf8mb4",
		"CREATE TABLE `weird db-ü`.t (k VARCHAR(20) PRIMARY KEY, v LONGBLOB)",
		"CREATE USER 'bob'@'%' IDENTIFIED BY 'bob pw'",
		"GRANT SELECT, INSERT ON app.* TO 'bob'@'%'",
		"GRANT SELECT ON `weird db-ü`.t TO 'bob'@'%'",
		"CREATE ROLE reader",
		"GRANT SELECT ON app.* TO reader",
		"GRANT reader TO 'bob'@'%'",
	)
	if _, err := s.DB(t).Exec("INSERT INTO `weird db-ü`.t VALUES ('big', ?), ('null', NULL)", blob); err != nil {
		t.Fatal(err)
	}
}

// mysqlDumpText is mariadb-dump's view of databases (data and schema,
// without dates or positions), for comparing servers.
func mysqlDumpText(t *testing.T, s *testsrv.MariaDBServer, dbs ...string) string {
	t.Helper()
	args := []string{"--no-defaults", "--host=127.0.0.1", fmt.Sprintf("--port=%d", s.Port), "--user=root",
		"--skip-dump-date", "--single-transaction", "--routines", "--events", "--triggers", "--hex-blob",
		"--default-character-set=utf8mb4", "--databases"}
	cmd := exec.Command(testsrv.Tool(t, "mariadb-dump", ""), append(args, dbs...)...)
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+s.Password)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mariadb-dump: %v\n%s", err, stderr.String())
	}
	return string(out)
}

func mysqlGrants(t *testing.T, s *testsrv.MariaDBServer, account string) []string {
	t.Helper()
	var out []string
	for _, r := range s.Query(t, "SHOW GRANTS FOR "+account) {
		out = append(out, r[0])
	}
	slices.Sort(out)
	return out
}

func noSnapshots(t *testing.T, e *repoEnv) {
	t.Helper()
	if n := len(e.snapshots()); n != 0 {
		t.Fatalf("a failed backup left %d snapshots", n)
	}
}

// TestMySQLLogicalRoundTrip: a logical backup restored into a fresh
// server dumps the same (data and schema), with the accounts and grants;
// the summary and the snapshot say what they must.
func TestMySQLLogicalRoundTrip(t *testing.T) {
	src := testsrv.MariaDB(t)
	mysqlPopulate(t, src)
	e := initRepo(t)

	sum, r := e.backupJSON(0, "mysql", "--dsn", src.DSN(), "--jobs", "2")
	for _, k := range []string{"bytes_read", "data_added", "duration_seconds"} {
		if v, ok := sum[k].(float64); !ok || v < 0 || k != "duration_seconds" && v == 0 {
			t.Errorf("summary %s = %v", k, sum[k])
		}
	}
	if sum["source"] != "mysql" || sum["kind"] != "full" {
		t.Errorf("summary source/kind: %v %v", sum["source"], sum["kind"])
	}
	list := e.snapshots()
	if len(list) != 1 {
		t.Fatalf("%d snapshots", len(list))
	}
	md, _ := list[0]["metadata"].(map[string]any)
	if md["flavour"] != "mariadb" || !strings.Contains(str(md["server_version"]), "MariaDB") || md["physical"] != "false" ||
		!strings.HasPrefix(str(md["binlog_file"]), "binlog.") || str(md["binlog_pos"]) == "" || str(md["gtid"]) == "" ||
		md["databases"] != "app,weird db-ü" {
		t.Errorf("metadata %v", md)
	}
	if paths, _ := list[0]["paths"].([]any); len(paths) != 1 || paths[0] != "/mysql/"+src.Addr() {
		t.Errorf("paths %v", list[0]["paths"])
	}
	ls := e.mustRun("ls", "latest").Stdout
	for _, f := range []string{"/mysql/app.sql", "/mysql/weird db-ü.sql", "/mysql/_users.sql", "/mysql/backup.json"} {
		if !strings.Contains(ls, f+"\n") {
			t.Errorf("snapshot lacks %s:\n%s", f, ls)
		}
	}
	if strings.Contains(r.Stdout+r.Stderr, "r00t pa") {
		t.Error("the backup printed the password")
	}

	dst := testsrv.MariaDB(t)
	rr := e.mustRun("--json", "restore", "mysql", "latest", "--dsn", dst.DSN())
	if m := rr.Message(t, "summary"); m["users"] != true || len(m["databases"].([]any)) != 2 {
		t.Errorf("restore summary %v", m)
	}
	want, got := mysqlDumpText(t, src, "app", "weird db-ü"), mysqlDumpText(t, dst, "app", "weird db-ü")
	if want != got {
		t.Fatalf("the restored server dumps differently:\n%s", firstDiff(want, got))
	}
	if g, w := mysqlGrants(t, dst, "'bob'@'%'"), mysqlGrants(t, src, "'bob'@'%'"); !slices.Equal(g, w) {
		t.Errorf("bob's grants on the restored server:\n%s\nwant\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
	// bob logs in with his password and reads.
	cfg := driver.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "bob", "bob pw", "tcp", dst.Addr()
	conn, err := driver.NewConnector(cfg)
	must(t, err)
	bob := sql.OpenDB(conn)
	defer bob.Close()
	var n int
	must(t, bob.QueryRow("SELECT COUNT(*) FROM app.items").Scan(&n))
	if n != 4 {
		t.Errorf("bob sees %d items, want 4", n)
	}

	// One database, without the accounts, into a third server.
	one := testsrv.MariaDB(t)
	e.mustRun("restore", "mysql", "latest", "--dsn", one.DSN(), "--database", "weird db-ü", "--no-users")
	if dbs := one.Query(t, "SHOW DATABASES LIKE 'app'"); len(dbs) != 0 {
		t.Error("--database restored another database too")
	}
	if users := one.Query(t, "SELECT user FROM mysql.user WHERE user = 'bob'"); len(users) != 0 {
		t.Error("--no-users restored the accounts")
	}
	if a, b := mysqlDumpText(t, src, "weird db-ü"), mysqlDumpText(t, one, "weird db-ü"); a != b {
		t.Errorf("--database restore differs:\n%s", firstDiff(a, b))
	}
	requireFailure(t, e.run("restore", "mysql", "latest", "--dsn", one.DSN(), "--database", "nosuch"))
	// With the accounts, a grant on a table of a database left out fails
	// alone: the rest is applied, and the exit code says so.
	one.Exec(t, "DROP DATABASE `weird db-ü`")
	r = e.expect(3, "restore", "mysql", "latest", "--dsn", one.DSN(), "--database", "app")
	if !strings.Contains(r.Stderr, "warning: accounts: ERROR 1146") || !strings.Contains(r.Stderr, "1 statement of the accounts file failed") {
		t.Errorf("a partly failing accounts file:\n%s", r)
	}
	if g, w := mysqlGrants(t, one, "'bob'@'%'"), mysqlGrants(t, src, "'bob'@'%'"); len(g) != len(w)-1 {
		t.Errorf("bob's grants after a restore without his table's database:\n%s", strings.Join(g, "\n"))
	}
	e.mustRun("check", "--read-data")
}

func firstDiff(a, b string) string {
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
			return fmt.Sprintf("line %d:\n- %.300s\n+ %.300s", i+1, x, y)
		}
	}
	return "(same)"
}

// runAppCtx runs bunker in-process with a context the test controls.
func runAppCtx(ctx context.Context, e *repoEnv, args ...string) result {
	var stdout, stderr bytes.Buffer
	full := append([]string{"-r", e.repo}, args...)
	app := &cli.App{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: e.getenv}
	code := app.Run(ctx, full)
	r := result{Code: code, Stdout: stdout.String(), Stderr: stderr.String(), Args: full}
	checkJSONRun(e.t, full, r)
	return r
}

// waitNextSecond sleeps until 50 ms into the second after the one t is
// in: binlog event times have whole seconds.
func waitNextSecond(t time.Time) {
	time.Sleep(time.Until(t.Truncate(time.Second).Add(time.Second + 50*time.Millisecond)))
}

func mysqlIDs(t *testing.T, s *testsrv.MariaDBServer, table string) []string {
	t.Helper()
	var out []string
	for _, r := range s.Query(t, "SELECT id FROM "+table+" ORDER BY id") {
		out = append(out, r[0])
	}
	return out
}

// TestMySQLPointInTime: the binlog archiver runs while rows are committed
// a second apart; restores of the logical backup roll every database
// forward from its own dump position to a time between two commits and
// to a binlog position, and hold exactly the rows committed before.
func TestMySQLPointInTime(t *testing.T) {
	src := testsrv.MariaDB(t)
	src.Exec(t,
		"CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, at DATETIME(6))",
		"CREATE DATABASE other", "CREATE TABLE other.t (id INT PRIMARY KEY, at DATETIME(6))",
		"INSERT INTO app.t VALUES (0, NOW(6))", "INSERT INTO other.t VALUES (0, NOW(6))")
	e := initRepo(t)
	e.mustRun("backup", "mysql", "--dsn", src.DSN(), "--jobs", "1")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	archived := make(chan result, 1)
	spool := t.TempDir()
	go func() {
		archived <- runAppCtx(ctx, e, "-v", "mysql", "binlog-archive", "--dsn", src.DSN(), "--interval", "200ms", "--spool-dir", spool)
	}()

	var target time.Time
	var pos2 string
	last := time.Now()
	for id := 1; id <= 4; id++ {
		waitNextSecond(last)
		src.Exec(t, fmt.Sprintf("INSERT INTO app.t VALUES (%d, NOW(6))", id), fmt.Sprintf("INSERT INTO other.t VALUES (%d, NOW(6))", id))
		last = time.Now()
		switch id {
		case 2:
			st := src.Query(t, "SHOW MASTER STATUS")
			pos2 = st[0][0] + ":" + st[0][1]
		case 3:
			target = last
		}
	}
	// Wait until the archive has the last commit's events.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var rows []map[string]any
		out := e.mustRun("--json", "mysql", "binlogs").Stdout
		testutil.DecodeMessages(t, out, "binlog", &rows)
		done := false
		for _, r := range rows {
			if le, err := time.Parse(time.RFC3339, str(r["last_event"])); err == nil && !le.Before(last.Truncate(time.Second)) {
				done = true
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the archive does not reach %v after 30 s:\n%s\narchiver: %s", last, out, <-archived)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	ar := <-archived
	if ar.Code != 0 {
		t.Fatalf("the archiver did not stop cleanly:\n%s", ar)
	}
	if !strings.Contains(ar.Stdout, "(partial,") {
		t.Errorf("the archiver pushed no growing file:\n%s", ar)
	}

	dst := testsrv.MariaDB(t)
	e.mustRun("restore", "mysql", "latest", "--dsn", dst.DSN(), "--target-time", target.Format(time.RFC3339Nano))
	for _, table := range []string{"app.t", "other.t"} {
		if got := mysqlIDs(t, dst, table); !slices.Equal(got, []string{"0", "1", "2", "3"}) {
			t.Errorf("%s after a restore to %v holds %v, want 0–3", table, target, got)
		}
	}

	// --once completes the active file; then a restore to a position.
	e.mustRun("--json", "mysql", "binlog-archive", "--once", "--dsn", src.DSN(), "--spool-dir", spool)
	list := e.mustRun("mysql", "binlogs").Stdout
	if !strings.Contains(list, "complete") || !strings.Contains(list, "/mysql/"+src.Addr()+"/binlog") {
		t.Errorf("binlogs:\n%s", list)
	}
	dst.Exec(t, "DROP DATABASE app", "DROP DATABASE other")
	e.mustRun("restore", "mysql", "latest", "--dsn", dst.DSN(), "--target-position", pos2)
	for _, table := range []string{"app.t", "other.t"} {
		if got := mysqlIDs(t, dst, table); !slices.Equal(got, []string{"0", "1", "2"}) {
			t.Errorf("%s after a restore to %s holds %v, want 0–2", table, pos2, got)
		}
	}

	// A target the archive does not reach fails before anything is loaded.
	dst.Exec(t, "DROP DATABASE app")
	r := e.run("restore", "mysql", "latest", "--dsn", dst.DSN(), "--target-time", time.Now().Add(time.Hour).Format(time.RFC3339))
	requireFailure(t, r)
	if !strings.Contains(r.Stderr, "binlog archive of this server ends at") {
		t.Errorf("no clear error for a target past the archive:\n%s", r)
	}
	if dbs := dst.Query(t, "SHOW DATABASES LIKE 'app'"); len(dbs) != 0 {
		t.Error("a failing point-in-time restore loaded the dump")
	}
	r = e.run("restore", "mysql", "latest", "--dsn", dst.DSN(), "--target-time", "2001-01-01 00:00:00")
	if r.Code == 0 || !strings.Contains(r.Stderr, "before the backup") {
		t.Errorf("a target before the backup:\n%s", r)
	}

	// Expiry forgets the superseded copies of the growing file and keeps
	// every copy a restore reads.
	continuous := func() (n int) {
		for _, s := range e.snapshots() {
			if s["kind"] == "continuous" {
				n++
			}
		}
		return n
	}
	before, listed := continuous(), e.mustRun("--json", "mysql", "binlogs").Stdout
	e.mustRun("mysql", "binlog-expire")
	if after := continuous(); after >= before {
		t.Errorf("binlog-expire kept all %d archive snapshots", before)
	}
	if again := e.mustRun("--json", "mysql", "binlogs").Stdout; again != listed {
		t.Errorf("binlog-expire changed what a restore reads:\n%s\nnow\n%s", listed, again)
	}
	e.mustRun("check")
}

// TestMySQLPhysicalRoundTrip: a mariadb-backup copy restored into an
// empty directory is a data directory a server starts on, with the data.
func TestMySQLPhysicalRoundTrip(t *testing.T) {
	testsrv.Tool(t, "mariadb-backup", "")
	src := testsrv.MariaDB(t)
	mysqlPopulate(t, src)
	e := initRepo(t)
	sum, _ := e.backupJSON(0, "mysql", "--dsn", src.DSN(), "--physical")
	md, _ := sum["metadata"].(map[string]any)
	if md["physical"] != "true" || !strings.HasPrefix(str(md["binlog_file"]), "binlog.") || str(md["gtid"]) == "" {
		t.Errorf("metadata %v", md)
	}
	dir := filepath.Join(testsrv.MariaDBDir(t), "data")
	e.mustRun("restore", "mysql", "latest", "--physical", "--datadir", dir)
	dst := testsrv.MariaDBWith(t, testsrv.MariaDBOptions{DataDir: dir})
	if a, b := mysqlDumpText(t, src, "app", "weird db-ü"), mysqlDumpText(t, dst, "app", "weird db-ü"); a != b {
		t.Fatalf("the restored data directory dumps differently:\n%s", firstDiff(a, b))
	}
	// Not into a directory that has files.
	r := e.run("restore", "mysql", "latest", "--physical", "--datadir", dir)
	if r.Code == 0 || !strings.Contains(r.Stderr, "not empty") {
		t.Errorf("restore into a full directory:\n%s", r)
	}
	// A logical restore of a physical backup says what to do.
	r = e.run("restore", "mysql", "latest", "--dsn", dst.DSN())
	if r.Code == 0 || !strings.Contains(r.Stderr, "--physical") {
		t.Errorf("logical restore of a physical backup:\n%s", r)
	}
}

// TestMySQLFailures: a server killed mid-dump, a wrong password, a
// missing tool and a missing database fail the backup with the cause, and
// leave no snapshot and a clean repository.
func TestMySQLFailures(t *testing.T) {
	src := testsrv.MariaDB(t)
	src.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.a_big (id INT PRIMARY KEY, v LONGBLOB)", "CREATE TABLE app.t (id INT)")
	for i := 0; i < 4; i++ {
		if _, err := src.DB(t).Exec("INSERT INTO app.a_big VALUES (?, ?)", i, randBytes(uint64(i), 512<<10)); err != nil {
			t.Fatal(err)
		}
	}
	e := initRepo(t)

	t.Run("wrong password", func(t *testing.T) {
		dsn := strings.Replace(src.DSN(), "r00t", "WRONGPASSWORD", 1)
		r := e.run("backup", "mysql", "--dsn", dsn)
		if r.Code != 1 || !strings.Contains(r.Stderr, "Access denied for user 'root'") {
			t.Errorf("wrong password:\n%s", r)
		}
		if strings.Contains(r.Stderr+r.Stdout, "WRONGPASSWORD") {
			t.Errorf("the error shows the password:\n%s", r)
		}
		noSnapshots(t, e)
	})
	t.Run("missing tool", func(t *testing.T) {
		empty := t.TempDir()
		r := e.run("backup", "mysql", "--dsn", src.DSN(), "--tool-dir", empty)
		if r.Code != 1 || !strings.Contains(r.Stderr, "mariadb-dump or mysqldump not found in "+empty) {
			t.Errorf("missing tool:\n%s", r)
		}
		noSnapshots(t, e)
	})
	t.Run("missing database", func(t *testing.T) {
		r := e.run("backup", "mysql", "--dsn", src.DSN(), "--database", "nosuch")
		if r.Code != 1 || !strings.Contains(r.Stderr, `database "nosuch" does not exist`) {
			t.Errorf("missing database:\n%s", r)
		}
		noSnapshots(t, e)
	})
	t.Run("server killed mid-dump", func(t *testing.T) {
		// A session holds a write lock on app.t: the dump streams a_big
		// and then waits for t until the server dies under it.
		conn, err := src.DB(t).Conn(context.Background())
		must(t, err)
		defer conn.Close()
		_, err = conn.ExecContext(context.Background(), "LOCK TABLES app.t WRITE")
		must(t, err)
		res := make(chan result, 1)
		go func() { res <- e.run("backup", "mysql", "--dsn", src.DSN()) }()
		deadline := time.Now().Add(30 * time.Second)
		for {
			rows := src.Query(t, "SELECT COUNT(*) FROM information_schema.processlist WHERE state LIKE 'Waiting for table metadata lock' AND info LIKE '%FROM `t`%'")
			if rows[0][0] != "0" {
				break
			}
			select {
			case r := <-res:
				t.Fatalf("the backup ended before the server was killed:\n%s", r)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatal("the dump never got to the locked table")
			}
			time.Sleep(20 * time.Millisecond)
		}
		src.Kill()
		r := <-res
		if r.Code != 1 || !strings.Contains(r.Stderr, "mariadb-dump failed") || !strings.Contains(r.Stderr, "Lost connection") ||
			!strings.Contains(r.Stderr, "no snapshot saved") {
			t.Errorf("a dump cut by a dead server:\n%s", r)
		}
		noSnapshots(t, e)
		e.mustRun("check", "--read-data")
	})
	t.Run("server gone under the binlog archiver", func(t *testing.T) {
		src.Start(t)
		res := make(chan result, 1)
		go func() {
			res <- e.run("-v", "mysql", "binlog-archive", "--dsn", src.DSN(), "--interval", "100ms", "--spool-dir", t.TempDir())
		}()
		deadline := time.Now().Add(30 * time.Second)
		for len(e.snapshots()) == 0 {
			select {
			case r := <-res:
				t.Fatalf("the archiver stopped early:\n%s", r)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatal("the archiver pushed nothing in 30 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
		src.Kill()
		r := <-res
		if r.Code != 1 || !strings.Contains(r.Stderr, "copying the binary log stopped") && !strings.Contains(r.Stderr, "SHOW MASTER STATUS") {
			t.Errorf("the archiver on a dead server:\n%s", r)
		}
		e.mustRun("check")
	})
}

// TestMySQLSecrets: the tools never see the password on their command
// line (it reaches them in a 0600 option file that is their first option
// and is gone afterwards), and neither the snapshots nor error messages
// show it — whether it came from the DSN, a file or MYSQL_PWD.
func TestMySQLSecrets(t *testing.T) {
	testsrv.Tool(t, "mariadb-backup", "")
	src := testsrv.MariaDB(t)
	src.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)")
	// Wrappers that log their arguments and the option file's mode.
	tools := t.TempDir()
	log := filepath.Join(t.TempDir(), "calls.log")
	for _, name := range []string{"mariadb-dump", "mariadb", "mariadb-binlog", "mariadb-backup", "mbstream"} {
		real := testsrv.Tool(t, name, "")
		script := fmt.Sprintf(`#!/bin/sh
printf '%%s\n' "%s $*" >> %s
case "$1" in --defaults-extra-file=*) stat -c 'optfile %%a %%n' "${1#--defaults-extra-file=}" >> %s;; esac
exec %s "$@"
`, name, log, log, real)
		must(t, os.WriteFile(filepath.Join(tools, name), []byte(script), 0o755))
	}
	e := initRepo(t)
	noPw := strings.Replace(src.DSN(), ":"+strings.SplitN(strings.TrimPrefix(src.DSN(), "mysql://root:"), "@", 2)[0], "", 1)
	if strings.Contains(noPw, "r00t") {
		t.Fatalf("could not strip the password from %s", noPw)
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	must(t, os.WriteFile(pwFile, []byte(src.Password+"\n"), 0o600))

	e.mustRun("backup", "mysql", "--dsn", src.DSN(), "--tool-dir", tools)
	e.mustRun("backup", "mysql", "--dsn", noPw, "--db-password-file", pwFile, "--tool-dir", tools)
	e.env["MYSQL_PWD"] = src.Password
	e.mustRun("backup", "mysql", "--dsn", noPw, "--tool-dir", tools, "--physical")
	e.mustRun("mysql", "binlog-archive", "--once", "--dsn", noPw, "--tool-dir", tools, "--spool-dir", t.TempDir())
	delete(e.env, "MYSQL_PWD")
	st := src.Query(t, "SHOW MASTER STATUS")
	dst := testsrv.MariaDB(t)
	list := e.snapshots()
	var logical string
	for _, s := range list {
		if md, _ := s["metadata"].(map[string]any); md["physical"] == "false" {
			logical = str(s["id"])
		}
	}
	e.mustRun("restore", "mysql", logical, "--dsn", dst.DSN(), "--tool-dir", tools, "--target-position", st[0][0]+":"+st[0][1])

	calls, err := os.ReadFile(log)
	must(t, err)
	for _, name := range []string{"mariadb-dump", "mariadb ", "mariadb-binlog", "mariadb-backup"} {
		if !bytes.Contains(calls, []byte(name)) {
			t.Errorf("%s was never called:\n%s", name, calls)
		}
	}
	var optFiles []string
	for _, line := range strings.Split(strings.TrimSpace(string(calls)), "\n") {
		if strings.Contains(line, "r00t") {
			t.Errorf("the password is on a command line: %s", line)
		}
		if f, ok := strings.CutPrefix(line, "optfile "); ok {
			mode, path, _ := strings.Cut(f, " ")
			if mode != "600" {
				t.Errorf("option file %s has mode %s", path, mode)
			}
			optFiles = append(optFiles, path)
			continue
		}
		name, args, _ := strings.Cut(line, " ")
		// Tools that reach the server get the option file first.
		if name != "mbstream" && !strings.Contains(args, "--no-defaults") && !strings.Contains(args, "--prepare") &&
			!strings.HasPrefix(args, "--defaults-extra-file=") {
			t.Errorf("%s does not get the option file first: %s", name, args)
		}
	}
	if len(optFiles) < 5 {
		t.Errorf("only %d option files seen:\n%s", len(optFiles), calls)
	}
	for _, f := range optFiles {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("option file %s is still there", f)
		}
	}
	out := e.mustRun("--json", "snapshots").Stdout + e.mustRun("snapshots").Stdout
	if strings.Contains(out, "r00t") {
		t.Errorf("the snapshots show the password:\n%s", out)
	}
	// Errors: a DSN that does not parse, and a server that refuses.
	r := e.run("backup", "mysql", "--dsn", strings.Replace(src.DSN(), fmt.Sprint(src.Port), "notaport", 1))
	requireFailure(t, r)
	if strings.Contains(r.Stderr, "r00t") || strings.Contains(r.Stderr, "w'rd") {
		t.Errorf("the error shows the password:\n%s", r)
	}
	src.Stop(t)
	r = e.run("backup", "mysql", "--dsn", src.DSN())
	requireFailure(t, r)
	if strings.Contains(r.Stderr, "r00t") {
		t.Errorf("the error shows the password:\n%s", r)
	}
}
