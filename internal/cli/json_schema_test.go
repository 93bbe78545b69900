package cli_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/cli"
	"github.com/bunkerbackup/bunker/internal/testutil"
)

// readSchema parses the table of docs/JSON.md.
func readSchema(t *testing.T) testutil.JSONSchema {
	t.Helper()
	schema, err := testutil.LoadJSONSchema("../../docs/JSON.md")
	if err != nil {
		t.Fatal(err)
	}
	return schema
}

// TestJSONSchema runs the repository commands with --json and checks
// every line against docs/JSON.md: stdout holds only JSON objects whose
// message_type the table lists for that command, with every field it
// names; errors and warnings go to stderr as JSON lines.
func TestJSONSchema(t *testing.T) {
	schema := readSchema(t)
	e := newRepoEnv(t, filepath.Join(t.TempDir(), "repo"))
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "a.txt"), []byte("alpha"))
	writeFile(t, filepath.Join(src, "sub", "b.txt"), []byte("bravo"))
	other := newRepoEnv(t, filepath.Join(t.TempDir(), "other"))
	dst := filepath.Join(t.TempDir(), "restored")
	// An archived WAL segment (its name is what counts) gives pg info a server.
	seg := filepath.Join(t.TempDir(), "000000010000000000000003")
	writeFile(t, seg, []byte("not really WAL"))
	spool := filepath.Join(t.TempDir(), "spool")
	seen := map[[2]string]bool{}
	for _, c := range []struct {
		env     *repoEnv
		command string
		args    []string
		code    int
	}{
		{e, "version", []string{"version"}, 0},
		{e, "init", []string{"--insecure-kdf-for-tests", "init"}, 0},
		{other, "init", []string{"--insecure-kdf-for-tests", "init"}, 0},
		{e, "backup", []string{"backup", src}, 0},
		{e, "backup", []string{"-vv", "backup", src}, 0},
		{e, "backup", []string{"backup", src, filepath.Join(src, "missing")}, 1},
		{e, "snapshots", []string{"snapshots"}, 0},
		{e, "snapshots", []string{"snapshots", "--group-by", "host"}, 0},
		{e, "ls", []string{"ls", "latest"}, 0},
		{e, "find", []string{"find", "*.txt"}, 0},
		{e, "diff", []string{"diff", "latest", "latest"}, 0},
		{e, "stats", []string{"stats"}, 0},
		{e, "backup", []string{"pg", "wal-push", "--system-id", "42", seg}, 0}, // a backup's summary line
		{e, "pg info", []string{"pg", "info"}, 0},
		{e, "pg wal-push --spool", []string{"pg", "wal-push", "--system-id", "42", "--spool", spool, seg}, 0},
		{e, "pg wal-spool", []string{"pg", "wal-spool", "--once", spool}, 0},
		{e, "pg info", []string{"pg", "info", "--spool", spool}, 0},
		{e, "check", []string{"check", "--read-data"}, 0},
		{e, "restore", []string{"restore", "latest", "--target", dst}, 0},
		{e, "key list", []string{"key", "list"}, 0},
		{e, "tag", []string{"tag", "--add", "x"}, 0},
		{e, "list", []string{"list", "snapshots"}, 0},
		{e, "list", []string{"list", "blobs"}, 0},
		{e, "rewrite", []string{"rewrite", "--exclude", "*/b.txt", "--forget"}, 0},
		{e, "forget", []string{"forget", "--keep-last", "1"}, 0},
		{e, "prune", []string{"prune"}, 0},
		{e, "repair index", []string{"repair", "index"}, 0},
		{e, "repair maint", []string{"repair", "maint"}, 0},
		{other, "copy", []string{"copy", "--from-repo", e.repo}, 0},
		{e, "snapshots", []string{"snapshots", "--nope"}, 1},
	} {
		c.env.env["BUNKER_FROM_PASSWORD"] = testPassword
		r := c.env.expect(c.code, append([]string{"--json"}, c.args...)...)
		schema.CheckLines(t, seen, c.command, c.args, r.Stdout, r.Stderr)
	}
	var unseen []string
	for k := range schema {
		if !seen[k] && slices.Contains([]string{"backup", "snapshots", "restore", "check", "forget", "copy", "tag", "list", "rewrite", "any"}, k[0]) && k[1] != "status" {
			unseen = append(unseen, k[0]+" "+k[1])
		}
	}
	if len(unseen) > 0 {
		slices.Sort(unseen)
		t.Logf("documented lines not produced here: %v", unseen)
	}
}

// TestJSONSchemaPlansAndArchives does for the plan commands (plan
// validate, run, drill, status) and the commands of the log archives and
// keys what TestJSONSchema does for the rest: every line they print with
// --json is one docs/JSON.md lists, with its fields. (Every other run
// with --json, in any test, is checked against the same table by the
// harness: checkJSONRun; TestMain fails when a command never ran so.)
func TestJSONSchemaPlansAndArchives(t *testing.T) {
	schema := readSchema(t)
	seen := map[[2]string]bool{}
	pe := newPlanEnv(t, `  - name: home
    source: {type: files, paths: ["${SRC}"]}
    schedule: "0 2 * * *"
    repository: main
    rpo: 26h
drills:
  - name: home-weekly
    job: home
    schedule: "0 5 * * 0"
`)
	for _, c := range []struct {
		command string
		args    []string
	}{
		{"plan validate", []string{"plan", "validate", pe.plan}},
		{"run", []string{"run", "--plan", pe.plan, "home"}},
		{"drill", []string{"drill", "--plan", pe.plan, "home-weekly"}},
		{"status", []string{"status", "--plan", pe.plan}},
	} {
		r := pe.run(append([]string{"--json", "--insecure-kdf-for-tests"}, c.args...)...)
		if r.Code != 0 && r.Code != 4 { // 4: status found an objective violated (3-2-1 with one copy)
			t.Fatalf("bunker --json %s: exit %d\n%s", strings.Join(c.args, " "), r.Code, r)
		}
		schema.CheckLines(t, seen, c.command, c.args, r.Stdout, r.Stderr)
	}
	e := pe.main
	e.env["BUNKER_NEW_PASSWORD"] = "another password"
	for _, c := range []struct {
		command string
		args    []string
	}{
		{"key add", []string{"--insecure-kdf-for-tests", "key", "add"}},
		{"repair snapshots", []string{"repair", "snapshots", "--dry-run"}},
		{"pg wal-list", []string{"pg", "wal-list"}},
		{"pg wal-expire", []string{"pg", "wal-expire", "--dry-run"}},
		{"mysql binlogs", []string{"mysql", "binlogs"}},
		{"mysql binlog-expire", []string{"mysql", "binlog-expire", "--dry-run"}},
		{"mongodb oplog-expire", []string{"mongodb", "oplog-expire", "--dry-run"}},
		{"forget", []string{"forget", "--keep-last", "5", "--dry-run"}},
	} {
		r := e.expect(0, append([]string{"--json"}, c.args...)...)
		schema.CheckLines(t, seen, c.command, c.args, r.Stdout, r.Stderr)
	}
	for _, want := range [][2]string{{"plan validate", "summary"}, {"run", "summary"}, {"drill", "drill"}, {"status", "plan_status"},
		{"key add", "key_added"}, {"repair snapshots", "summary"}, {"pg wal-expire", "summary"}, {"mysql binlog-expire", "summary"}, {"mongodb oplog-expire", "summary"}} {
		if !seen[want] {
			t.Errorf("bunker --json %s printed no %s line", want[0], want[1])
		}
	}
}

// jsonRuns holds the path of every command a test ran with --json (and
// whose lines checkJSONRun checked).
var jsonRuns testutil.JSONRuns

// checkJSONRun checks, when args has --json, every line the run printed
// against docs/JSON.md, whatever test ran it: so every command a test
// runs with --json, database, cluster, FUSE and service commands
// included, is held to the table.
func checkJSONRun(t *testing.T, args []string, r result) {
	t.Helper()
	jsonRuns.Check(t, "../../docs/JSON.md", args, cli.CommandPath, r.Stdout, r.Stderr)
}
