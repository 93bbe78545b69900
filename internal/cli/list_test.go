package cli_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestListObjects(t *testing.T) {
	e, _, _, _, _ := twoSnapshots(t)
	e.mustRun("forget", "--keep-last", "1", "--prune")
	names := func(kind string) []string {
		var out []string
		for _, p := range listRepoFiles(t, e.repo, kind) {
			out = append(out, filepath.Base(p))
		}
		return out
	}
	lines := func(r result) []string {
		var out []string
		for l := range strings.SplitSeq(strings.TrimSpace(r.Stdout), "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
		return out
	}
	for _, tc := range []struct{ typ, dir string }{
		{"packs", "packs"}, {"index", "index"}, {"snapshots", "snapshots"}, {"keys", "keys"},
		{"sessions", "sessions"}, {"locks", "sessions"}, {"maint", "maint"},
	} {
		want := names(tc.dir)
		if got := lines(e.mustRun("list", tc.typ)); !slices.Equal(got, want) {
			t.Errorf("list %s: %v, want %v", tc.typ, got, want)
		}
		var got []string
		for _, m := range e.mustRun("--json", "list", tc.typ).JSONLines() {
			if m["message_type"] != "object" || m["type"] != tc.typ {
				t.Errorf("list --json %s: %v", tc.typ, m)
			}
			got = append(got, str(m["name"]))
		}
		if !slices.Equal(got, want) {
			t.Errorf("list --json %s: %v, want %v", tc.typ, got, want)
		}
	}
	if len(names("packs")) == 0 || len(names("keys")) != 1 || len(names("snapshots")) != 1 {
		t.Fatalf("unexpected repository: packs %v keys %v snapshots %v", names("packs"), names("keys"), names("snapshots"))
	}

	blobs := lines(e.mustRun("list", "blobs"))
	tree := str(e.snapshots()[0]["tree"])
	if !slices.Contains(blobs, "tree "+tree) || !slices.ContainsFunc(blobs, func(l string) bool { return strings.HasPrefix(l, "data ") }) {
		t.Errorf("list blobs lacks the snapshot's tree %s or data blobs:\n%s", tree, strings.Join(blobs, "\n"))
	}
	jb := e.mustRun("--json", "list", "blobs").JSONLines()
	if len(jb) != len(blobs) || jb[0]["message_type"] != "blob" || len(str(jb[0]["id"])) != 64 || jb[0]["pack"] == nil {
		t.Errorf("list --json blobs: %d lines (text: %d), first %v", len(jb), len(blobs), jb[0])
	}
	requireFailure(t, e.run("list", "config"))
	requireFailure(t, e.run("list", "nonsense"))
	requireFailure(t, e.run("list"))
}
