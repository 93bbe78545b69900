package safefs_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/safefs"
)

// setup makes root and outside directories; outside/victim holds "keep".
func setup(t *testing.T) (root *safefs.Root, dir, outside string) {
	t.Helper()
	base := t.TempDir()
	dir, outside = filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, d := range []string{dir, outside} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "victim"), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := safefs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root, dir, outside
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		if runtime.GOOS == "windows" {
			t.Skipf("symlinks need privileges here: %v", err)
		}
		t.Fatal(err)
	}
}

func assertUntouched(t *testing.T, outside string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(outside, "victim"))
	if err != nil || string(b) != "keep" {
		t.Fatalf("outside/victim = %q, %v; want it untouched", b, err)
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 1 {
		t.Fatalf("outside holds %d entries, want only victim", len(ents))
	}
}

// eachMode runs fn with openat2 (where the kernel has it) and with the
// component walk.
func eachMode(t *testing.T, fn func(t *testing.T)) {
	t.Run("default", fn)
	if safefs.HaveOpenat2Switch {
		t.Run("walk", func(t *testing.T) {
			defer safefs.ForceWalk()()
			fn(t)
		})
	}
}

func TestRefusesBadNames(t *testing.T) {
	root, _, outside := setup(t)
	for _, name := range []string{"", "/etc/passwd", "../outside/victim", "a/../../outside/victim", "a//b", "./a", "a/.", "a/..", "x\x00y"} {
		if _, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE, 0o600); err == nil {
			t.Errorf("OpenFile(%q) succeeded", name)
		}
		if err := root.MkdirAll(name, 0o700); err == nil {
			t.Errorf("MkdirAll(%q) succeeded", name)
		}
		if _, err := root.Lstat(name); err == nil {
			t.Errorf("Lstat(%q) succeeded", name)
		}
	}
	assertUntouched(t, outside)
}

func TestRefusesLinkAtLastComponent(t *testing.T) {
	eachMode(t, func(t *testing.T) {
		root, dir, outside := setup(t)
		symlink(t, filepath.Join(outside, "victim"), filepath.Join(dir, "abs"))   // absolute link out
		symlink(t, "../outside/victim", filepath.Join(dir, "rel"))                // relative link out
		symlink(t, filepath.Join(outside, "new"), filepath.Join(dir, "dangling")) // would create outside
		os.WriteFile(filepath.Join(dir, "real"), []byte("inside"), 0o600)         //nolint:errcheck
		symlink(t, "real", filepath.Join(dir, "inner"))                           // link inside the root
		for _, name := range []string{"abs", "rel", "dangling", "inner"} {
			for _, flag := range []int{os.O_RDONLY, os.O_WRONLY | os.O_APPEND | os.O_CREATE, os.O_WRONLY | os.O_CREATE | os.O_TRUNC} {
				f, err := root.OpenFile(name, flag, 0o600)
				if !errors.Is(err, safefs.ErrSymlink) {
					if f != nil {
						f.Close()
					}
					t.Fatalf("OpenFile(%q, %#x) = %v, want ErrSymlink", name, flag, err)
				}
				if !strings.Contains(err.Error(), filepath.Join(dir, name)) {
					t.Errorf("error %q does not name the path", err)
				}
			}
			if err := root.WriteFile(name, []byte("evil"), 0o600); !errors.Is(err, safefs.ErrSymlink) {
				t.Fatalf("WriteFile(%q) = %v, want ErrSymlink", name, err)
			}
			fi, err := root.Lstat(name)
			if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				t.Fatalf("Lstat(%q) = %v, %v; want the link itself", name, fi, err)
			}
		}
		assertUntouched(t, outside)
		if b, _ := os.ReadFile(filepath.Join(dir, "real")); string(b) != "inside" {
			t.Fatalf("real = %q", b)
		}
		// Remove takes the link, not its target.
		if err := root.Remove("abs"); err != nil {
			t.Fatal(err)
		}
		assertUntouched(t, outside)
	})
}

func TestRefusesDirectorySwappedForLink(t *testing.T) {
	eachMode(t, func(t *testing.T) {
		root, dir, outside := setup(t)
		if err := root.MkdirAll("a/b", 0o700); err != nil {
			t.Fatal(err)
		}
		// An attacker swaps a/b for a link to outside, and c for an
		// absolute link to outside.
		if err := os.Remove(filepath.Join(dir, "a", "b")); err != nil {
			t.Fatal(err)
		}
		symlink(t, outside, filepath.Join(dir, "a", "b"))
		symlink(t, outside, filepath.Join(dir, "c"))
		for _, name := range []string{"a/b/victim", "a/b/new", "c/victim", "c/new", "c/sub/new"} {
			if _, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); !errors.Is(err, safefs.ErrSymlink) {
				t.Fatalf("OpenFile(%q) = %v, want ErrSymlink", name, err)
			}
			if _, err := root.Lstat(name); !errors.Is(err, safefs.ErrSymlink) {
				t.Fatalf("Lstat(%q) = %v, want ErrSymlink", name, err)
			}
			if err := root.Remove(name); !errors.Is(err, safefs.ErrSymlink) {
				t.Fatalf("Remove(%q) = %v, want ErrSymlink", name, err)
			}
		}
		for _, name := range []string{"a/b", "a/b/sub", "c/sub"} {
			if err := root.MkdirAll(name, 0o700); !errors.Is(err, safefs.ErrSymlink) {
				t.Fatalf("MkdirAll(%q) = %v, want ErrSymlink", name, err)
			}
		}
		_, err := root.OpenFile("a/b/new", os.O_WRONLY|os.O_CREATE, 0o600)
		if !strings.Contains(err.Error(), "a/b is a symbolic link") {
			t.Errorf("error %q does not name the component", err)
		}
		assertUntouched(t, outside)
	})
}

func TestRefusesSymlinkLoop(t *testing.T) {
	eachMode(t, func(t *testing.T) {
		root, dir, outside := setup(t)
		symlink(t, "b", filepath.Join(dir, "a"))
		symlink(t, "a", filepath.Join(dir, "b"))
		symlink(t, "self", filepath.Join(dir, "self"))
		for _, name := range []string{"a", "b", "self", "a/x", "self/x/y"} {
			if _, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE, 0o600); !errors.Is(err, safefs.ErrSymlink) {
				t.Fatalf("OpenFile(%q) = %v, want ErrSymlink", name, err)
			}
		}
		if err := root.MkdirAll("a/x", 0o700); !errors.Is(err, safefs.ErrSymlink) {
			t.Fatalf("MkdirAll = %v, want ErrSymlink", err)
		}
		assertUntouched(t, outside)
	})
}

func TestRefusesNonRegular(t *testing.T) {
	eachMode(t, func(t *testing.T) {
		root, dir, _ := setup(t)
		if err := root.MkdirAll("d", 0o700); err != nil {
			t.Fatal(err)
		}
		if err := root.WriteFile("f", []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := root.OpenFile("d", os.O_WRONLY|os.O_APPEND, 0); !errors.Is(err, safefs.ErrNotRegular) {
			t.Fatalf("OpenFile(dir) = %v, want ErrNotRegular", err)
		}
		if _, err := root.OpenFile("f/x", os.O_WRONLY|os.O_CREATE, 0o600); !errors.Is(err, safefs.ErrNotDir) {
			t.Fatalf("OpenFile(f/x) = %v, want ErrNotDir", err)
		}
		if err := root.MkdirAll("f/x", 0o700); !errors.Is(err, safefs.ErrNotDir) {
			t.Fatalf("MkdirAll(f/x) = %v, want ErrNotDir", err)
		}
		if mkfifo == nil {
			return
		}
		if err := mkfifo(filepath.Join(dir, "fifo")); err != nil {
			t.Fatal(err)
		}
		// Would block forever if opened as a file.
		for _, flag := range []int{os.O_RDONLY, os.O_WRONLY | os.O_APPEND | os.O_CREATE} {
			if _, err := root.OpenFile("fifo", flag, 0o600); !errors.Is(err, safefs.ErrNotRegular) {
				t.Fatalf("OpenFile(fifo) = %v, want ErrNotRegular", err)
			}
		}
	})
}

func TestCreatesBeneath(t *testing.T) {
	eachMode(t, func(t *testing.T) {
		root, dir, _ := setup(t)
		if err := root.MkdirAll("a/b/c", 0o700); err != nil {
			t.Fatal(err)
		}
		if err := root.MkdirAll("a/b", 0o700); err != nil {
			t.Fatal(err) // existing is fine
		}
		if err := root.WriteFile("a/b/c/f", []byte("one\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := root.OpenFile("a/b/c/f", os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("two\n"); err != nil {
			t.Fatal(err)
		}
		f.Close()
		b, err := os.ReadFile(filepath.Join(dir, "a", "b", "c", "f"))
		if err != nil || string(b) != "one\ntwo\n" {
			t.Fatalf("f = %q, %v", b, err)
		}
		fi, err := root.Lstat("a/b/c/f")
		if err != nil || !fi.Mode().IsRegular() || fi.Size() != 8 {
			t.Fatalf("Lstat = %v, %v", fi, err)
		}
		if _, err := root.Lstat("a/missing"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Lstat(missing) = %v", err)
		}
		if _, err := root.OpenFile("a/missing", os.O_RDONLY, 0); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("OpenFile(missing) = %v", err)
		}
		if err := root.Remove("a/b/c/f"); err != nil {
			t.Fatal(err)
		}
		if err := root.Remove("a/b/c"); err != nil {
			t.Fatal(err)
		}
		if err := root.Remove("a/b/c"); err != nil {
			t.Fatal(err) // missing is fine
		}
	})
}
