//go:build unix

package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/bunkerbackup/bunker/internal/storage"
)

// The owner of the test repositories: not root, and without a name, so
// nothing on the machine is touched.
const repoUID, repoGID = 4242, 4243

// chownTree gives everything below dir to uid:gid.
func chownTree(t *testing.T, dir string, uid, gid int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkEntry fails unless path has the owner and permission bits.
func checkEntry(t *testing.T, path string, uid, gid int, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid || fi.Mode().Perm() != mode {
		t.Errorf("%s: owner %d:%d mode %04o, want %d:%d %04o", path, st.Uid, st.Gid, fi.Mode().Perm(), uid, gid, mode)
	}
}

// TestRootKeepsRepositoryOwner: a root-run command in another user's
// repository (root's `backup postgres --physical` into the repository of
// the postgres user, whose archive_command writes into it too) creates
// files and directories that user owns, with the group permissions the
// config file's mode asks for (restic's rule).
func TestRootKeepsRepositoryOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to own files as another user")
	}
	tests := []struct {
		name          string
		config        fs.FileMode
		dirs, objects fs.FileMode
	}{
		{"private", 0o400, 0o700, 0o400},
		{"group readable", 0o440, 0o750, 0o440},
		{"group writable", 0o460, 0o770, 0o440},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "repo")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, repoUID, repoGID); err != nil {
				t.Fatal(err)
			}
			// root runs init in the user's directory.
			be, err := Create(dir)
			if err != nil {
				t.Fatal(err)
			}
			mustSave(t, be, storage.Handle{Type: storage.ConfigFile}, "config")
			for _, sub := range []string{"keys", "packs", "index", "snapshots", "sessions", "maint"} {
				checkEntry(t, filepath.Join(dir, sub), repoUID, repoGID, 0o700)
			}
			checkEntry(t, filepath.Join(dir, "config"), repoUID, repoGID, 0o400)

			if err := os.Chmod(filepath.Join(dir, "config"), tc.config); err != nil {
				t.Fatal(err)
			}
			// root runs a backup.
			be, err = New(dir)
			if err != nil {
				t.Fatal(err)
			}
			mustSave(t, be, storage.Handle{Type: storage.PackFile, Name: "3fab12"}, "pack")
			mustSave(t, be, storage.Handle{Type: storage.IndexFile, Name: "cafe"}, "index")
			if err := be.Save(t.Context(), storage.Handle{Type: storage.SnapshotFile, Name: "beef"}, []byte("s"), storage.SaveOptions{IfNotExists: true}); err != nil {
				t.Fatal(err)
			}
			checkEntry(t, filepath.Join(dir, "packs", "3f"), repoUID, repoGID, tc.dirs)
			checkEntry(t, filepath.Join(dir, "packs", "3f", "3fab12"), repoUID, repoGID, tc.objects)
			checkEntry(t, filepath.Join(dir, "index", "cafe"), repoUID, repoGID, tc.objects)
			checkEntry(t, filepath.Join(dir, "snapshots", "beef"), repoUID, repoGID, tc.objects)

			// A directory removed by hand is made again the same way,
			// whatever root's umask.
			if err := os.RemoveAll(filepath.Join(dir, "sessions")); err != nil {
				t.Fatal(err)
			}
			old := syscall.Umask(0o077)
			mustSave(t, be, storage.Handle{Type: storage.SessionFile, Name: "s1"}, "session")
			syscall.Umask(old)
			checkEntry(t, filepath.Join(dir, "sessions"), repoUID, repoGID, tc.dirs)
		})
	}
}

// TestRootInOwnRepositoryChangesNothing: root's own repository stays
// root's, private.
func TestRootInOwnRepositoryChangesNothing(t *testing.T) {
	be := newRepo(t)
	mustSave(t, be, storage.Handle{Type: storage.PackFile, Name: "3fab12"}, "pack")
	uid, gid := os.Geteuid(), os.Getegid()
	checkEntry(t, filepath.Join(be.dir, "packs", "3f"), uid, gid, 0o700)
	checkEntry(t, filepath.Join(be.dir, "packs", "3f", "3fab12"), uid, gid, 0o400)
}

// childEnv names the repository a child process of
// TestDeniedNamesOwner writes to.
const childEnv = "LOCAL_TEST_DENIED_REPO"

// childResult is what the child reports.
type childResult struct {
	NewShard   string // error of a Save into a shard root created: "" is success
	RootShard  string // error of a Save into a shard a root process made 0700 before
	Permission bool   // whether that error matches storage.ErrPermission
	List       string // error of listing the packs
}

// TestDeniedNamesOwner: the error for a directory the user may not write
// names the directory, its owner and mode, and the user bunker runs as.
// As root it replays finding 10 of issue 14: root made packs/3f 0700 in
// the repository of another user, whose own bunker (an archive_command)
// then fails there, while what the fixed backend creates as root stays
// writable for that user.
func TestDeniedNamesOwner(t *testing.T) {
	if repo := os.Getenv(childEnv); repo != "" {
		deniedChild(repo)
		return
	}
	if os.Geteuid() != 0 {
		be := newRepo(t)
		shard := filepath.Join(be.dir, "packs", "3f")
		if err := os.Mkdir(shard, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(shard, 0o700) })
		err := be.Save(t.Context(), storage.Handle{Type: storage.PackFile, Name: "3fab12"}, []byte("p"), storage.SaveOptions{})
		checkDenied(t, err.Error(), shard, "mode 0500", "uid "+strconv.Itoa(os.Geteuid()))
		if !errors.Is(err, storage.ErrPermission) || !errors.Is(err, syscall.EACCES) {
			t.Errorf("error %v does not match ErrPermission and EACCES", err)
		}
		return
	}

	// A directory "nobody" can traverse, with a copy of this test binary
	// it can run.
	const nobody = 65534
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "local.test")
	copyFile(t, exe, bin)

	dir := filepath.Join(base, "repo")
	be, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	mustSave(t, be, storage.Handle{Type: storage.ConfigFile}, "config")
	chownTree(t, dir, nobody, nobody)
	// What bunker as root did before: a private root-owned shard.
	rootShard := filepath.Join(dir, "packs", "3f")
	if err := os.Mkdir(rootShard, 0o700); err != nil {
		t.Fatal(err)
	}
	// What it does now.
	be, err = New(dir)
	if err != nil {
		t.Fatal(err)
	}
	mustSave(t, be, storage.Handle{Type: storage.PackFile, Name: "ab0001"}, "pack")

	cmd := exec.Command(bin, "-test.run=^TestDeniedNamesOwner$", "-test.count=1")
	cmd.Env = []string{childEnv + "=" + dir, "PATH=/usr/bin:/bin"}
	cmd.Dir = base
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child as uid %d: %v\n%s%s", nobody, err, stdout.String(), stderr.String())
	}
	line, _, _ := strings.Cut(stdout.String(), "\n")
	var res childResult
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		t.Fatalf("child output %q: %v", stdout.String(), err)
	}
	t.Logf("as the repository's owner: %s", res.RootShard)
	if res.NewShard != "" {
		t.Errorf("the repository's owner cannot write into the shard root created: %s", res.NewShard)
	}
	checkDenied(t, res.RootShard, rootShard, "directory owned by root:root (uid 0, gid 0), mode 0700",
		"bunker runs as nobody:nogroup (uid 65534, gid 65534)")
	checkDenied(t, res.List, rootShard, "directory owned by root:root (uid 0, gid 0), mode 0700")
	if !res.Permission {
		t.Errorf("error %q does not match storage.ErrPermission", res.RootShard)
	}
}

func checkDenied(t *testing.T, msg string, want ...string) {
	t.Helper()
	if !strings.Contains(msg, "permission denied") {
		t.Errorf("error %q does not say permission denied", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not name %q", msg, w)
		}
	}
}

// deniedChild runs as the repository's owner: it saves a pack into the
// shard root created through the backend and one into the shard root made
// by hand, lists the packs, and prints the outcomes as JSON on the first
// line.
func deniedChild(repo string) {
	var res childResult
	be, err := New(repo)
	if err == nil {
		err = be.Save(context.Background(), storage.Handle{Type: storage.PackFile, Name: "ab0002"}, []byte("p"), storage.SaveOptions{})
		if err != nil {
			res.NewShard = err.Error()
		}
		err = be.Save(context.Background(), storage.Handle{Type: storage.PackFile, Name: "3fab12"}, []byte("p"), storage.SaveOptions{})
	}
	if err != nil {
		res.RootShard = err.Error()
		res.Permission = errors.Is(err, storage.ErrPermission)
	}
	if be != nil {
		if err := be.List(context.Background(), storage.PackFile, func(storage.FileInfo) error { return nil }); err != nil {
			res.List = err.Error()
		}
	}
	b, _ := json.Marshal(res)
	os.Stdout.Write(append(b, '\n'))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
