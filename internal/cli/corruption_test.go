package cli_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// corruptionFixture is a repository holding one snapshot of two
// directories A and B whose data lies in separate 1 MiB packs.
type corruptionFixture struct {
	pristine  *repoEnv
	src       string
	dirA      string
	dirB      string
	files     map[string][]string // snapshot path -> data blob IDs
	blobPacks map[string][]string
	packType  map[string]string
	entries   []indexBlob
}

func newCorruptionFixture(t *testing.T) *corruptionFixture {
	t.Helper()
	f := &corruptionFixture{src: filepath.Join(t.TempDir(), "src")}
	f.dirA, f.dirB = filepath.Join(f.src, "A"), filepath.Join(f.src, "B")
	writeFile(t, filepath.Join(f.dirA, "a1.bin"), randBytes(101, 2<<20+1000))
	writeFile(t, filepath.Join(f.dirA, "a2.bin"), randBytes(102, 1<<20+5000))
	writeFile(t, filepath.Join(f.dirA, "small.txt"), []byte("small file in A\n"))
	writeFile(t, filepath.Join(f.dirB, "b1.bin"), randBytes(103, 6<<20+3000)) // big enough that some pack holds only B data, however the readers interleave
	writeFile(t, filepath.Join(f.dirB, "b2.bin"), randBytes(104, 1<<20+7000))
	f.pristine = initRepo(t, "--pack-size", "1")
	f.pristine.backupJSON(0, f.dirA, f.dirB)
	f.files = f.pristine.fileContents("latest")
	f.blobPacks, f.packType = f.pristine.packsOf()
	f.entries = f.pristine.indexBlobs()
	return f
}

// damageBlob flips a byte in the middle of the first data blob of pack in
// e's repository and returns the snapshot paths of the files using it.
func (f *corruptionFixture) damageBlob(t *testing.T, e *repoEnv, pack string) []string {
	t.Helper()
	var first *indexBlob
	for i, b := range f.entries {
		if b.Pack == pack && b.Type == "data" && (first == nil || b.Offset < first.Offset) {
			first = &f.entries[i]
		}
	}
	if first == nil {
		t.Fatalf("pack %s holds no data blob", pack)
	}
	modifyFile(t, packFile(e.repo, pack), flipByte(int(first.Offset+first.Length/2)))
	var files []string
	for p, ids := range f.files {
		if slices.Contains(ids, first.ID) {
			files = append(files, p)
		}
	}
	slices.Sort(files)
	return files
}

// clone copies the pristine repository for one destructive case.
func (f *corruptionFixture) clone(t *testing.T) *repoEnv {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	copyTree(t, f.pristine.repo, dir)
	return newRepoEnv(t, dir)
}

// filesIn returns the snapshot paths of files with a blob in pack.
func (f *corruptionFixture) filesIn(pack string) []string {
	var out []string
	for p, ids := range f.files {
		for _, id := range ids {
			if slices.Contains(f.blobPacks[id], pack) {
				out = append(out, p)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// packOnlyIn picks a data pack whose blobs belong only to files below dir
// and returns it with those files.
func (f *corruptionFixture) packOnlyIn(t *testing.T, dir string) (string, []string) {
	t.Helper()
	var packs []string
	for p, typ := range f.packType {
		if typ == "data" {
			packs = append(packs, p)
		}
	}
	slices.Sort(packs)
	for _, p := range packs {
		files := f.filesIn(p)
		ok := len(files) > 0
		for _, fp := range files {
			if !strings.HasPrefix(fp, dir+"/") {
				ok = false
			}
		}
		if ok {
			return p, files
		}
	}
	t.Fatalf("no data pack holds only data of %s (packs: %v)", dir, packs)
	return "", nil
}

func (f *corruptionFixture) treePack(t *testing.T) string {
	t.Helper()
	for p, typ := range f.packType {
		if typ == "tree" {
			return p
		}
	}
	t.Fatal("no tree pack")
	return ""
}

// TestCorruptDataPack is acceptance criterion 2: one flipped byte in a data
// pack is found by check --read-data, which names the pack and the files it
// hurts; files elsewhere still restore, the hurt ones fail loudly.
func TestCorruptDataPack(t *testing.T) {
	f := newCorruptionFixture(t)
	e := f.clone(t)
	pack, _ := f.packOnlyIn(t, f.dirB)
	damaged := f.damageBlob(t, e, pack)
	t.Logf("damaged a blob in pack %s used by %v", pack[:8], damaged)

	// A structure-only check does not read pack contents; it may pass.
	r := e.run("check")
	t.Logf("check without --read-data: exit %d", r.Code)

	r = e.run("check", "--read-data")
	requireFailure(t, r)
	if !strings.Contains(r.Stdout, pack) {
		t.Errorf("check --read-data does not name the damaged pack %s:\n%s", pack, r)
	}
	for _, p := range damaged {
		if !strings.Contains(r.Stdout, p) {
			t.Errorf("check --read-data does not name the affected file %s:\n%s", p, r)
		}
	}

	r = e.run("--json", "check", "--read-data")
	requireFailure(t, r)
	sum := r.Message(t, "summary")
	if sum["ok"] != false {
		t.Errorf("JSON summary says ok=%v", sum["ok"])
	}
	res, _ := sum["result"].(map[string]any)
	var dp []string
	for _, v := range res["damaged_packs"].([]any) {
		dp = append(dp, str(v))
	}
	if !slices.Equal(dp, []string{pack}) {
		t.Errorf("JSON damaged_packs = %v, want [%s]", dp, pack)
	}
	var affected []string
	for _, v := range res["affected"].([]any) {
		affected = append(affected, str(v.(map[string]any)["path"]))
	}
	slices.Sort(affected)
	if !slices.Equal(affected, damaged) {
		t.Errorf("JSON affected = %v, want %v", affected, damaged)
	}
	if r.Message(t, "error")["exit_code"] == float64(0) {
		t.Errorf("JSON error line has exit code 0")
	}

	// The undamaged directory restores completely and correctly.
	dstA := filepath.Join(t.TempDir(), "a")
	e.mustRun("restore", "latest", "--target", dstA, "--include", f.dirA, "--verify")
	assertSameTree(t, treeDigest(t, f.dirA), treeDigest(t, filepath.Join(dstA, f.dirA)))
	if _, err := os.Lstat(filepath.Join(dstA, f.dirB)); err == nil {
		t.Errorf("--include %s restored %s too", f.dirA, f.dirB)
	}

	// Restoring everything fails and names the damaged file(s).
	dstAll := filepath.Join(t.TempDir(), "all")
	r = e.expect(3, "restore", "latest", "--target", dstAll) // partial: the rest is restored
	for _, p := range damaged {
		if !strings.Contains(r.Stderr, p) {
			t.Errorf("restore does not name the damaged file %s:\n%s", p, r)
		}
	}
	// Files of A and undamaged files of B are there all the same.
	assertSameTree(t, treeDigest(t, f.dirA), treeDigest(t, filepath.Join(dstAll, f.dirA)))
	for p := range f.files {
		if strings.HasPrefix(p, f.dirB+"/") && !slices.Contains(damaged, p) {
			want, _ := os.ReadFile(p)
			got, err := os.ReadFile(filepath.Join(dstAll, p))
			if err != nil || string(got) != string(want) {
				t.Errorf("undamaged file %s was not restored correctly (%v)", p, err)
			}
		}
	}
}

// TestCorruptRepository damages the repository in other ways: every
// command fails with a clear message and a non-zero exit code, never a
// panic; the exit codes for a missing repository, a newer format and a
// wrong password are the documented ones.
func TestCorruptRepository(t *testing.T) {
	f := newCorruptionFixture(t)
	dataPack, damaged := f.packOnlyIn(t, f.dirB)
	indexFile := func(e *repoEnv) string {
		files := listRepoFiles(t, e.repo, "index")
		if len(files) == 0 {
			t.Fatal("no index file")
		}
		return files[0]
	}
	snapFile := func(e *repoEnv) string {
		files := listRepoFiles(t, e.repo, "snapshots")
		if len(files) != 1 {
			t.Fatalf("want 1 snapshot file, have %v", files)
		}
		return files[0]
	}
	// restoreFails restores everything and expects a failure naming want.
	restoreFails := func(t *testing.T, e *repoEnv, want ...string) {
		t.Helper()
		r := e.run("restore", "latest", "--target", filepath.Join(t.TempDir(), "dst"))
		requireFailure(t, r)
		for _, w := range want {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("restore error does not mention %q:\n%s", w, r)
			}
		}
	}

	t.Run("truncated data pack", func(t *testing.T) {
		e := f.clone(t)
		// Cut into the first blob: every blob of the pack is lost.
		modifyFile(t, packFile(e.repo, dataPack), func(b []byte) []byte { return b[:100] })
		r := e.run("check")
		requireFailure(t, r)
		if !strings.Contains(r.Stdout, dataPack) || !strings.Contains(r.Stdout, "truncated") {
			t.Errorf("check does not report the truncated pack %s:\n%s", dataPack, r)
		}
		for _, p := range damaged {
			if !strings.Contains(r.Stdout, p) {
				t.Errorf("check does not name the affected file %s:\n%s", p, r)
			}
		}
		requireFailure(t, e.run("check", "--read-data"))
		restoreFails(t, e, damaged...)
		e.mustRun("restore", "latest", "--target", filepath.Join(t.TempDir(), "a"), "--include", f.dirA)
	})

	t.Run("missing data pack", func(t *testing.T) {
		e := f.clone(t)
		must(t, os.Remove(packFile(e.repo, dataPack)))
		// The lost blobs and files are the error; the missing pack itself
		// is named at -v.
		r := e.run("-v", "check")
		requireFailure(t, r)
		if !strings.Contains(r.Stdout, dataPack) || !strings.Contains(r.Stdout, "missing") {
			t.Errorf("check -v does not report the missing pack %s:\n%s", dataPack, r)
		}
		for _, p := range damaged {
			if !strings.Contains(r.Stdout, p) {
				t.Errorf("check does not name the affected file %s:\n%s", p, r)
			}
		}
		restoreFails(t, e, damaged...)
		e.mustRun("restore", "latest", "--target", filepath.Join(t.TempDir(), "a"), "--include", f.dirA)
	})

	t.Run("flipped tree pack", func(t *testing.T) {
		e := f.clone(t)
		tp := f.treePack(t)
		modifyFile(t, packFile(e.repo, tp), flipByte(-1))
		r := e.run("check")
		requireFailure(t, r)
		requireFailure(t, e.run("check", "--read-data"))
		restoreFails(t, e)
	})

	t.Run("truncated index", func(t *testing.T) {
		e := f.clone(t)
		idx := indexFile(e)
		modifyFile(t, idx, truncateTo(0.5))
		r := e.run("check")
		requireFailure(t, r)
		if !strings.Contains(r.Stdout, filepath.Base(idx)) {
			t.Errorf("check does not name the damaged index %s:\n%s", filepath.Base(idx), r)
		}
		restoreFails(t, e)
	})

	t.Run("flipped index", func(t *testing.T) {
		e := f.clone(t)
		idx := indexFile(e)
		modifyFile(t, idx, flipByte(-1))
		r := e.run("check")
		requireFailure(t, r)
		if !strings.Contains(r.Stdout, filepath.Base(idx)) {
			t.Errorf("check does not name the damaged index %s:\n%s", filepath.Base(idx), r)
		}
		restoreFails(t, e)
	})

	t.Run("flipped snapshot", func(t *testing.T) {
		e := f.clone(t)
		sf := snapFile(e)
		id := filepath.Base(sf)
		modifyFile(t, sf, flipByte(-1))
		r := e.run("check")
		requireFailure(t, r)
		if !strings.Contains(r.Stdout, id) {
			t.Errorf("check does not name the damaged snapshot %s:\n%s", id, r)
		}
		r = e.run("restore", id, "--target", filepath.Join(t.TempDir(), "dst"))
		requireFailure(t, r)
		r = e.run("snapshots")
		if !strings.Contains(r.Stderr, id[:8]) {
			t.Errorf("snapshots does not warn about the damaged snapshot %s:\n%s", id[:8], r)
		}
	})

	t.Run("flipped config", func(t *testing.T) {
		e := f.clone(t)
		modifyFile(t, filepath.Join(e.repo, "config"), flipByte(-1))
		for _, args := range [][]string{{"snapshots"}, {"check"}, {"backup", f.dirA}, {"restore", "latest", "--target", t.TempDir()}} {
			r := e.run(args...)
			requireFailure(t, r)
			if r.Code == 10 || r.Code == 12 {
				t.Errorf("damaged config reported as exit code %d (no repository / wrong password):\n%s", r.Code, r)
			}
			if !strings.Contains(r.Stderr, "config") {
				t.Errorf("error does not mention the config:\n%s", r)
			}
		}
	})

	t.Run("truncated config", func(t *testing.T) {
		e := f.clone(t)
		modifyFile(t, filepath.Join(e.repo, "config"), truncateTo(0.3))
		requireFailure(t, e.run("snapshots"))
		modifyFile(t, filepath.Join(e.repo, "config"), truncateTo(0))
		requireFailure(t, e.run("snapshots"))
	})

	t.Run("newer format config", func(t *testing.T) {
		e := f.clone(t)
		modifyFile(t, filepath.Join(e.repo, "config"), func(b []byte) []byte {
			if string(b[:4]) != "BNKR" || b[4] != 1 {
				t.Fatalf("config header is %q", b[:8])
			}
			b[4] = 2
			return b
		})
		for _, args := range [][]string{{"snapshots"}, {"check"}, {"backup", f.dirA}} {
			r := e.expect(11, args...)
			if !strings.Contains(r.Stderr, "newer") {
				t.Errorf("exit 11 without saying the format is newer:\n%s", r)
			}
		}
	})

	t.Run("newer format key", func(t *testing.T) {
		e := f.clone(t)
		for _, k := range listRepoFiles(t, e.repo, "keys") {
			modifyFile(t, k, func(b []byte) []byte { b[4] = 2; return b })
		}
		e.expect(11, "snapshots")
	})

	t.Run("wrong password", func(t *testing.T) {
		e := f.clone(t)
		e.env["BUNKER_PASSWORD"] = "not the password"
		for _, args := range [][]string{{"snapshots"}, {"check"}, {"backup", f.dirA}, {"restore", "latest", "--target", t.TempDir()}, {"key", "list"}} {
			e.expect(12, args...)
		}
	})

	t.Run("missing repository", func(t *testing.T) {
		e := newRepoEnv(t, filepath.Join(t.TempDir(), "does-not-exist"))
		for _, args := range [][]string{{"snapshots"}, {"check"}, {"backup", f.dirA}, {"restore", "latest", "--target", t.TempDir()}} {
			e.expect(10, args...)
		}
	})

	t.Run("not a repository", func(t *testing.T) {
		dir := t.TempDir()
		e := newRepoEnv(t, dir)
		e.expect(10, "snapshots")
		writeFile(t, filepath.Join(dir, "notes.txt"), []byte("just a directory"))
		must(t, os.MkdirAll(filepath.Join(dir, "packs"), 0o755))
		e.expect(10, "check")
		e.expect(10, "backup", f.dirA)
	})

	t.Run("repository is a file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "file")
		writeFile(t, p, []byte("x"))
		requireFailure(t, newRepoEnv(t, p).run("snapshots"))
	})
}
