package cli_test

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// snapshotsByID is "snapshots --json" keyed by ID.
func (e *repoEnv) snapshotsByID() map[string]map[string]any {
	e.t.Helper()
	out := map[string]map[string]any{}
	for _, sn := range e.snapshots() {
		out[str(sn["id"])] = sn
	}
	return out
}

func tagsOf(sn map[string]any) []string {
	var out []string
	for _, t := range sn["tags"].([]any) {
		out = append(out, t.(string))
	}
	return out
}

// tagJSON runs "tag --json ARGS" and returns the old -> new IDs it
// reports and its summary.
func (e *repoEnv) tagJSON(args ...string) (map[string]string, map[string]any) {
	e.t.Helper()
	r := e.mustRun(append([]string{"--json", "tag"}, args...)...)
	changed := map[string]string{}
	for _, m := range r.JSONLines() {
		if m["message_type"] == "changed_snapshot" {
			changed[str(m["old_snapshot_id"])] = str(m["new_snapshot_id"])
		}
	}
	return changed, r.Message(e.t, "summary")
}

func TestTagAddRemoveSet(t *testing.T) {
	e, _, id1, id2, _ := twoSnapshots(t)

	changed, sum := e.tagJSON("--add", "x,y", id1[:8])
	n1 := changed[id1]
	if len(changed) != 1 || n1 == "" || n1 == id1 || num(sum["changed_snapshots"]) != 1 {
		t.Fatalf("tag --add x,y %s: changed %v, summary %v", id1[:8], changed, sum)
	}
	list := e.snapshotsByID()
	if _, ok := list[id1]; ok || len(list) != 2 {
		t.Fatalf("the original %s is still there (or snapshots are missing): %v", id1[:8], slices.Collect(maps.Keys(list)))
	}
	if sn := list[n1]; !slices.Equal(tagsOf(sn), []string{"one", "x", "y"}) || sn["original"] != id1 {
		t.Errorf("tagged snapshot: tags %v original %v, want [one x y] and %s", sn["tags"], sn["original"], id1)
	}

	// Removing, then setting, keeps the first original.
	changed, _ = e.tagJSON("--remove", "one", "--remove", "y", n1)
	n2 := changed[n1]
	if sn := e.snapshotsByID()[n2]; n2 == "" || !slices.Equal(tagsOf(sn), []string{"x"}) || sn["original"] != id1 {
		t.Fatalf("after --remove: %v", sn)
	}
	changed, _ = e.tagJSON("--set", "a", "--set", "b", n2)
	n3 := changed[n2]
	if sn := e.snapshotsByID()[n3]; n3 == "" || !slices.Equal(tagsOf(sn), []string{"a", "b"}) || sn["original"] != id1 {
		t.Fatalf("after --set a --set b: %v", sn)
	}

	// Unchanged snapshots are left alone.
	if changed, sum := e.tagJSON("--add", "a", n3); len(changed) != 0 || num(sum["snapshots_examined"]) != 1 {
		t.Errorf("adding a tag it has changed %v (%v)", changed, sum)
	}

	// Filters select when no snapshot is named.
	changed, sum = e.tagJSON("--tag", "two", "--add", "picked")
	if len(changed) != 1 || changed[id2] == "" || num(sum["snapshots_examined"]) != 1 {
		t.Fatalf("--tag two --add picked: %v %v", changed, sum)
	}
	n4 := changed[id2]
	changed, _ = e.tagJSON("--host", "hostA", "--add", "all")
	if len(changed) != 2 || changed[n3] == "" || changed[n4] == "" {
		t.Fatalf("--host hostA --add all: %v", changed)
	}
	n5 := changed[n3]
	if none, _ := e.tagJSON("--host", "otherhost", "--add", "none"); len(none) != 0 {
		t.Errorf("--host otherhost changed %v", none)
	}
	for _, sn := range e.snapshots() {
		if !slices.Contains(tagsOf(sn), "all") {
			t.Errorf("snapshot %v lacks the tag all: %v", sn["short_id"], sn["tags"])
		}
	}
	// --set '' removes every tag.
	changed, _ = e.tagJSON("--set", "", n5)
	if len(changed) != 1 {
		t.Errorf("--set '' changed %v", changed)
	}
	for _, n := range changed {
		if sn := e.snapshotsByID()[n]; sn["tags"] != nil {
			t.Errorf("after --set '': tags %v", sn["tags"])
		}
	}
	r := e.mustRun("tag", "--add", "text", "latest")
	if !strings.Contains(r.Stdout, "changed the tags of 1 snapshot of 1") {
		t.Errorf("text output:\n%s", r)
	}
	requireFailure(t, e.run("tag", "--set", "a", "--add", "b"))
	requireFailure(t, e.run("tag", "latest"))
	requireFailure(t, e.run("tag", "--add", "x", "ffffffffffff"))
	e.mustRun("check", "--read-data")
}

// TestTagAppendOnlyKeepsOriginal: on an append-only store the tagged
// snapshot is saved and the original kept, with a warning.
func TestTagAppendOnlyKeepsOriginal(t *testing.T) {
	dir := t.TempDir()
	e := remoteEnv(t, startREST(t, true, dir).remote("repo"))
	e.mustRun("--insecure-kdf-for-tests", "init")
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "a.txt"), []byte("a"))
	s, _ := e.backupJSON(0, src)
	id := str(s["snapshot_id"])
	r := e.mustRun("tag", "--add", "x", id)
	if !strings.Contains(r.Stderr, "warning: original snapshot "+id[:8]+" is kept") {
		t.Errorf("no warning about the kept original:\n%s", r)
	}
	list := e.snapshotsByID()
	if len(list) != 2 || list[id] == nil {
		t.Fatalf("want the original and its tagged copy, have %v", slices.Collect(maps.Keys(list)))
	}
	for sid, sn := range list {
		if sid != id && (sn["original"] != id || !slices.Contains(tagsOf(sn), "x")) {
			t.Errorf("tagged copy: %v", sn)
		}
	}
	changed, sum := e.tagJSON("--add", "y", id)
	if len(changed) != 1 || num(sum["originals_kept"]) != 1 {
		t.Errorf("--json: changed %v summary %v", changed, sum)
	}
}
