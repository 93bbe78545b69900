package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
)

func newRepo(t *testing.T) *Backend {
	t.Helper()
	be, err := Create(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { _ = be.Close() })
	return be
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend { return newRepo(t) })
}

func mustSave(t *testing.T, be storage.Backend, h storage.Handle, data string) {
	t.Helper()
	if err := be.Save(t.Context(), h, []byte(data), storage.SaveOptions{}); err != nil {
		t.Fatalf("Save(%v): %v", h, err)
	}
}

func writeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tempFiles returns the temporary files in the repository, relative to it.
func tempFiles(t *testing.T, be *Backend) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(be.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), tempPrefix) {
			rel, _ := filepath.Rel(be.dir, path)
			found = append(found, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(found)
	return found
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	writeFile(t, file)
	created := filepath.Join(dir, "repo")
	if _, err := Create(created); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		dir      string
		wantErr  bool
		notExist bool
	}{
		{"existing repository", created, false, false},
		{"missing directory", filepath.Join(dir, "missing"), true, true},
		{"a file", file, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be, err := New(tc.dir)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("New(%s): %v", tc.dir, err)
				}
				if be.Location() != "local:"+tc.dir {
					t.Errorf("Location() = %q, want %q", be.Location(), "local:"+tc.dir)
				}
				return
			}
			if err == nil {
				t.Fatalf("New(%s) succeeded, want error", tc.dir)
			}
			if got := errors.Is(err, storage.ErrNotExist); got != tc.notExist {
				t.Errorf("New(%s) = %v; errors.Is(ErrNotExist) = %v, want %v", tc.dir, err, got, tc.notExist)
			}
		})
	}
}

func TestCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	be, err := Create(dir)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	for _, ft := range storage.AllTypes {
		if ft == storage.ConfigFile {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, string(ft))); err != nil || !fi.IsDir() {
			t.Errorf("directory %s: %v", ft, err)
		}
	}
	// An existing directory without a config may be created again.
	if _, err := Create(dir); err != nil {
		t.Fatalf("Create of an existing empty repository: %v", err)
	}
	mustSave(t, be, storage.Handle{Type: storage.ConfigFile}, "cfg")
	if _, err := Create(dir); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("Create of a repository with a config = %v, want ErrExists", err)
	}
}

func TestLayout(t *testing.T) {
	be := newRepo(t)
	tests := []struct {
		h    storage.Handle
		path string
	}{
		{storage.Handle{Type: storage.ConfigFile}, "config"},
		{storage.Handle{Type: storage.KeyFile, Name: "k1"}, "keys/k1"},
		{storage.Handle{Type: storage.IndexFile, Name: "i1"}, "index/i1"},
		{storage.Handle{Type: storage.SnapshotFile, Name: "s1"}, "snapshots/s1"},
		{storage.Handle{Type: storage.SessionFile, Name: "w1"}, "sessions/w1"},
		{storage.Handle{Type: storage.MaintFile, Name: "lease"}, "maint/lease"},
		{storage.Handle{Type: storage.PackFile, Name: "ab12cd"}, "packs/ab/ab12cd"},
		{storage.Handle{Type: storage.PackFile, Name: "ab"}, "packs/ab/ab"},
		{storage.Handle{Type: storage.PackFile, Name: "z"}, "packs/z/z"},
	}
	for _, tc := range tests {
		t.Run(tc.h.String(), func(t *testing.T) {
			mustSave(t, be, tc.h, "data")
			fi, err := os.Stat(filepath.Join(be.dir, filepath.FromSlash(tc.path)))
			if err != nil {
				t.Fatalf("object %v not at %s: %v", tc.h, tc.path, err)
			}
			if runtime.GOOS != "windows" && fi.Mode().Perm() != fileMode {
				t.Errorf("%s has mode %v, want %v", tc.path, fi.Mode().Perm(), fs.FileMode(fileMode))
			}
		})
	}
	if left := tempFiles(t, be); len(left) != 0 {
		t.Errorf("temporary files left after saves: %q", left)
	}
}

func TestConditionalCreateLeavesNoTemp(t *testing.T) {
	be := newRepo(t)
	h := storage.Handle{Type: storage.PackFile, Name: "cafe"}
	opts := storage.SaveOptions{IfNotExists: true}
	if err := be.Save(t.Context(), h, []byte("one"), opts); err != nil {
		t.Fatal(err)
	}
	if err := be.Save(t.Context(), h, []byte("two"), opts); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second conditional create = %v, want ErrExists", err)
	}
	if left := tempFiles(t, be); len(left) != 0 {
		t.Errorf("temporary files left: %q", left)
	}
}

// TestListSkipsJunk plays the leftovers of crashed writers and foreign files.
func TestListSkipsJunk(t *testing.T) {
	be := newRepo(t)
	mustSave(t, be, storage.Handle{Type: storage.KeyFile, Name: "k1"}, "key")
	mustSave(t, be, storage.Handle{Type: storage.PackFile, Name: "ab12"}, "pack")
	for _, junk := range []string{
		".tmp-config-123",
		"keys/.tmp-k2-123",
		"keys/UPPER",
		"keys/subdir/k3",
		"packs/ab/.tmp-ab34-1",
		"packs/zz/ab56", // wrong shard
		"packs/stray",   // not in a shard
		"packs/.tmp-dir/ab78",
	} {
		writeFile(t, filepath.Join(be.dir, filepath.FromSlash(junk)))
	}
	tests := []struct {
		ft   storage.FileType
		want []string
	}{
		{storage.ConfigFile, nil},
		{storage.KeyFile, []string{"k1"}},
		{storage.PackFile, []string{"ab12"}},
	}
	for _, tc := range tests {
		var got []string
		err := be.List(t.Context(), tc.ft, func(fi storage.FileInfo) error {
			got = append(got, fi.Name)
			return nil
		})
		if err != nil {
			t.Fatalf("List(%s): %v", tc.ft, err)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("List(%s) = %q, want %q", tc.ft, got, tc.want)
		}
	}
}

func TestRemoveStaleTemp(t *testing.T) {
	be := newRepo(t)
	mustSave(t, be, storage.Handle{Type: storage.PackFile, Name: "ab12"}, "pack")
	mustSave(t, be, storage.Handle{Type: storage.IndexFile, Name: "i1"}, "index")
	old := time.Now().Add(-2 * time.Hour)
	stale := []string{".tmp-config-1", "index/.tmp-i2-1", "packs/ab/.tmp-ab34-1", "packs/cd/.tmp-cd56-1"}
	fresh := []string{"keys/.tmp-k1-1", "packs/ab/.tmp-ab78-1"}
	for _, f := range stale {
		p := filepath.Join(be.dir, filepath.FromSlash(f))
		writeFile(t, p)
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range fresh {
		writeFile(t, filepath.Join(be.dir, filepath.FromSlash(f)))
	}

	n, err := be.RemoveStaleTemp(t.Context(), time.Hour)
	if err != nil {
		t.Fatalf("RemoveStaleTemp(1h): %v", err)
	}
	if n != len(stale) {
		t.Errorf("RemoveStaleTemp(1h) removed %d files, want %d", n, len(stale))
	}
	want := append([]string(nil), fresh...)
	sort.Strings(want)
	if got := tempFiles(t, be); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("after RemoveStaleTemp(1h) temporary files = %q, want %q", got, want)
	}

	n, err = be.RemoveStaleTemp(t.Context(), 0)
	if err != nil || n != len(fresh) {
		t.Errorf("RemoveStaleTemp(0) = %d, %v; want %d, nil", n, err, len(fresh))
	}
	if got := tempFiles(t, be); len(got) != 0 {
		t.Errorf("after RemoveStaleTemp(0) temporary files = %q, want none", got)
	}
	for _, h := range []storage.Handle{{Type: storage.PackFile, Name: "ab12"}, {Type: storage.IndexFile, Name: "i1"}} {
		if _, err := be.Stat(t.Context(), h); err != nil {
			t.Errorf("object %v after RemoveStaleTemp: %v", h, err)
		}
	}
}

func TestSaveRecreatesMissingDirs(t *testing.T) {
	be := newRepo(t)
	for _, d := range []string{"keys", "packs"} {
		if err := os.RemoveAll(filepath.Join(be.dir, d)); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []storage.Handle{{Type: storage.KeyFile, Name: "k"}, {Type: storage.PackFile, Name: "ff00"}} {
		mustSave(t, be, h, "x")
		if got, err := storage.LoadAll(t.Context(), be, h); err != nil || string(got) != "x" {
			t.Errorf("LoadAll(%v) = %q, %v", h, got, err)
		}
	}
}

func TestMissingTypeDirListsNothing(t *testing.T) {
	be := newRepo(t)
	if err := os.RemoveAll(filepath.Join(be.dir, "packs")); err != nil {
		t.Fatal(err)
	}
	err := be.List(t.Context(), storage.PackFile, func(fi storage.FileInfo) error {
		t.Errorf("listed %q", fi.Name)
		return nil
	})
	if err != nil {
		t.Fatalf("List of a missing directory: %v", err)
	}
}

func TestNotRegularFile(t *testing.T) {
	be := newRepo(t)
	h := storage.Handle{Type: storage.PackFile, Name: "abcd"}
	if err := os.MkdirAll(filepath.Join(be.dir, "packs", "ab", "abcd"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := be.Stat(t.Context(), h); err == nil {
		t.Error("Stat of a directory succeeded")
	}
	if _, err := storage.LoadAll(t.Context(), be, h); err == nil {
		t.Error("Load of a directory succeeded")
	}
}

func TestCanceledContext(t *testing.T) {
	be := newRepo(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	h := storage.Handle{Type: storage.SnapshotFile, Name: "s"}
	if err := be.Save(ctx, h, []byte("x"), storage.SaveOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Save with a canceled context = %v, want context.Canceled", err)
	}
	if _, err := be.Stat(t.Context(), h); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("Stat after a canceled Save = %v, want ErrNotExist", err)
	}
	if err := be.List(ctx, storage.SnapshotFile, func(storage.FileInfo) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a canceled context = %v, want context.Canceled", err)
	}
}

func TestPermissionDenied(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix permissions")
	}
	if os.Geteuid() == 0 {
		t.Skip("root ignores permissions; mapping is covered by TestMapErr")
	}
	be := newRepo(t)
	h := storage.Handle{Type: storage.KeyFile, Name: "k"}
	mustSave(t, be, h, "key")
	keys := filepath.Join(be.dir, "keys")
	if err := os.Chmod(keys, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(keys, 0o700) })
	if err := be.Save(t.Context(), storage.Handle{Type: storage.KeyFile, Name: "k2"}, []byte("x"), storage.SaveOptions{}); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("Save into a read-only directory = %v, want ErrPermission", err)
	}
	if err := be.Remove(t.Context(), h); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("Remove from a read-only directory = %v, want ErrPermission", err)
	}
	if err := os.Chmod(filepath.Join(keys, "k"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.LoadAll(t.Context(), be, h); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("Load of an unreadable file = %v, want ErrPermission", err)
	}
}
