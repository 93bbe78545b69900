package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/testutil"
)

// planEnv is a plan with two local repositories (main and copy) and a
// source tree, run in-process.
type planEnv struct {
	t          *testing.T
	dir        string
	plan       string
	src        string
	main, copy *repoEnv
	env        map[string]string
}

func newPlanEnv(t *testing.T, jobs string) *planEnv {
	t.Helper()
	dir := t.TempDir()
	pe := &planEnv{t: t, dir: dir, src: filepath.Join(dir, "src")}
	writeFiles(t, pe.src, map[string]string{"a.txt": "alpha", "sub/b.txt": "bravo"})
	pe.main = initRepo(t)
	pe.copy = initRepo(t)
	pe.env = map[string]string{"MAIN_PW": testPassword, "COPY_PW": testPassword, "SRC": pe.src, "DIR": dir,
		"MAIN": pe.main.repo, "COPY": pe.copy.repo}
	pe.plan = filepath.Join(dir, "plan.yaml")
	content := `repositories:
  - name: main
    location: ${MAIN}
    password: env:MAIN_PW
    site: onsite
    medium: disk
  - name: copy
    location: ${COPY}
    password: env:COPY_PW
    site: offsite
    medium: object
jobs:
` + jobs
	if err := os.WriteFile(pe.plan, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return pe
}

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (pe *planEnv) run(args ...string) result {
	pe.t.Helper()
	return runApp(pe.t, strings.NewReader(""), func(k string) string { return pe.env[k] }, args...)
}

func (pe *planEnv) snapshotsTagged(r *repoEnv, tag string) int {
	pe.t.Helper()
	n := 0
	for _, s := range r.snapshots() {
		tags, _ := s["tags"].([]any)
		for _, x := range tags {
			if x == tag {
				n++
			}
		}
	}
	return n
}

func TestRunJob(t *testing.T) {
	pe := newPlanEnv(t, `  - name: home
    source: {type: files, paths: ["${SRC}"], exclude: ["*.tmp"]}
    schedule: every 1h
    repository: main
    copies:
      - repository: copy
        retention: {keep_last: 1}
    retention: {keep_last: 2, prune: true}
    hooks:
      before: [{command: "echo before >> ${DIR}/hooks.log"}]
      after: [{command: "echo after $BUNKER_RESULT >> ${DIR}/hooks.log"}]
      on_failure: [{command: "echo failure >> ${DIR}/hooks.log"}]
  - name: broken
    source: {type: files, paths: ["${DIR}/missing"]}
    schedule: every 1h
    repository: main
    retries: {attempts: 1, backoff: 10ms}
    hooks:
      on_failure: [{command: "echo failure $BUNKER_JOB >> ${DIR}/hooks.log"}]
  - name: slow-hook
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
    hooks:
      before: [{command: "sleep 30", timeout: 300ms}]
`)
	testutil.Expect(t, pe.run("plan", "validate", pe.plan), 0)
	for i := 0; i < 3; i++ {
		writeFiles(t, pe.src, map[string]string{"c.txt": fmt.Sprint("round ", i)})
		res := testutil.Expect(t, pe.run("--json", "run", "--plan", pe.plan, "home"), 0)
		sum := res.Message(t, "summary")
		if sum["snapshot_id"] == "" || sum["copies"].(map[string]any)["copy"] != "ok" {
			t.Fatalf("run %d: %v", i, sum)
		}
	}
	if n := pe.snapshotsTagged(pe.main, "job=home"); n != 2 {
		t.Errorf("main keeps %d snapshots of home, want 2 (keep_last 2)", n)
	}
	if n := pe.snapshotsTagged(pe.copy, "job=home"); n != 1 {
		t.Errorf("copy keeps %d snapshots of home, want 1", n)
	}
	pe.copy.mustRun("check", "--read-data")

	start := time.Now()
	res := testutil.Expect(t, pe.run("run", "--plan", pe.plan, "broken"), 1)
	if !strings.Contains(res.Stdout+res.Stderr, "failed after 2 attempt(s)") {
		t.Errorf("broken job: %s", res)
	}
	res = testutil.Expect(t, pe.run("run", "--plan", pe.plan, "slow-hook"), 1)
	if !strings.Contains(res.Stdout+res.Stderr, "killed after its timeout") || time.Since(start) > 20*time.Second {
		t.Errorf("a hanging hook was not killed at its timeout: %s", res)
	}
	hooks, _ := os.ReadFile(filepath.Join(pe.dir, "hooks.log"))
	want := strings.Repeat("before\nafter success\n", 3) + "failure broken\nfailure broken\n"
	if string(hooks) != want {
		t.Errorf("hooks ran:\n%s\nwant:\n%s", hooks, want)
	}
	res = testutil.Expect(t, pe.run("run", "--plan", pe.plan, "nope"), 1)
	if !strings.Contains(res.Stderr, `no job "nope"`) {
		t.Errorf("unknown job: %s", res)
	}
}

func TestPlanValidateErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(p, []byte("repositories:\n  - name: r\n    locaton: /x\n    password: hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := testutil.Expect(t, runApp(t, strings.NewReader(""), func(string) string { return "" }, "plan", "validate", p), 1)
	for _, want := range []string{p + `:3:5: unknown key "locaton" in repository (did you mean location?)`, p + ":4:15: password is not a secret reference"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("missing %q in:\n%s", want, res.Stderr)
		}
	}
	if strings.Contains(res.Stderr, "hunter2") {
		t.Errorf("the secret was printed:\n%s", res.Stderr)
	}
	res = testutil.Expect(t, runApp(t, strings.NewReader(""), func(string) string { return "" }, "--json", "plan", "validate", p), 1)
	found := false
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("--json line %q: %v", line, err)
		}
		if m["message_type"] == "plan_error" && m["line"] == float64(3) && m["column"] == float64(5) && m["hint"] == "did you mean location?" {
			found = true
		}
	}
	if !found {
		t.Errorf("--json lacks the unknown key error: %s", res.Stdout)
	}
}

// TestStatus321 and RPO: datasets with 1, 2 and 3 copies (the live data
// plus 0, 1 and 2 backups) get exactly the missing rules reported; an
// RPO turns at risk and then violated as time passes.
func TestStatus321(t *testing.T) {
	pe := newPlanEnv(t, `  - name: none
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
    rpo: 1h
  - name: one
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
    rpo: 1h
  - name: two
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
    copies: [{repository: copy}]
    rpo: 1h
`)
	testutil.Expect(t, pe.run("run", "--plan", pe.plan, "one"), 0)
	testutil.Expect(t, pe.run("run", "--plan", pe.plan, "two"), 0)
	res := testutil.Expect(t, pe.run("--json", "status", "--plan", pe.plan), 4)
	var st struct {
		Jobs []struct {
			Name     string `json:"name"`
			RPOState string `json:"rpo_state"`
		} `json:"jobs"`
		Datasets []struct {
			Job     string   `json:"job"`
			Copies  int      `json:"copies"`
			Missing []string `json:"missing"`
			OK      bool     `json:"ok"`
		} `json:"datasets"`
		Violations []string `json:"violations"`
	}
	line := strings.SplitN(strings.TrimSpace(res.Stdout), "\n", 2)[0]
	if err := json.Unmarshal([]byte(line), &st); err != nil {
		t.Fatalf("%v: %s", err, res.Stdout)
	}
	want := map[string][]string{
		"none": {"3 copies: have 1 (the live data and 0 backup(s))", "2 media: none recorded", "1 offsite: have 0"},
		"one":  {"3 copies: have 2 (the live data and 1 backup(s))", "2 media: only disk", "1 offsite: have 0"},
		"two":  nil,
	}
	for _, d := range st.Datasets {
		if strings.Join(d.Missing, "|") != strings.Join(want[d.Job], "|") || d.OK != (want[d.Job] == nil) {
			t.Errorf("dataset %s: copies %d, missing %q, want %q", d.Job, d.Copies, d.Missing, want[d.Job])
		}
	}
	states := map[string]string{}
	for _, j := range st.Jobs {
		states[j.Name] = j.RPOState
	}
	if states["none"] != "violated" || states["one"] != "ok" || states["two"] != "ok" {
		t.Errorf("RPO states now: %v", states)
	}
	// 50 minutes on: at risk; 2 hours on: violated.
	for _, c := range []struct {
		after time.Duration
		state string
	}{{50 * time.Minute, "at_risk"}, {2 * time.Hour, "violated"}} {
		at := time.Now().Add(c.after).UTC().Format(time.RFC3339)
		res := pe.run("--json", "status", "--plan", pe.plan, "--at", at)
		if !strings.Contains(res.Stdout, `"name":"two"`) || !strings.Contains(res.Stdout, `"rpo_state":"`+c.state+`"`) {
			t.Errorf("after %s: %s", c.after, res.Stdout)
		}
	}
	// Text output names the missing rules; the exit code gates checks.
	res = testutil.Expect(t, pe.run("status", "--plan", pe.plan), 4)
	if !strings.Contains(res.Stdout, "missing 3 copies: have 2") || !strings.Contains(res.Stdout, "VIOLATED") {
		t.Errorf("text status:\n%s", res.Stdout)
	}
	// An unreachable repository: the job is at risk, not ok.
	pe.env["MAIN"] = filepath.Join(pe.dir, "gone")
	res = testutil.Expect(t, pe.run("--json", "status", "--plan", pe.plan), 4)
	if !strings.Contains(res.Stdout, `"reachable":false`) || !strings.Contains(res.Stdout, `"rpo_state":"at_risk"`) {
		t.Errorf("unreachable repository: %s", res.Stdout)
	}
}

func TestDrillCommand(t *testing.T) {
	pe := newPlanEnv(t, `  - name: home
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
    rto: 1h
drills:
  - name: good
    job: home
    validate:
      checks: [{command: "find . -name a.txt -exec cat {} +", expect: alpha}]
  - name: bad
    job: home
    validate:
      checks: [{command: "find . -name a.txt -exec cat {} +", expect: omega}]
`)
	res := testutil.Expect(t, pe.run("drill", "--plan", pe.plan, "good"), 1)
	if !strings.Contains(res.Stdout, "drill good FAILED") || !strings.Contains(res.Stdout, "no snapshot") {
		t.Errorf("drill before any backup: %s", res)
	}
	testutil.Expect(t, pe.run("run", "--plan", pe.plan, "home"), 0)
	res = testutil.Expect(t, pe.run("drill", "--plan", pe.plan, "good"), 0)
	if !strings.Contains(res.Stdout, "drill good passed") || !strings.Contains(res.Stdout, "RTO 1h0m0s: met") {
		t.Errorf("good drill: %s", res)
	}
	res = testutil.Expect(t, pe.run("--json", "drill", "--plan", pe.plan, "home"), 1)
	if !strings.Contains(res.Stdout, `"drill":"good"`) || !strings.Contains(res.Stdout, `printed \"alpha\", want \"omega\"`) {
		t.Errorf("drills of a job: %s", res)
	}
}

// TestRunCopyOutcomes: a copy says how it went, per repository: done, an
// air-gapped repository skipped because it is not attached, or why it
// failed (and the run is then partial).
func TestRunCopyOutcomes(t *testing.T) {
	pe := newPlanEnv(t, "")
	pe.env["VAULT"] = filepath.Join(pe.dir, "unplugged")
	pe.env["GONE"] = filepath.Join(pe.dir, "gone")
	content := `repositories:
  - name: main
    location: ${MAIN}
    password: env:MAIN_PW
  - name: copy
    location: ${COPY}
    password: env:COPY_PW
  - name: vault
    location: ${VAULT}
    password: env:COPY_PW
    airgapped: true
  - name: gone
    location: ${GONE}
    password: env:COPY_PW
jobs:
  - name: home
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
    copies: [{repository: copy, retention: {keep_last: 1}}, {repository: vault}, {repository: gone}]
`
	if err := os.WriteFile(pe.plan, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	res := testutil.Expect(t, pe.run("--json", "run", "--plan", pe.plan, "home"), 3)
	copies, _ := res.Message(t, "summary")["copies"].(map[string]any)
	vault, _ := copies["vault"].(string)
	gone, _ := copies["gone"].(string)
	if copies["copy"] != "ok" || !strings.HasPrefix(vault, "skipped: not attached (") ||
		!strings.HasPrefix(gone, "failed: target: ") || !strings.Contains(gone, "does not exist") {
		t.Errorf("copies: %v", copies)
	}
	if n := pe.snapshotsTagged(pe.copy, "job=home"); n != 1 {
		t.Errorf("copy holds %d snapshots of home, want 1", n)
	}
}

// TestRunFilesSourceKeys: a files job takes the backup flags borgmatic and
// restic users set in their configuration: files_from, exclude_file,
// exclude_caches, exclude_if_present (checked in the snapshot) and
// one_file_system (accepted; the temp tree has no mount point to stop at).
func TestRunFilesSourceKeys(t *testing.T) {
	pe := newPlanEnv(t, `  - name: home
    source:
      type: files
      files_from:
        - ${DIR}/list
      exclude: ["*.tmp"]
      exclude_file:
        - ${DIR}/excludes
      exclude_caches: true
      exclude_if_present: [.nobackup]
      one_file_system: true
    schedule: every 1h
    repository: main
`)
	writeFiles(t, pe.src, map[string]string{
		"keep.txt": "kept", "scratch.tmp": "no", "secret.key": "no",
		"cache/CACHEDIR.TAG": "Signature: 8a477f597d28d172789f06886806bc55\n", "cache/blob": "no",
		"private/.nobackup": "", "private/diary": "no",
	})
	writeFiles(t, pe.dir, map[string]string{"list": "# the source\n" + pe.src + "\n", "excludes": "*.key\n"})
	if r := pe.run("run", "--plan", pe.plan, "home"); r.Code != 0 {
		t.Fatalf("run:\n%s", r)
	}
	ls := pe.main.mustRun("ls", "latest").Stdout
	for _, want := range []string{"keep.txt", "sub/b.txt", "a.txt"} {
		if !strings.Contains(ls, want) {
			t.Errorf("%s missing from the snapshot:\n%s", want, ls)
		}
	}
	for _, gone := range []string{"scratch.tmp", "secret.key", "cache/blob", "private/diary"} {
		if strings.Contains(ls, gone) {
			t.Errorf("%s was backed up:\n%s", gone, ls)
		}
	}
	// The keys are for files sources only.
	bad := newPlanEnv(t, `  - name: db
    source: {type: postgres, dsn: env:DSN, files_from: [/x]}
    schedule: every 1h
    repository: main
`)
	if r := bad.run("plan", "validate", bad.plan); r.Code == 0 || !strings.Contains(r.Stderr, "files_from is not a key of a postgres source") {
		t.Errorf("files_from on a postgres source:\n%s", r)
	}
}

// TestRunBadFlagsStillTellsHooks: a run that cannot start because a
// global flag is wrong still runs the job's on_failure hooks with the
// reason in $BUNKER_ERROR, and prints it.
func TestRunBadFlagsStillTellsHooks(t *testing.T) {
	pe := newPlanEnv(t, `  - name: home
    source:
      type: files
      paths:
        - ${SRC}
    schedule: every 1h
    repository: main
    hooks:
      on_failure:
        - command: echo "$BUNKER_ERROR" > ${DIR}/failed
`)
	r := pe.run("--limit-upload", "lots", "run", "--plan", pe.plan, "home")
	if r.Code == 0 || !strings.Contains(r.Stderr+r.Stdout, "--limit-upload") {
		t.Fatalf("run with a bad flag:\n%s", r)
	}
	b, err := os.ReadFile(filepath.Join(pe.dir, "failed"))
	if err != nil || !strings.Contains(string(b), "--limit-upload") {
		t.Errorf("on_failure hook saw %q (%v)", b, err)
	}
}
