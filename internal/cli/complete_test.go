package cli_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/testutil"
)

// completions runs cobra's hidden "__complete ARGS" and returns the
// offered values with their descriptions (the lines before the
// ":DIRECTIVE" line).
func completions(t *testing.T, getenv func(string) string, args ...string) map[string]string {
	t.Helper()
	res := testutil.Expect(t, runApp(t, strings.NewReader(""), getenv, append([]string{"__complete"}, args...)...), 0)
	out := map[string]string{}
	lines := strings.Split(strings.TrimRight(res.Stdout, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
		t.Fatalf("__complete %s: no directive line:\n%s", strings.Join(args, " "), res)
	}
	for _, l := range lines[:len(lines)-1] {
		v, desc, _ := strings.Cut(l, "\t")
		out[v] = desc
	}
	return out
}

func completionKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// restoreSubcommands are the completions restore offers besides snapshots.
var restoreSubcommands = []string{"kubernetes", "mongodb", "mysql", "postgres"}

// TestCompleteSnapshots: SNAPSHOT arguments complete to the short IDs
// (and latest) described by time, host and paths, filtered by the prefix
// typed and by the IDs already given; without a password available
// non-interactively, or with a wrong one, nothing is offered and nothing
// is printed.
func TestCompleteSnapshots(t *testing.T) {
	e := initRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	writeFiles(t, src, map[string]string{"a.txt": "alpha"})
	e.mustRun("backup", src)
	writeFiles(t, src, map[string]string{"b.txt": "bravo"})
	e.mustRun("backup", src)
	var ids []string
	for _, sn := range e.snapshots() {
		ids = append(ids, sn["short_id"].(string))
	}
	if len(ids) != 2 {
		t.Fatalf("snapshots: %v", ids)
	}
	slices.Sort(ids)
	want := append([]string{"latest"}, ids...)
	slices.Sort(want)

	for _, args := range [][]string{{"restore", ""}, {"ls", ""}, {"diff", ""}, {"dump", ""}, {"forget", ""},
		{"tag", "--add", "x", ""}, {"rewrite", ""}, {"cat", "snapshot", ""}} {
		got := completions(t, e.getenv, append([]string{"-r", e.repo}, args...)...)
		if args[0] == "restore" {
			// restore's subcommands (restore postgres, …) come along.
			for _, sub := range restoreSubcommands {
				if _, ok := got[sub]; !ok {
					t.Errorf("__complete restore: no %s in %v", sub, completionKeys(got))
				}
				delete(got, sub)
			}
		}
		if !slices.Equal(completionKeys(got), want) {
			t.Errorf("__complete %s: %v, want %v", strings.Join(args, " "), completionKeys(got), want)
		}
		for v, desc := range got {
			if !strings.Contains(desc, src) || !strings.Contains(desc, "20") {
				t.Errorf("__complete %s: %s described as %q, want its time and paths", strings.Join(args, " "), v, desc)
			}
		}
	}
	// The prefix typed, and the IDs already given.
	got := completions(t, e.getenv, "-r", e.repo, "ls", ids[0][:5])
	if _, ok := got[ids[0]]; !ok || len(got) != 1 && ids[0][:5] != ids[1][:5] {
		t.Errorf("ls %s: %v", ids[0][:5], completionKeys(got))
	}
	got = completions(t, e.getenv, "-r", e.repo, "diff", ids[0], "")
	if _, ok := got[ids[0]]; ok || len(got) != 2 {
		t.Errorf("diff %s: %v, want latest and %s", ids[0], completionKeys(got), ids[1])
	}
	for _, args := range [][]string{{"ls", ids[0], ""}, {"diff", ids[0], ids[1], ""}, {"dump", ids[0] + ":"}} {
		if got := completions(t, e.getenv, append([]string{"-r", e.repo}, args...)...); len(got) != 0 {
			t.Errorf("__complete %s: %v, want nothing", strings.Join(args, " "), completionKeys(got))
		}
	}
	if got := completions(t, e.getenv, "-r", e.repo, "cat", ""); !slices.Equal(completionKeys(got), []string{"blob", "config", "index", "keys", "pack", "snapshot", "tree"}) {
		t.Errorf("cat: %v", completionKeys(got))
	}

	// copy completes from its source repository.
	fromEnv := func(k string) string {
		return map[string]string{"BUNKER_PASSWORD": testPassword, "BUNKER_FROM_PASSWORD": testPassword}[k]
	}
	dst := initRepo(t)
	if got := completions(t, fromEnv, "-r", dst.repo, "copy", "--from-repo", e.repo, ""); !slices.Equal(completionKeys(got), want) {
		t.Errorf("copy --from-repo: %v, want %v", completionKeys(got), want)
	}

	// No password without a prompt, or a wrong one: silence.
	pwFile := filepath.Join(t.TempDir(), "pw")
	writeFiles(t, filepath.Dir(pwFile), map[string]string{"pw": testPassword + "\n"})
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
		want int
	}{
		"no password":   {env: nil, want: 0},
		"wrong":         {env: map[string]string{"BUNKER_PASSWORD": "wrong"}, want: 0},
		"password file": {env: map[string]string{"BUNKER_PASSWORD_FILE": pwFile}, want: 3},
		"flag file":     {args: []string{"--password-file", pwFile}, want: 3},
		"no repository": {env: map[string]string{"BUNKER_PASSWORD": testPassword}, args: []string{"-r", filepath.Join(t.TempDir(), "none")}, want: 0},
	} {
		env := func(k string) string { return tc.env[k] }
		args := append([]string{"-r", e.repo}, tc.args...)
		res := testutil.Expect(t, runApp(t, strings.NewReader(""), env, append(args, "__complete", "ls", "")...), 0)
		if got := completions(t, env, append(args, "ls", "")...); len(got) != tc.want {
			t.Errorf("%s: %v, want %d completions", name, completionKeys(got), tc.want)
		}
		if strings.Contains(res.Stdout, "error") || strings.Contains(res.Stdout, "password") {
			t.Errorf("%s: the completion printed an error:\n%s", name, res)
		}
	}
}

// TestCompletePlan: run's JOB completes to the plan's jobs, drill's NAME
// to its drills and jobs; without a plan, nothing.
func TestCompletePlan(t *testing.T) {
	pe := newPlanEnv(t, `  - name: home
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
  - name: etc
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: copy
drills:
  - name: home-drill
    job: home
    schedule: every 2h
`)
	env := func(k string) string { return pe.env[k] }
	got := completions(t, env, "run", "--plan", pe.plan, "")
	if !slices.Equal(completionKeys(got), []string{"etc", "home"}) || got["home"] != "files into main" {
		t.Errorf("run: %v", got)
	}
	if got := completions(t, env, "run", "--plan", pe.plan, "h"); !slices.Equal(completionKeys(got), []string{"home"}) {
		t.Errorf("run h: %v", got)
	}
	if got := completions(t, env, "run", "--plan", pe.plan, "home", ""); len(got) != 0 {
		t.Errorf("run home: %v, want nothing", got)
	}
	pe.env["BUNKER_PLAN"] = pe.plan
	if got := completions(t, env, "drill", ""); !slices.Equal(completionKeys(got), []string{"etc", "home", "home-drill"}) {
		t.Errorf("drill: %v", got)
	}
	if got := completions(t, env, "run", "--plan", filepath.Join(pe.dir, "none.yaml"), ""); len(got) != 0 {
		t.Errorf("run without a plan: %v", got)
	}
	// A broken plan prints none of its errors among the completions.
	broken := filepath.Join(pe.dir, "broken.yaml")
	writeFiles(t, pe.dir, map[string]string{"broken.yaml": "repositories:\n  - name: r\n    locaton: /x\n"})
	if got := completions(t, env, "--json", "run", "--plan", broken, ""); len(got) != 0 {
		t.Errorf("run with a broken plan: %v", got)
	}
}

// TestCompletionScripts: cobra's completion command is there for every
// shell it supports.
func TestCompletionScripts(t *testing.T) {
	noEnv := func(string) string { return "" }
	for shell, want := range map[string]string{"bash": "__start_bunker", "zsh": "#compdef bunker", "fish": "complete -c bunker", "powershell": "Register-ArgumentCompleter"} {
		res := testutil.Expect(t, runApp(t, strings.NewReader(""), noEnv, "completion", shell), 0)
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("completion %s lacks %q:\n%.300s", shell, want, res.Stdout)
		}
	}
}
