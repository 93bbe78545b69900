//go:build linux

package fsmeta

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

const (
	deepLevels  = 60
	deepNameLen = 100
)

func deepName(i int) string {
	prefix := fmt.Sprintf("%02d-", i)
	return prefix + strings.Repeat("d", deepNameLen-len(prefix))
}

// openDirFd opens a directory relative to a descriptor, for building the
// fixture without the code under test.
func openDirFd(t *testing.T, dirfd int, name string) int {
	t.Helper()
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	must(t, err)
	return fd
}

// makeDeep builds deepLevels nested directories below root with entries of
// several kinds at the bottom, and returns the full path of the bottom
// directory (longer than PATH_MAX).
func makeDeep(t *testing.T, root string, withUserXattrs bool) string {
	t.Helper()
	fd := openDirFd(t, unix.AT_FDCWD, root)
	full := root
	for i := range deepLevels {
		must(t, unix.Mkdirat(fd, deepName(i), 0o755))
		next := openDirFd(t, fd, deepName(i))
		unix.Close(fd)
		fd = next
		full += "/" + deepName(i)
	}
	defer unix.Close(fd)
	ffd, err := unix.Openat(fd, "leaf.txt", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o640)
	must(t, err)
	_, err = unix.Write(ffd, []byte("deep content"))
	must(t, err)
	must(t, unix.Close(ffd))
	must(t, unix.Symlinkat("leaf.txt", fd, "leaf.link"))
	must(t, unix.Mkfifoat(fd, "leaf.fifo", 0o600))
	must(t, unix.Linkat(fd, "leaf.txt", fd, "leaf.hard", 0))
	if withUserXattrs {
		must(t, unix.Lsetxattr("/proc/self/fd/"+fmt.Sprint(fd)+"/leaf.txt", "user.deep", []byte("deep xattr"), 0))
	}
	if isRoot() {
		must(t, unix.Lsetxattr("/proc/self/fd/"+fmt.Sprint(fd)+"/leaf.link", "trusted.deep", []byte("deep link xattr"), 0))
		must(t, unix.Fchownat(fd, "leaf.txt", testUID, testGID, unix.AT_SYMLINK_NOFOLLOW))
		must(t, unix.Mknodat(fd, "leaf.null", unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	}
	for _, name := range []string{"leaf.txt", "leaf.link", "leaf.fifo"} {
		mt, _ := unix.TimeToTimespec(ts(len(name)))
		must(t, unix.UtimesNanoAt(fd, name, []unix.Timespec{mt, mt}, unix.AT_SYMLINK_NOFOLLOW))
	}
	return full
}

// readAt reads all nodes below dir with the *At API, keyed by relative
// path (components joined by "/").
func readAt(t *testing.T, r *Reader, dir *os.File, rel string, out map[string]*tree.Node) {
	t.Helper()
	entries, err := dir.ReadDir(-1)
	must(t, err)
	for _, e := range entries {
		n, err := r.NodeAt(dir, e.Name(), true)
		must(t, err)
		key := path2(rel, e.Name())
		out[key] = n
		if n.Type == tree.TypeDir {
			sub, err := OpenDirAt(dir, e.Name())
			must(t, err)
			readAt(t, r, sub, key, out)
			must(t, sub.Close())
		}
	}
}

// restoreAt restores the tree below src into dst with the *At API only.
func restoreAt(t *testing.T, r *Reader, rs *Restorer, src, dst *os.File, links map[uint64]func(*os.File, string) error) {
	t.Helper()
	entries, err := src.ReadDir(-1)
	must(t, err)
	for _, e := range entries {
		name := e.Name()
		orig, err := r.NodeAt(src, name, true)
		must(t, err)
		n := jsonRoundTrip(t, orig)
		if n.Type == tree.TypeFile && n.Links > 1 {
			if link, ok := links[orig.Inode]; ok {
				must(t, link(dst, name))
				continue
			}
			links[orig.Inode] = func(newdir *os.File, newname string) error {
				return LinkAt(dst, name, newdir, newname)
			}
		}
		if n.Type != tree.TypeFile { // CreateFileWriterAt creates the file
			must(t, rs.CreateAt(dst, name, n))
		}
		switch n.Type {
		case tree.TypeFile:
			in, err := OpenFileAt(src, name)
			must(t, err)
			w, err := CreateFileWriterAt(dst, name, int64(n.Size))
			must(t, err)
			copyContent(t, in, w, 5)
		case tree.TypeDir:
			subSrc, err := OpenDirAt(src, name)
			must(t, err)
			subDst, err := OpenDirAt(dst, name)
			must(t, err)
			restoreAt(t, r, rs, subSrc, subDst, links)
			must(t, subSrc.Close())
			must(t, subDst.Close())
		}
		if err := rs.ApplyAt(dst, name, n); err != nil {
			t.Errorf("ApplyAt %s: %v", name, err)
		}
	}
}

func TestDeepPaths(t *testing.T) {
	srcRoot, dstRoot := t.TempDir(), t.TempDir()
	withXattrs := xattrSupport(t, srcRoot)
	bottom := makeDeep(t, srcRoot, withXattrs)
	if len(bottom) <= 4096+1000 {
		t.Fatalf("fixture path only %d bytes long", len(bottom))
	}
	// The path API cannot reach the bottom: this is why the *At API exists.
	if _, err := NewReader().Node(bottom+"/leaf.txt", nil, false); !errors.Is(err, unix.ENAMETOOLONG) {
		t.Fatalf("Node(long path) = %v, want ENAMETOOLONG", err)
	}

	// A directory handle has a read offset: each pass gets its own.
	open := func(p string) *os.File {
		f, err := os.Open(p)
		must(t, err)
		t.Cleanup(func() { f.Close() })
		return f
	}

	r := NewReader()
	want := map[string]*tree.Node{}
	readAt(t, r, open(srcRoot), "", want)
	if len(want) < deepLevels+4 {
		t.Fatalf("read %d nodes, want at least %d", len(want), deepLevels+4)
	}
	var leafKey string
	for k := range want {
		if strings.HasSuffix(k, "/leaf.txt") {
			leafKey = k
		}
	}
	leaf := want[leafKey]
	if leaf == nil || leaf.Size != 12 || leaf.Links != 2 {
		t.Fatalf("leaf.txt node = %s", fmtAny(leaf))
	}
	if withXattrs && !hasXattr(leaf, "user.deep", "deep xattr") {
		t.Errorf("deep user xattr not read: %s", fmtAny(leaf.Xattrs))
	}
	linkKey := strings.TrimSuffix(leafKey, "leaf.txt") + "leaf.link"
	if isRoot() && !hasXattr(want[linkKey], "trusted.deep", "deep link xattr") {
		t.Errorf("deep symlink xattr not read: %s", fmtAny(want[linkKey]))
	}

	rs := NewRestorer()
	restoreAt(t, r, rs, open(srcRoot), open(dstRoot), map[uint64]func(*os.File, string) error{})

	got := map[string]*tree.Node{}
	readAt(t, r, open(dstRoot), "", got)
	compareTrees(t, want, got)

	// Check the restored content at the bottom through descriptors.
	dst := open(dstRoot)
	d := dst
	for i := range deepLevels {
		next, err := OpenDirAt(d, deepName(i))
		must(t, err)
		if d != dst {
			d.Close()
		}
		d = next
	}
	defer d.Close()
	f, err := OpenFileAt(d, "leaf.txt")
	must(t, err)
	defer f.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(f)
	must(t, err)
	if buf.String() != "deep content" {
		t.Errorf("deep content = %q", buf.String())
	}
	if _, err := LstatAt(d, "leaf.fifo"); err != nil {
		t.Errorf("LstatAt(deep fifo): %v", err)
	}
}
