//go:build linux

package cli_test

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// makeDeepDir creates deepLevels nested directories below dir and returns a
// descriptor of the bottom one (whose path is longer than PATH_MAX).
func makeDeepDir(t *testing.T, dir string) int {
	t.Helper()
	must(t, os.MkdirAll(dir, 0o755))
	cur := openDir(t, unix.AT_FDCWD, dir)
	for i := 0; i < deepLevels; i++ {
		if err := unix.Mkdirat(cur, deepName(i), 0o755); err != nil && err != unix.EEXIST {
			t.Fatal(err)
		}
		next := openDir(t, cur, deepName(i))
		unix.Close(cur)
		cur = next
	}
	return cur
}

// TestRestoreDeepHardlink: a hard-linked pair below PATH_MAX is backed up
// fine, but the restore links the second name by its joined path.
func TestRestoreDeepHardlink(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "src")
	fd := makeDeepDir(t, src)
	writeAt(t, fd, "a", []byte("linked content"), 0o644)
	must(t, unix.Linkat(fd, "a", fd, "b", 0))
	unix.Close(fd)
	e := initRepo(t)
	e.backupJSON(0, src)
	dst := filepath.Join(root, "dst")
	e.mustRun("restore", "latest:"+src, "--target", dst)
	c := compareTrees(t, src, dst)
	if len(c.errs) > 0 {
		t.Fatalf("deep hard links restored wrongly:\n%s", strings.Join(c.errs, "\n"))
	}
}

// TestExcludeMarkerDeep: marker files are honoured at any depth.
func TestExcludeMarkerDeep(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "src")
	fd := makeDeepDir(t, src)
	must(t, unix.Mkdirat(fd, "cache", 0o755))
	c := openDir(t, fd, "cache")
	writeAt(t, c, "CACHEDIR.TAG", []byte("Signature: 8a477f597d28d172789f06886806bc55\n"), 0o644)
	writeAt(t, c, "junk", []byte("junk"), 0o644)
	unix.Close(c)
	unix.Close(fd)
	e := initRepo(t)
	e.backupJSON(0, "--exclude-caches", src)
	if r := e.mustRun("find", "junk"); strings.Contains(r.Stdout, "junk") {
		t.Fatalf("the content of a deep cache directory was backed up:\n%.300s", r.Stdout)
	}
}

// TestRestoreAgainDeep: restoring into a target that already holds a deep
// tree replaces changed files and, with --delete, removes extra entries.
func TestRestoreAgainDeep(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "src")
	fd := makeDeepDir(t, src)
	writeAt(t, fd, "a", []byte("original"), 0o644)
	unix.Close(fd)
	e := initRepo(t)
	e.backupJSON(0, src)
	dst := filepath.Join(root, "dst")
	e.mustRun("restore", "latest:"+src, "--target", dst)
	d := makeDeepDir(t, dst)
	defer unix.Close(d)
	must(t, unix.Unlinkat(d, "a", 0))
	writeAt(t, d, "a", []byte("changed locally"), 0o644)
	writeAt(t, d, "extra", []byte("extra"), 0o644)
	e.mustRun("restore", "latest:"+src, "--target", dst, "--delete")
	if got := string(readAllAt(t, d, "a")); got != "original" {
		t.Errorf("deep file not replaced: %q", got)
	}
	if names := listNames(t, d); len(names) != 1 {
		t.Errorf("--delete left %v in a deep directory", names)
	}
}

// TestRestoreWholeSnapshotKeepsTarget: the root of a snapshot of absolute
// paths is a made-up directory ("/" with mode 0755, owner 0:0, no time).
// Restoring the whole snapshot applies that made-up metadata to the
// target, so an existing target directory of another user ends up owned
// by root with mode 0755.
func TestRestoreWholeSnapshotKeepsTarget(t *testing.T) {
	if !isRoot() {
		t.Skip("needs root to chown the target")
	}
	root := t.TempDir()
	src := filepath.Join(root, "src")
	writeFile(t, filepath.Join(src, "a"), []byte("a"))
	e := initRepo(t)
	e.backupJSON(0, src)
	dst := filepath.Join(root, "dst")
	must(t, os.Mkdir(dst, 0o700))
	must(t, os.Chown(dst, fidelityUID, fidelityGID))
	e.mustRun("restore", "latest", "--target", dst)
	var st unix.Stat_t
	must(t, unix.Stat(dst, &st))
	if st.Uid != fidelityUID || st.Gid != fidelityGID || st.Mode&0o7777 != 0o700 {
		t.Fatalf("target changed to mode %#o owner %d:%d, was 0700 %d:%d", st.Mode&0o7777, st.Uid, st.Gid, fidelityUID, fidelityGID)
	}
}

// TestDumpTarMetadata: dump of a directory writes a tar that keeps
// special modes, device numbers, FIFOs, symlinks, xattrs and odd names.
func TestDumpTarMetadata(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "src")
	must(t, os.MkdirAll(src, 0o755))
	fd := openDir(t, unix.AT_FDCWD, src)
	writeAt(t, fd, "suid", []byte("s"), 0o755)
	must(t, unix.Fchmodat(fd, "suid", 0o4755, 0))
	writeAt(t, fd, "\xff\xfe.bin", []byte("odd name"), 0o644)
	must(t, unix.Mkfifoat(fd, "fifo", 0o600))
	must(t, unix.Symlinkat("suid", fd, "link"))
	haveDev := isRoot() && unix.Mknodat(fd, "null", unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))) == nil
	haveXattr := unix.Lsetxattr(filepath.Join(src, "suid"), "user.k", []byte("v"), 0) == nil
	unix.Close(fd)
	e := initRepo(t)
	e.backupJSON(0, src)
	r := e.mustRun("dump", "latest", src)
	tr := tar.NewReader(strings.NewReader(r.Stdout))
	hdrs := map[string]*tar.Header{}
	base := strings.TrimPrefix(src, "/") + "/"
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("dump tar: %v", err)
		}
		hdrs[strings.TrimPrefix(h.Name, base)] = h
	}
	if h := hdrs["suid"]; h == nil || h.Mode != 0o4755 || (haveXattr && h.PAXRecords["SCHILY.xattr.user.k"] != "v") {
		t.Errorf("setuid file in tar: %+v", h)
	}
	if h := hdrs["fifo"]; h == nil || h.Typeflag != tar.TypeFifo {
		t.Errorf("fifo in tar: %+v", h)
	}
	if h := hdrs["link"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "suid" {
		t.Errorf("symlink in tar: %+v", h)
	}
	if h := hdrs["\xff\xfe.bin"]; h == nil || h.Size != int64(len("odd name")) {
		t.Errorf("non-UTF-8 name in tar: %+v (entries %v)", h, keys(hdrs))
	}
	if haveDev {
		if h := hdrs["null"]; h == nil || h.Typeflag != tar.TypeChar || h.Devmajor != 1 || h.Devminor != 3 {
			t.Errorf("char device in tar: %+v", h)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
