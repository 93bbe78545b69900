//go:build linux

package e2e

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// asUnprivileged prepares r to run as the user "nobody" when the tests run
// as root (root reads files of mode 0000, so only another user sees them as
// unreadable); otherwise r runs as the current user. It returns the uid and
// gid the binary will run with.
func asUnprivileged(t *testing.T, r *repo) (uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		return os.Geteuid(), os.Getegid()
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("running as root without a user 'nobody': %v", err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	r.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	return uid, gid
}

// traversable makes dir and its parents up to the system temp directory
// searchable by everyone (t.TempDir creates them 0700).
func traversable(t *testing.T, dir string) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	for d := dir; strings.HasPrefix(d, tmp+"/"); d = filepath.Dir(d) {
		must(t, os.Chmod(d, 0o755))
	}
}

// TestUnreadableSource is acceptance criterion 6: a backup that cannot read
// some source entries saves the snapshot of everything else, names each
// unreadable path, and exits with code 3.
func TestUnreadableSource(t *testing.T) {
	base := t.TempDir()
	home := filepath.Join(base, "home")
	must(t, os.MkdirAll(home, 0o755))
	r := newRepo(t, filepath.Join(home, "repo"))
	uid, gid := asUnprivileged(t, r)
	r.env = append(r.env, "HOME="+home)
	traversable(t, home)
	must(t, os.Chown(home, uid, gid))

	src := filepath.Join(base, "src")
	writeFile(t, filepath.Join(src, "ok.txt"), []byte("readable"))
	writeFile(t, filepath.Join(src, "sub", "ok2.bin"), randBytes(1, 1<<20+17))
	writeFile(t, filepath.Join(src, "secret.txt"), []byte("unreadable"))
	writeFile(t, filepath.Join(src, "locked", "inside.txt"), []byte("in a locked directory"))
	writeFile(t, filepath.Join(src, "zz-last.txt"), []byte("after the problems"))
	traversable(t, src)
	for _, p := range []string{"secret.txt", "locked", "locked/inside.txt"} {
		must(t, os.Lchown(filepath.Join(src, p), uid, gid))
	}
	must(t, os.Chmod(filepath.Join(src, "secret.txt"), 0))
	must(t, os.Chmod(filepath.Join(src, "locked"), 0))
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(src, "locked"), 0o755) })

	r.mustRun("--insecure-kdf-for-tests", "init")
	res := r.expect(3, "backup", src)
	for _, p := range []string{filepath.Join(src, "secret.txt"), filepath.Join(src, "locked")} {
		if !strings.Contains(res.Stderr, p) {
			t.Errorf("the backup's warnings do not name %s:\n%s", p, res)
		}
	}
	if !strings.Contains(res.Stderr, "saved") {
		t.Errorf("exit 3 without saying the snapshot was saved:\n%s", res)
	}
	ids := r.snapshotIDs()
	if len(ids) != 1 {
		t.Fatalf("want the snapshot saved despite unreadable files, have %d", len(ids))
	}

	// JSON mode: warnings name the paths, the summary counts them.
	res = r.expect(3, "--json", "backup", src)
	warned := ""
	for _, m := range res.JSONLines() {
		if m["message_type"] == "warning" {
			warned += str(m["message"]) + "\n"
		}
	}
	if !strings.Contains(warned, "secret.txt") || !strings.Contains(warned, "locked") {
		t.Errorf("JSON warnings do not name the unreadable paths:\n%s", res)
	}
	if sum := res.Message(t, "summary"); num(sum["errors"]) != 2 || str(sum["snapshot_id"]) == "" {
		t.Errorf("JSON summary: %v", sum)
	}
	if m := res.Message(t, "error"); num(m["exit_code"]) != 3 {
		t.Errorf("JSON error line: %v", m)
	}

	// The snapshot holds everything readable.
	r.mustRun("check", "--read-data")
	dst := filepath.Join(base, "dst")
	traversable(t, base)
	must(t, os.MkdirAll(dst, 0o755))
	must(t, os.Chown(dst, uid, gid))
	r.mustRun("restore", ids[0]+":"+src, "--target", dst, "--verify")
	got := digest(t, dst)
	for _, p := range []string{"ok.txt", "sub/ok2.bin", "zz-last.txt", "locked"} {
		if _, ok := got[p]; !ok {
			t.Errorf("%s is missing from the restore", p)
		}
	}
	if _, ok := got["secret.txt"]; ok {
		t.Errorf("the unreadable file appears in the snapshot")
	}
	if _, ok := got["locked/inside.txt"]; ok {
		t.Errorf("the content of the unlisted directory appears in the snapshot")
	}
}
