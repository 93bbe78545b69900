package cli_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
)

// Tests written from the side of a backup host that holds the repository
// password and may add objects to the store but never delete or overwrite
// one (an append-only credential). Whatever it plants, the administrator's
// maintenance must not lose a snapshot (docs/SECURITY.md).

// plantNew copies into repo every object of from that repo lacks: what an
// append-only client uploads after working on a copy of the repository.
// Planted files get an old modification time, so no safety window holds
// them back.
func plantNew(t *testing.T, from, repo string) (planted []string) {
	t.Helper()
	old := time.Now().Add(-72 * time.Hour)
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		target := filepath.Join(repo, rel)
		if _, err := os.Stat(target); err == nil || !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(target, b, 0o444); err != nil {
			return err
		}
		planted = append(planted, rel)
		return os.Chtimes(target, old, old)
	})
	if err != nil {
		t.Fatalf("plant objects of %s in %s: %v", from, repo, err)
	}
	return planted
}

// cloneRepo copies a local repository for the attacker to work on.
func cloneRepo(t *testing.T, e *repoEnv) *repoEnv {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "copy")
	copyTree(t, e.repo, dir)
	return newRepoEnv(t, dir)
}

// Finding 1 of the trust issue: an index that claims to supersede the real
// ones and lists no packs, plus a deletion plan for the packs of a snapshot,
// made the administrator's prune delete that snapshot's data.
func TestAppendOnlyPlantsCannotMakePruneDeleteLiveData(t *testing.T) {
	e := initRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "common.txt"), []byte("in both snapshots\n"))
	writeFile(t, filepath.Join(src, "gone.bin"), randBytes(31, 3<<20))
	s1, _ := e.backupJSON(0, src)
	first := treeDigest(t, src)
	must(t, os.Remove(filepath.Join(src, "gone.bin")))
	writeFile(t, filepath.Join(src, "new.bin"), randBytes(32, 2<<20))
	s2, _ := e.backupJSON(0, src)
	second := treeDigest(t, src)
	id1, id2 := str(s1["snapshot_id"]), str(s2["snapshot_id"])

	// (a) An index without packs that supersedes every real index file.
	a := cloneRepo(t, e)
	for _, p := range listRepoFiles(t, a.repo, "packs") {
		must(t, os.Remove(p))
	}
	a.mustRun("repair", "index")
	idx := plantNew(t, a.repo, e.repo)
	if len(idx) != 1 || !strings.HasPrefix(idx[0], "index"+string(filepath.Separator)) {
		t.Fatalf("attacker planted %v, want one index file", idx)
	}
	// (b) A deletion plan for the packs only the first snapshot uses.
	b := cloneRepo(t, e)
	b.mustRun("forget", id1)
	b.mustRun("prune", "--safety-window", "24h")
	plan := plantNew(t, b.repo, e.repo)
	planted := false
	for _, p := range plan {
		planted = planted || strings.HasPrefix(p, filepath.Join("maint", "plan-"))
	}
	if !planted {
		t.Fatalf("attacker planted %v, want a maintenance plan", plan)
	}

	// The administrator's routine prune, twice (sweep, then mark again).
	if r := e.mustRun("prune"); !strings.Contains(r.Stdout, "kept") {
		t.Errorf("prune does not say it kept the planted plan's live packs:\n%s", r)
	}
	e.mustRun("prune")

	// Every snapshot still restores bit-exactly, and check reads it all.
	for id, want := range map[string]map[string]string{id1: first, id2: second} {
		dst := filepath.Join(t.TempDir(), "restore")
		e.mustRun("restore", id, "--target", dst)
		assertSameTree(t, want, treeDigest(t, filepath.Join(dst, strings.TrimPrefix(src, "/"))))
	}
	e.mustRun("check", "--read-data")
}

// Finding 3: a garbage or damaged maintenance plan, lease or session must
// not stop backup, restore, check or prune; check names it and repair
// maint removes it.
func TestGarbageMaintenanceObjectsAreIgnored(t *testing.T) {
	e, src, _, id2, _ := twoSnapshots(t)
	second := treeDigest(t, src)
	garbage := map[string][]byte{
		"maint/plan-0011223344556677aabbccdd": []byte("garbage"),
		"maint/lease":                         []byte("BNKR\x01\x05\x00\x00not sealed"),
		"maint/zzz-unknown":                   []byte("?"),
		"sessions/s-00112233445566778899aabb": []byte("garbage session"),
	}
	// A damaged copy of a real plan: valid header, broken seal.
	b := cloneRepo(t, e)
	b.mustRun("forget", "latest")
	b.mustRun("prune", "--safety-window", "24h")
	for _, p := range listRepoFiles(t, b.repo, "maint") {
		if strings.HasPrefix(filepath.Base(p), "plan-") {
			raw, err := os.ReadFile(p)
			must(t, err)
			raw[len(raw)/2] ^= 0x40
			garbage["maint/"+filepath.Base(p)] = raw
		}
	}
	if len(garbage) != 5 {
		t.Fatalf("the attacker's prune left no plan to damage")
	}
	for name, b := range garbage {
		writeFile(t, filepath.Join(e.repo, filepath.FromSlash(name)), b)
	}

	writeFile(t, filepath.Join(src, "third.txt"), []byte("third\n"))
	e.mustRun("backup", src)
	dst := filepath.Join(t.TempDir(), "restore")
	e.mustRun("restore", id2, "--target", dst)
	assertSameTree(t, second, treeDigest(t, filepath.Join(dst, strings.TrimPrefix(src, "/"))))
	chk := e.mustRun("check")
	for name := range garbage {
		if !strings.Contains(chk.Stdout+chk.Stderr, filepath.Base(name)) {
			t.Errorf("check does not name %s:\n%s", name, chk)
		}
	}
	if r := e.mustRun("prune"); !strings.Contains(r.Stderr, "repair maint") {
		t.Errorf("prune does not warn about the unreadable plans:\n%s", r)
	}
	e.mustRun("repair", "maint")
	for name := range garbage {
		if _, err := os.Stat(filepath.Join(e.repo, filepath.FromSlash(name))); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there after repair maint (%v)", name, err)
		}
	}
	chk = e.mustRun("check")
	if strings.Contains(chk.Stdout, "repair maint") {
		t.Errorf("check still reports unreadable objects after repair maint:\n%s", chk)
	}
}

// An index file or snapshot that claims a newer format than the config
// declares is planted or damaged (writers write only the config's
// version): it must not stop backup or restore.
func TestPlantedNewerFormatObjectsDoNotStopReaders(t *testing.T) {
	e, src, _, id2, _ := twoSnapshots(t)
	second := treeDigest(t, src)
	for _, kind := range []string{"index", "snapshots"} {
		b := []byte("BNKR\x02\x03\x00\x00" + kind + " from the future")
		writeFile(t, filepath.Join(e.repo, kind, pack.Name(pack.Hash(b))), b)
	}
	e.mustRun("backup", src)
	dst := filepath.Join(t.TempDir(), "restore")
	e.mustRun("restore", id2, "--target", dst)
	assertSameTree(t, second, treeDigest(t, filepath.Join(dst, strings.TrimPrefix(src, "/"))))
	chk := e.run("check")
	if !strings.Contains(chk.Stdout+chk.Stderr, "newer") {
		t.Errorf("check does not name the planted objects:\n%s", chk)
	}
}
