package main

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// treeDigest hashes every regular file's path, size, mode, modification
// time and bytes under dir.
func treeDigest(t *testing.T, dir string) (string, int) {
	t.Helper()
	h := sha256.New()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s %d %v %d\n", rel, info.Size(), info.Mode(), info.ModTime().UnixNano())
		h.Write(b)
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), n
}

// TestGenMutateRevert checks that the set is a function of its flags
// (two generations hold the same bytes), that the change touches the
// counts it says, and that revert gives the set back exactly, times
// included, even after a second round's change replaced the first.
func TestGenMutateRevert(t *testing.T) {
	dir := t.TempDir()
	a, b, stash := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "stash")
	flags := []string{"-files", "400", "-big", "3MiB", "-seed", "7"}
	for _, src := range []string{a, b} {
		if err := cmdGen(append([]string{"-src", src, "-j", "2"}, flags...)); err != nil {
			t.Fatal(err)
		}
	}
	// The generations differ in their times only: compare the bytes.
	l := newLayout(7, 400)
	for i := range l.files {
		x, err := os.ReadFile(filepath.Join(a, l.path(i)))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, l.path(i)))
		if err != nil {
			t.Fatal(err)
		}
		if string(x) != string(y) || len(x) != int(l.files[i].size) {
			t.Fatalf("file %d: the two generations differ or the size is not %d", i, l.files[i].size)
		}
	}
	before, n := treeDigest(t, a)
	if n != 401 {
		t.Fatalf("%d files, want 400 and the large one", n)
	}
	for round := 1; round <= 2; round++ {
		if err := cmdMutate(append([]string{"-src", a, "-stash", stash, "-round", fmt.Sprint(round)}, flags...)); err != nil {
			t.Fatal(err)
		}
		after, n := treeDigest(t, a)
		// 1% of 400 is 4: 2 rewritten, 1 deleted, 1 added.
		if after == before || n != 401 {
			t.Fatalf("round %d: after the change %d files (want 401), digest changed: %v", round, n, after != before)
		}
	}
	data, err := os.ReadFile(filepath.Join(stash, manifestName))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		kinds = append(kinds, line[:1])
	}
	slices.Sort(kinds)
	if got := strings.Join(kinds, ""); got != "ABDMM" {
		t.Fatalf("manifest kinds %q, want ABDMM", got)
	}
	if err := revert(a, stash); err != nil {
		t.Fatal(err)
	}
	if after, _ := treeDigest(t, a); after != before {
		t.Fatal("the set differs from the original after revert")
	}
	if _, err := os.Stat(stash); !os.IsNotExist(err) {
		t.Fatalf("stash left behind: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "4096": 4096, "256MiB": 256 << 20, "20GiB": 20 << 30, "1.5GB": 1_500_000_000, "2K": 2048} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "GiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}
