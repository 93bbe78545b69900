package cli_test

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

// repoBytes is the total size of the files of a local repository.
func repoBytes(t *testing.T, repo string) int64 {
	t.Helper()
	var n int64
	must(t, filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	}))
	return n
}

// A directory with thousands of entries is stored as a split tree: a
// backup that changes one entry stores one chunk of the listing, not all
// of it, and every command reads the directory whole.
func TestLargeDirectorySplitTree(t *testing.T) {
	e := initRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	const files = 3000
	for i := 0; i < files; i++ {
		writeFile(t, filepath.Join(src, "many", fmt.Sprintf("file-%05d.txt", i)), []byte(fmt.Sprintf("content of file %d\n", i)))
	}
	writeFile(t, filepath.Join(src, "other", "a.txt"), []byte("a"))
	s1, _ := e.backupJSON(0, src)
	before := repoBytes(t, e.repo)

	contents := e.fileContents("latest")
	if len(contents) != files+1 {
		t.Fatalf("snapshot has %d files, want %d", len(contents), files+1)
	}

	writeFile(t, filepath.Join(src, "many", "file-01500.txt"), []byte("changed\n"))
	s2, _ := e.backupJSON(0, src)
	growth := repoBytes(t, e.repo) - before
	// Stored whole, the listing of 3,000 entries is well over 100 KB
	// compressed; split, one chunk of ~50 entries and the index change.
	if growth > 48<<10 {
		t.Errorf("changing one file of a 3,000-entry directory grew the repository by %d bytes", growth)
	}
	t.Logf("growth after changing one of %d entries: %d bytes", files, growth)

	diff := e.mustRun("diff", str(s1["snapshot_id"]), str(s2["snapshot_id"])).Stdout
	if strings.Count(diff, "file-") != 1 || !strings.Contains(diff, "M    "+src+"/many/file-01500.txt") || !strings.Contains(diff, "0 added, 0 removed, 1 changed") {
		t.Errorf("diff should report exactly the changed file:\n%s", diff)
	}
	if out := e.mustRun("find", "file-02999.txt").Stdout; !strings.Contains(out, "many/file-02999.txt") {
		t.Errorf("find misses an entry of the last chunk:\n%s", out)
	}

	check := func(repo *repoEnv) {
		t.Helper()
		repo.mustRun("check", "--read-data")
		out := filepath.Join(t.TempDir(), "out")
		repo.mustRun("restore", "latest:"+src, "--target", out, "--verify")
		assertSameTree(t, treeDigest(t, src), treeDigest(t, out))
	}
	check(e)

	// Prune keeps the chunks of the trees it keeps.
	e.mustRun("forget", "--keep-last", "1", "--prune")
	check(e)

	// copy re-encodes the trees for a repository with other keys.
	dst := initRepo(t)
	dst.env["BUNKER_FROM_PASSWORD"] = testPassword
	dst.mustRun("copy", "--from-repo", e.repo)
	check(dst)

	// The root listing of the copied snapshot reaches a split tree.
	split := false
	var walk func(id string)
	walk = func(id string) {
		tr, err := tree.Decode([]byte(dst.mustRun("cat", "tree", id).Stdout))
		must(t, err)
		if len(tr.Chunks) > 0 {
			split = true
			return
		}
		for _, n := range tr.Nodes {
			if n.Subtree != nil {
				walk(n.Subtree.String())
			}
		}
	}
	walk(dst.snapshotTree("latest"))
	if !split {
		t.Error("no split tree in the copied snapshot")
	}
}
