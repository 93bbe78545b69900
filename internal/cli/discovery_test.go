package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRepositoryFile: --repository-file and $BUNKER_REPOSITORY_FILE name
// the repository (restic's RESTIC_REPOSITORY_FILE); naming it twice at one
// level is refused, a flag beats the environment.
func TestRepositoryFile(t *testing.T) {
	e := initRepo(t)
	file := filepath.Join(t.TempDir(), "repo.txt")
	writeFile(t, file, []byte(e.repo+"\n"))
	env := map[string]string{"BUNKER_PASSWORD": testPassword}
	run := func(args ...string) result {
		return runApp(t, strings.NewReader(""), func(k string) string { return env[k] }, args...)
	}
	if r := run("--repository-file", file, "snapshots"); r.Code != 0 {
		t.Fatalf("--repository-file:\n%s", r)
	}
	env["BUNKER_REPOSITORY_FILE"] = file
	if r := run("snapshots"); r.Code != 0 {
		t.Fatalf("BUNKER_REPOSITORY_FILE:\n%s", r)
	}
	env["BUNKER_REPOSITORY"] = "/nowhere"
	if r := run("snapshots"); r.Code == 0 || !strings.Contains(r.Stderr, "unset one") {
		t.Errorf("both variables set:\n%s", r)
	}
	if r := run("-r", e.repo, "snapshots"); r.Code != 0 {
		t.Errorf("-r beats the environment:\n%s", r)
	}
	if r := run("-r", e.repo, "--repository-file", file, "snapshots"); r.Code == 0 || !strings.Contains(r.Stderr, "exclude each other") {
		t.Errorf("-r and --repository-file:\n%s", r)
	}
	if r := run("--repository-file", filepath.Join(t.TempDir(), "none"), "snapshots"); r.Code == 0 || !strings.Contains(r.Stderr, "repository file") {
		t.Errorf("a missing repository file:\n%s", r)
	}
}

// TestCopyFromEnvironment: copy's source comes from $BUNKER_FROM_REPOSITORY
// (or _FILE) and its password from $BUNKER_FROM_PASSWORD_FILE or
// _COMMAND, as restic's RESTIC_FROM_* do.
func TestCopyFromEnvironment(t *testing.T) {
	src := initRepo(t)
	data := filepath.Join(t.TempDir(), "data")
	writeFile(t, filepath.Join(data, "a.txt"), []byte("alpha"))
	src.backupJSON(0, data)
	dst := initRepo(t)
	dir := t.TempDir()
	pwFile, locFile := filepath.Join(dir, "pw"), filepath.Join(dir, "loc")
	writeFile(t, pwFile, []byte(testPassword+"\n"))
	writeFile(t, locFile, []byte(src.repo))
	for i, env := range []map[string]string{
		{"BUNKER_FROM_REPOSITORY": src.repo, "BUNKER_FROM_PASSWORD_FILE": pwFile},
		{"BUNKER_FROM_REPOSITORY_FILE": locFile, "BUNKER_FROM_PASSWORD_COMMAND": "cat " + pwFile},
	} {
		for k, v := range env {
			dst.env[k] = v
		}
		r := dst.mustRun("--json", "copy")
		if want := []string{"1", "0"}[i]; !strings.Contains(r.Stdout, fmt.Sprintf(`"snapshots_copied":%s`, want)) {
			t.Errorf("copy %d with %v:\n%s", i, env, r)
		}
		for k := range env {
			delete(dst.env, k)
		}
	}
	if r := dst.expect(1, "copy"); !strings.Contains(r.Stderr, "no source repository") {
		t.Errorf("copy without a source:\n%s", r)
	}
}

// TestPlanDiscovery: without --plan or $BUNKER_PLAN a plan is looked for
// in $XDG_CONFIG_HOME/bunker, as borgmatic users expect; the error says
// where it looked.
func TestPlanDiscovery(t *testing.T) {
	cfg := t.TempDir()
	env := map[string]string{"XDG_CONFIG_HOME": cfg}
	run := func(args ...string) result {
		return runApp(t, strings.NewReader(""), func(k string) string { return env[k] }, args...)
	}
	r := run("plan", "validate")
	if r.Code == 0 || !strings.Contains(r.Stderr, filepath.Join(cfg, "bunker", "plan.yaml")) {
		t.Fatalf("no plan anywhere:\n%s", r)
	}
	b, err := os.ReadFile("../plan/testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(cfg, "bunker", "plan.yml"), b)
	env["BUNKER_PASSWORD"], env["SHOP_DSN"] = "x", "postgres://localhost/shop"
	if r := run("plan", "validate"); r.Code != 0 {
		t.Fatalf("a plan in $XDG_CONFIG_HOME/bunker/plan.yml:\n%s", r)
	}
}
