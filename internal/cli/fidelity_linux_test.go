//go:build linux

package cli_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	fidelityUID = 1234
	fidelityGID = 5678
	deepLevels  = 50
	deepNameLen = 100
	sparseSize  = 64 << 20
)

// fidelityFeatures records which optional parts of the fixture could be
// built on this machine.
type fidelityFeatures struct {
	root    bool // ownership, devices
	devices bool
	xattrs  bool
}

func isRoot() bool { return os.Geteuid() == 0 }

func deepName(i int) string {
	p := fmt.Sprintf("deep-%02d-", i)
	return p + strings.Repeat("d", deepNameLen-len(p))
}

// openDir opens a directory relative to dirfd without following symlinks.
func openDir(t *testing.T, dirfd int, name string) int {
	t.Helper()
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open directory %q: %v", name, err)
	}
	return fd
}

func writeAt(t *testing.T, dirfd int, name string, data []byte, perm uint32) {
	t.Helper()
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, perm)
	if err != nil {
		t.Fatalf("create %q: %v", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(data); err != nil {
		t.Fatalf("write %q: %v", name, err)
	}
	must(t, f.Close())
}

// buildFidelitySource creates the fixture tree at src and reports which
// optional features it holds.
func buildFidelitySource(t *testing.T, src string) fidelityFeatures {
	t.Helper()
	feat := fidelityFeatures{root: isRoot()}
	must(t, os.MkdirAll(src, 0o755))
	fd := openDir(t, unix.AT_FDCWD, src)
	defer unix.Close(fd)

	// Regular files: a multi-chunk one (chunks are 512K..8M, avg 1M),
	// small, empty, odd names.
	writeAt(t, fd, "big.bin", randBytes(11, 6<<20+12345), 0o644)
	writeAt(t, fd, "small.txt", []byte("hello, bunker\n"), 0o640)
	writeAt(t, fd, "empty", nil, 0o600)
	writeAt(t, fd, "\xff\xfe.bin", randBytes(12, 3000), 0o644)
	long := "L" + strings.Repeat("o", 248) + "ng" // 251 bytes
	writeAt(t, fd, long, []byte("long name"), 0o644)
	must(t, unix.Mkdirat(fd, "emptydir", 0o750))

	// Symlinks: relative, dangling, non-UTF-8 target, absolute.
	must(t, unix.Symlinkat("small.txt", fd, "link"))
	must(t, unix.Symlinkat("does/not/exist", fd, "dangling"))
	must(t, unix.Symlinkat("\xff\xfe/target\x80", fd, "badlink"))
	must(t, unix.Symlinkat("/etc/passwd", fd, "abslink"))

	// Hard links.
	writeAt(t, fd, "hard1", randBytes(13, 70000), 0o644)
	must(t, unix.Linkat(fd, "hard1", fd, "hard2", 0))
	must(t, unix.Mkdirat(fd, "sub", 0o755))
	sub := openDir(t, fd, "sub")
	must(t, unix.Linkat(fd, "hard1", sub, "hard3", 0))
	writeAt(t, sub, "nested.txt", []byte("nested"), 0o644)
	unix.Close(sub)

	// FIFO.
	must(t, unix.Mkfifoat(fd, "fifo", 0o620))

	// Devices (root only; a container may refuse mknod).
	if feat.root {
		err := unix.Mknodat(fd, "null", unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
		if err == nil {
			err = unix.Mknodat(fd, "blockdev", unix.S_IFBLK|0o660, int(unix.Mkdev(7, 200)))
		}
		switch {
		case err == nil:
			feat.devices = true
		case errors.Is(err, unix.EPERM):
			t.Logf("mknod not permitted here: device nodes are not tested (%v)", err)
			_ = unix.Unlinkat(fd, "null", 0)
		default:
			t.Fatalf("mknod: %v", err)
		}
	}

	// Special mode bits; ownership first (chown clears set-id bits).
	writeAt(t, fd, "setuid", []byte("#!/bin/sh\n"), 0o755)
	writeAt(t, fd, "setgid", []byte("#!/bin/sh\n"), 0o755)
	must(t, unix.Mkdirat(fd, "sticky", 0o777))
	must(t, unix.Mkdirat(fd, "sgiddir", 0o775))
	writeAt(t, fd, "owned", []byte("owned by someone else"), 0o644)
	must(t, unix.Mkdirat(fd, "owneddir", 0o755))
	must(t, unix.Symlinkat("owned", fd, "ownedlink"))
	if feat.root {
		for _, n := range []string{"owned", "owneddir", "ownedlink", "setuid", "sgiddir"} {
			must(t, unix.Fchownat(fd, n, fidelityUID, fidelityGID, unix.AT_SYMLINK_NOFOLLOW))
		}
	}
	must(t, unix.Fchmodat(fd, "setuid", 0o4755, 0))
	must(t, unix.Fchmodat(fd, "setgid", 0o2755, 0))
	must(t, unix.Fchmodat(fd, "sticky", 0o1777, 0))
	must(t, unix.Fchmodat(fd, "sgiddir", 0o2775, 0))

	// Extended attributes.
	xp := func(name string) string { return fmt.Sprintf("/proc/self/fd/%d/%s", fd, name) }
	err := unix.Lsetxattr(xp("small.txt"), "user.bunker.test", []byte("value \x00\xff binary"), 0)
	switch {
	case err == nil:
		feat.xattrs = true
		must(t, unix.Lsetxattr(xp("small.txt"), "user.empty", nil, 0))
		must(t, unix.Lsetxattr(xp("emptydir"), "user.dir", []byte("on a directory"), 0))
		must(t, unix.Lsetxattr(xp("big.bin"), "user.big", bytes.Repeat([]byte("x"), 2000), 0))
	case errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP):
		t.Logf("user xattrs not supported here: not tested (%v)", err)
	default:
		t.Fatalf("setxattr: %v", err)
	}

	// Sparse file: 64 MiB with two written blocks.
	sfd, err := unix.Openat(fd, "sparse", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	must(t, err)
	sf := os.NewFile(uintptr(sfd), "sparse")
	_, err = sf.WriteAt(randBytes(14, 4096), 1<<20)
	must(t, err)
	_, err = sf.WriteAt(randBytes(15, 4096), 40<<20)
	must(t, err)
	must(t, sf.Truncate(sparseSize))
	must(t, sf.Close())

	// Deep tree: the bottom's path is longer than PATH_MAX.
	cur, err := unix.Dup(fd)
	must(t, err)
	for i := 0; i < deepLevels; i++ {
		must(t, unix.Mkdirat(cur, deepName(i), 0o755))
		next := openDir(t, cur, deepName(i))
		unix.Close(cur)
		cur = next
	}
	writeAt(t, cur, "leaf.txt", []byte("at the bottom of a very deep tree\n"), 0o644)
	must(t, unix.Symlinkat("leaf.txt", cur, "leaf.link"))
	unix.Close(cur)

	// Distinct nanosecond mtimes everywhere, children before parents.
	i := 0
	walkPostOrder(t, fd, func(dirfd int, name string) {
		i++
		mt := unix.NsecToTimespec(time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC).UnixNano() + int64(i)*1_000_000_007 + 123_456_789)
		at := unix.NsecToTimespec(time.Date(2002, 1, 1, 0, 0, 0, 987_654_321, time.UTC).UnixNano())
		must(t, unix.UtimesNanoAt(dirfd, name, []unix.Timespec{at, mt}, unix.AT_SYMLINK_NOFOLLOW))
	})
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, src, []unix.Timespec{
		unix.NsecToTimespec(1e9), unix.NsecToTimespec(time.Date(2010, 5, 6, 7, 8, 9, 101_010_101, time.UTC).UnixNano())}, 0))
	return feat
}

// listNames lists a directory given by descriptor.
func listNames(t *testing.T, dirfd int) []string {
	t.Helper()
	fd := openDir(t, dirfd, ".")
	f := os.NewFile(uintptr(fd), "dir")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	must(t, err)
	slices.Sort(names)
	return names
}

func lstatAt(t *testing.T, dirfd int, name string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatalf("lstat %q: %v", name, err)
	}
	return st
}

// walkPostOrder calls fn for every entry below dirfd, children first.
func walkPostOrder(t *testing.T, dirfd int, fn func(dirfd int, name string)) {
	t.Helper()
	for _, name := range listNames(t, dirfd) {
		st := lstatAt(t, dirfd, name)
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			sub := openDir(t, dirfd, name)
			walkPostOrder(t, sub, fn)
			unix.Close(sub)
		}
		fn(dirfd, name)
	}
}

// xattrsAt returns the extended attributes of an entry (not following
// symlinks), reached through /proc so that long paths work.
func xattrsAt(t *testing.T, dirfd int, name string) map[string]string {
	t.Helper()
	p := fmt.Sprintf("/proc/self/fd/%d/%s", dirfd, name)
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
		return nil
	}
	if err != nil {
		t.Fatalf("listxattr %q: %v", name, err)
	}
	out := map[string]string{}
	for _, k := range strings.Split(string(buf[:n]), "\x00") {
		if k == "" {
			continue
		}
		vb := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, k, vb)
		if err != nil {
			t.Fatalf("getxattr %q %q: %v", name, k, err)
		}
		out[k] = string(vb[:m])
	}
	return out
}

func readAllAt(t *testing.T, dirfd int, name string) []byte {
	t.Helper()
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %q: %v", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(f); err != nil {
		t.Fatalf("read %q: %v", name, err)
	}
	return b.Bytes()
}

// treeComparer compares two trees entry by entry through directory
// descriptors, so depth beyond PATH_MAX is no problem.
type treeComparer struct {
	t      *testing.T
	inodes map[uint64]uint64 // source inode -> restored inode (hard links)
	seen   map[string]bool   // relative paths compared
	errs   []string
	sparse *unix.Stat_t // restored sparse file
}

func (c *treeComparer) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

func (c *treeComparer) compareStat(rel string, a, b *unix.Stat_t) {
	if a.Mode != b.Mode {
		c.errorf("%q: mode %#o, restored %#o", rel, a.Mode, b.Mode)
	}
	if a.Uid != b.Uid || a.Gid != b.Gid {
		c.errorf("%q: owner %d:%d, restored %d:%d", rel, a.Uid, a.Gid, b.Uid, b.Gid)
	}
	if a.Mtim != b.Mtim {
		c.errorf("%q: mtime %d.%09d, restored %d.%09d", rel, a.Mtim.Sec, a.Mtim.Nsec, b.Mtim.Sec, b.Mtim.Nsec)
	}
}

func (c *treeComparer) compareDir(srcfd, dstfd int, rel string) {
	t := c.t
	sn, dn := listNames(t, srcfd), listNames(t, dstfd)
	if !slices.Equal(sn, dn) {
		c.errorf("%q: entries %q, restored %q", rel, sn, dn)
	}
	for _, name := range sn {
		if !slices.Contains(dn, name) {
			continue
		}
		r := name
		if rel != "" {
			r = rel + "/" + name
		}
		c.seen[r] = true
		a, b := lstatAt(t, srcfd, name), lstatAt(t, dstfd, name)
		c.compareStat(r, &a, &b)
		if xa, xb := xattrsAt(t, srcfd, name), xattrsAt(t, dstfd, name); !mapsEqual(xa, xb) {
			c.errorf("%q: xattrs %q, restored %q", r, xa, xb)
		}
		if a.Mode&unix.S_IFMT != b.Mode&unix.S_IFMT {
			continue
		}
		switch a.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			if a.Size != b.Size {
				c.errorf("%q: size %d, restored %d", r, a.Size, b.Size)
			} else if !bytes.Equal(readAllAt(t, srcfd, name), readAllAt(t, dstfd, name)) {
				c.errorf("%q: content differs", r)
			}
			if a.Nlink > 1 {
				if want, ok := c.inodes[a.Ino]; ok && want != b.Ino {
					c.errorf("%q: hard link not restored (inode %d, want %d shared with its other name)", r, b.Ino, want)
				}
				c.inodes[a.Ino] = b.Ino
				if a.Nlink != b.Nlink {
					c.errorf("%q: %d links, restored %d", r, a.Nlink, b.Nlink)
				}
			}
			if r == "sparse" {
				bb := b
				c.sparse = &bb
			}
		case unix.S_IFLNK:
			la, lb := make([]byte, 4096), make([]byte, 4096)
			na, err := unix.Readlinkat(srcfd, name, la)
			must(t, err)
			nb, err := unix.Readlinkat(dstfd, name, lb)
			must(t, err)
			if !bytes.Equal(la[:na], lb[:nb]) {
				c.errorf("%q: symlink target %q, restored %q", r, la[:na], lb[:nb])
			}
		case unix.S_IFCHR, unix.S_IFBLK:
			if a.Rdev != b.Rdev {
				c.errorf("%q: device %d:%d, restored %d:%d", r, unix.Major(a.Rdev), unix.Minor(a.Rdev), unix.Major(b.Rdev), unix.Minor(b.Rdev))
			}
		case unix.S_IFDIR:
			s, d := openDir(t, srcfd, name), openDir(t, dstfd, name)
			c.compareDir(s, d, r)
			unix.Close(s)
			unix.Close(d)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// compareTrees compares src and dst (both directories) completely.
func compareTrees(t *testing.T, src, dst string) *treeComparer {
	t.Helper()
	c := &treeComparer{t: t, inodes: map[uint64]uint64{}, seen: map[string]bool{}}
	s, d := openDir(t, unix.AT_FDCWD, src), openDir(t, unix.AT_FDCWD, dst)
	defer unix.Close(s)
	defer unix.Close(d)
	var a, b unix.Stat_t
	must(t, unix.Fstat(s, &a))
	must(t, unix.Fstat(d, &b))
	c.compareStat(".", &a, &b)
	c.compareDir(s, d, "")
	return c
}

// TestFidelityRoundTrip backs up a tree holding every kind of entry and
// metadata Bunker promises to keep, restores it with --verify and compares
// everything.
func TestFidelityRoundTrip(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "src")
	feat := buildFidelitySource(t, src)
	t.Logf("fixture: root=%v devices=%v xattrs=%v", feat.root, feat.devices, feat.xattrs)

	e := initRepo(t)
	sum, res := e.backupJSON(0, src)
	if n := num(sum["errors"]); n != 0 {
		t.Fatalf("backup reported %d errors:\n%s", n, res)
	}

	// Everything but the deep tree restores and verifies (--verify of
	// files below PATH_MAX is TestRestoreVerifyDeepPath, a known bug).
	vdst := filepath.Join(root, "verified")
	e.mustRun("restore", "latest:"+src, "--target", vdst, "--verify", "--exclude", src+"/deep-00-*")
	if _, err := os.Lstat(filepath.Join(vdst, deepName(0))); err == nil {
		t.Errorf("--exclude did not leave out the deep tree")
	}

	// The full restore without --verify: compared below entry by entry.
	dst := filepath.Join(root, "dst")
	e.mustRun("restore", "latest:"+src, "--target", dst)

	c := compareTrees(t, src, dst)
	for _, want := range []string{"big.bin", "empty", "emptydir", "\xff\xfe.bin", "link", "dangling", "badlink",
		"hard1", "hard2", "sub/hard3", "fifo", "setuid", "setgid", "sticky", "sgiddir", "owned", "owneddir", "ownedlink", "sparse"} {
		if !c.seen[want] {
			t.Errorf("%q was not compared (missing in the restore?)", want)
		}
	}
	if feat.devices && (!c.seen["null"] || !c.seen["blockdev"]) {
		t.Errorf("device nodes were not restored")
	}
	deepLeaf := ""
	for i := 0; i < deepLevels; i++ {
		deepLeaf += deepName(i) + "/"
	}
	deepLeaf += "leaf.txt"
	if !c.seen[deepLeaf] {
		t.Errorf("the bottom of the deep tree (%d bytes below the target) was not restored", len(deepLeaf))
	}
	if c.sparse != nil {
		allocated := c.sparse.Blocks * 512
		t.Logf("sparse file: size %d, %d bytes allocated after restore", c.sparse.Size, allocated)
		if allocated > sparseSize/4 {
			t.Errorf("restored sparse file allocates %d bytes of %d: holes were not kept", allocated, sparseSize)
		}
	}
	if len(c.errs) > 0 {
		t.Errorf("restored tree differs from the source in %d ways:\n  %s", len(c.errs), strings.Join(c.errs, "\n  "))
	}
	if !feat.root {
		t.Log("not root: ownership and device nodes were not tested")
	}
}

// skipBug skips a test that demonstrates a known bug, unless
// BUNKER_TEST_BUGS=1 asks to run it (it then fails until the bug is fixed).
// TestRestoreVerifyDeepPath: restore writes files below PATH_MAX through
// directory descriptors, but --verify reads them back by their joined path,
// which fails with ENAMETOOLONG, so a perfect restore is reported as a
// verification failure (exit 1).
func TestRestoreVerifyDeepPath(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "src")
	must(t, os.MkdirAll(src, 0o755))
	fd := openDir(t, unix.AT_FDCWD, src)
	cur, err := unix.Dup(fd)
	must(t, err)
	unix.Close(fd)
	for i := 0; i < deepLevels; i++ {
		must(t, unix.Mkdirat(cur, deepName(i), 0o755))
		next := openDir(t, cur, deepName(i))
		unix.Close(cur)
		cur = next
	}
	writeAt(t, cur, "leaf.txt", []byte("deep\n"), 0o644)
	unix.Close(cur)
	e := initRepo(t)
	e.backupJSON(0, src)
	e.mustRun("restore", "latest:"+src, "--target", filepath.Join(root, "dst"), "--verify")
}

// Xattrs of files and directories are read through their descriptors, and
// an unchanged file takes them from the parent snapshot: a later backup
// must still see an xattr that changed while the content did not (setting
// one changes the ctime).
func TestXattrsAcrossIncrementalBackups(t *testing.T) {
	e := initRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	f := filepath.Join(src, "d", "f.txt")
	writeFile(t, f, []byte("content"))
	setx := func(p, name, val string) {
		t.Helper()
		if err := unix.Lsetxattr(p, name, []byte(val), 0); err != nil {
			t.Skipf("user xattrs not supported here: %v", err)
		}
	}
	setx(f, "user.a", "1")
	setx(filepath.Join(src, "d"), "user.d", "dir")
	check := func(want string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "out")
		e.mustRun("restore", "latest:"+src, "--target", out)
		get := func(p, name string) string {
			buf := make([]byte, 64)
			n, err := unix.Lgetxattr(p, name, buf)
			if err != nil {
				return "error: " + err.Error()
			}
			return string(buf[:n])
		}
		if got := get(filepath.Join(out, "d", "f.txt"), "user.a"); got != want {
			t.Errorf("file xattr user.a = %q, want %q", got, want)
		}
		if got := get(filepath.Join(out, "d"), "user.d"); got != "dir" {
			t.Errorf("directory xattr user.d = %q", got)
		}
	}
	e.backupJSON(0, src)
	check("1")
	s, _ := e.backupJSON(0, src) // unchanged: xattrs come from the parent
	if num(s["files_unmodified"]) != 1 {
		t.Fatalf("second backup: %v", s)
	}
	check("1")
	setx(f, "user.a", "2")
	e.backupJSON(0, src)
	check("2")
}
