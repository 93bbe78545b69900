package cli_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/testsrv"
)

// packBytes is the size of every pack of a local repository.
func packBytes(t *testing.T, repo string) int64 {
	var n int64
	for _, p := range listRepoFiles(t, repo, "packs") {
		n += fileSize(t, p)
	}
	return n
}

func dataBlobs(t *testing.T, e *repoEnv) map[string]bool {
	out := map[string]bool{}
	for _, m := range e.mustRun("--json", "list", "blobs").JSONLines() {
		if m["type"] == "data" {
			out[str(m["id"])] = true
		}
	}
	return out
}

func TestRewriteDropsFile(t *testing.T) {
	e := initRepo(t, "--pack-size", "1")
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "keep.bin"), randBytes(71, 1<<20))
	writeFile(t, filepath.Join(src, "conf", "notes.txt"), []byte("notes\n"))
	writeFile(t, filepath.Join(src, "conf", "secret.key"), randBytes(72, 2<<20))
	s1, _ := e.backupJSON(0, "--tag", "one", src)
	want1 := treeDigest(t, src)
	writeFile(t, filepath.Join(src, "conf", "notes.txt"), []byte("notes, changed\n"))
	writeFile(t, filepath.Join(src, "more.txt"), []byte("more\n"))
	s2, _ := e.backupJSON(0, "--tag", "two", src)
	want2 := treeDigest(t, src)
	for _, w := range []map[string]string{want1, want2} {
		delete(w, "conf/secret.key")
	}
	id1, id2 := str(s1["snapshot_id"]), str(s2["snapshot_id"])
	secret := filepath.Join(src, "conf", "secret.key")
	blobsBefore, packsBefore := dataBlobs(t, e), packBytes(t, e.repo)

	r := e.mustRun("rewrite", "--exclude", "*.key", "--dry-run")
	if !strings.Contains(r.Stdout, secret) || !strings.Contains(r.Stdout, "would rewrite 2 snapshots of 2") {
		t.Errorf("rewrite --dry-run:\n%s", r)
	}
	if list := e.snapshotsByID(); len(list) != 2 || list[id1] == nil || list[id2] == nil {
		t.Fatalf("a dry run changed the snapshots: %v", slices.Collect(maps.Keys(list)))
	}

	patterns := filepath.Join(t.TempDir(), "patterns")
	writeFile(t, patterns, []byte("# drop keys\n*.key\n"))
	r = e.mustRun("--json", "rewrite", "--exclude-file", patterns, "--forget")
	news := map[string]string{}
	for _, m := range r.JSONLines() {
		if m["message_type"] == "rewritten_snapshot" {
			news[str(m["old_snapshot_id"])] = str(m["new_snapshot_id"])
			if rm, _ := m["removed"].([]any); len(rm) != 1 || rm[0] != secret || m["forgotten"] != true {
				t.Errorf("rewritten_snapshot line: %v", m)
			}
		}
	}
	if s := r.Message(t, "summary"); num(s["snapshots_rewritten"]) != 2 || len(news) != 2 {
		t.Fatalf("rewrite --forget: %v\n%s", s, r)
	}
	list := e.snapshotsByID()
	if len(list) != 2 {
		t.Fatalf("want the 2 rewritten snapshots, have %v", slices.Collect(maps.Keys(list)))
	}
	for old, tag := range map[string]string{id1: "one", id2: "two"} {
		sn := list[news[old]]
		if sn == nil || sn["original"] != old || !slices.Equal(tagsOf(sn), []string{tag, "rewrite"}) {
			t.Errorf("rewrite of %s: %v", old[:8], sn)
		}
	}
	// Nothing left to drop: the rewritten snapshots are left alone.
	if s := e.mustRun("--json", "rewrite", "--exclude", "*.key").Message(t, "summary"); num(s["snapshots_rewritten"]) != 0 {
		t.Errorf("second rewrite: %v", s)
	}
	e.mustRun("check", "--read-data")
	for old, want := range map[string]map[string]string{id1: want1, id2: want2} {
		out := filepath.Join(t.TempDir(), old[:8])
		e.mustRun("restore", news[old]+":"+src, "--target", out, "--verify")
		assertSameTree(t, want, treeDigest(t, out))
	}

	// The secret's data goes with the next prune.
	if !slices.Equal(slices.Sorted(maps.Keys(dataBlobs(t, e))), slices.Sorted(maps.Keys(blobsBefore))) {
		t.Errorf("rewrite removed data before a prune")
	}
	e.mustRun("prune", "--max-unused", "0%")
	after := dataBlobs(t, e)
	gone := 0
	for id := range blobsBefore {
		if !after[id] {
			gone++
		}
	}
	if packs := packBytes(t, e.repo); gone == 0 || packs > packsBefore-(2<<20)+(64<<10) {
		t.Errorf("after prune: %d data blobs gone, packs %d bytes (before %d): the secret's 2 MiB should be gone", gone, packs, packsBefore)
	}
	e.mustRun("check", "--read-data")
	out := filepath.Join(t.TempDir(), "latest")
	e.mustRun("restore", "latest:"+src, "--target", out, "--verify")
	assertSameTree(t, want2, treeDigest(t, out))
	if _, err := os.Stat(filepath.Join(out, "conf", "secret.key")); !os.IsNotExist(err) {
		t.Errorf("the dropped file was restored: %v", err)
	}
	requireFailure(t, e.run("rewrite"))
}

// TestRewriteAndTagUnderObjectLock: originals under Object Lock are kept
// next to their replacements, with a warning that says until when.
func TestRewriteAndTagUnderObjectLock(t *testing.T) {
	s := testsrv.Versitygw(t)
	e, _ := lockedS3(t, s)
	e.mustRun("--insecure-kdf-for-tests", "init", "--object-lock", "governance", "--retention", "1h")
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "a.txt"), []byte("a"))
	writeFile(t, filepath.Join(src, "b.key"), []byte("secret"))
	s1, _ := e.backupJSON(0, src)
	id := str(s1["snapshot_id"])

	r := e.mustRun("rewrite", "--exclude", "*.key", "--forget", id)
	if !strings.Contains(r.Stderr, "original snapshot "+id[:8]+" is kept") || !strings.Contains(r.Stderr, "under Object Lock until") {
		t.Errorf("rewrite --forget of a locked snapshot does not warn:\n%s", r)
	}
	r = e.mustRun("tag", "--add", "x", id)
	if !strings.Contains(r.Stderr, "under Object Lock until") {
		t.Errorf("tag of a locked snapshot does not warn:\n%s", r)
	}
	list := e.snapshotsByID()
	if len(list) != 3 || list[id] == nil {
		t.Fatalf("want the locked original, its rewrite and its tagged copy; have %v", slices.Collect(maps.Keys(list)))
	}
	e.mustRun("check")
}
