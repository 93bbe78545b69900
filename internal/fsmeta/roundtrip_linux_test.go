//go:build linux

package fsmeta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

const (
	nonUTF8Name   = "\xff\xfe.bin"
	nonUTF8Target = "\xff\xfe-target"
	testUID       = 1234
	testGID       = 5678
	sparseSize    = 16 << 20
)

func isRoot() bool { return os.Geteuid() == 0 }

// xattrSupport reports whether user.* xattrs can be set on regular files in
// dir (tmpfs before Linux 6.6, some overlays and NFS cannot).
func xattrSupport(t *testing.T, dir string) bool {
	t.Helper()
	p := filepath.Join(dir, ".xattr-probe")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(p)
	err := unix.Lsetxattr(p, "user.probe", []byte("1"), 0)
	if err != nil {
		if isNotSupported(err) || errors.Is(err, unix.EPERM) {
			return false
		}
		t.Fatalf("probe xattrs: %v", err)
	}
	return true
}

type fixture struct {
	withXattrs bool // user.* xattrs were set
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ts returns a distinct time with nanoseconds for entry i.
func ts(i int) time.Time {
	return time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC).Add(time.Duration(i)*time.Hour + time.Duration(123456789+i))
}

func setTimesForTest(t *testing.T, p string, i int) {
	t.Helper()
	at, err := unix.TimeToTimespec(ts(i).Add(-time.Minute))
	must(t, err)
	mt, err := unix.TimeToTimespec(ts(i))
	must(t, err)
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{at, mt}, unix.AT_SYMLINK_NOFOLLOW))
}

// makeSource builds a tree with every kind of entry under src.
func makeSource(t *testing.T, src string) fixture {
	t.Helper()
	var fx fixture
	fx.withXattrs = xattrSupport(t, src)
	p := func(name string) string { return filepath.Join(src, name) }

	must(t, os.WriteFile(p("regular"), []byte("hello world\n"), 0o644))
	must(t, os.WriteFile(p("empty"), nil, 0o600))
	must(t, os.Mkdir(p("emptydir"), 0o755))
	must(t, os.Mkdir(p("dir"), 0o750))
	must(t, os.WriteFile(p("dir/nested"), []byte("nested file"), 0o640))
	must(t, os.WriteFile(p("dir/setuid"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Chmod(p("dir/setuid"), 0o755|fs.ModeSetuid))
	must(t, os.WriteFile(p("dir/setgid"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Chmod(p("dir/setgid"), 0o755|fs.ModeSetgid))
	must(t, os.Mkdir(p("sticky"), 0o777))
	must(t, os.Chmod(p("sticky"), 0o777|fs.ModeDir|fs.ModeSticky))
	must(t, os.Mkdir(p("setgiddir"), 0o775))
	must(t, os.Chmod(p("setgiddir"), 0o775|fs.ModeDir|fs.ModeSetgid))
	must(t, os.Symlink("regular", p("link")))
	must(t, os.Symlink("does/not/exist", p("dangling")))
	must(t, os.Symlink(nonUTF8Target, p("badlink")))
	must(t, os.WriteFile(p("hard1"), []byte("hardlinked content"), 0o644))
	must(t, os.Link(p("hard1"), p("hard2")))
	must(t, unix.Mkfifo(p("fifo"), 0o640))
	must(t, os.WriteFile(p(nonUTF8Name), []byte("non-UTF-8 name"), 0o644))

	// A sparse file: a hole, 4 KiB of data in the middle, a trailing hole.
	f, err := os.Create(p("sparse"))
	must(t, err)
	_, err = f.WriteAt(bytes.Repeat([]byte("x"), 4096), sparseSize/2)
	must(t, err)
	must(t, f.Truncate(sparseSize))
	must(t, f.Close())

	// A socket (skipped by Create).
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p("sock"), Net: "unix"})
	must(t, err)
	l.SetUnlinkOnClose(false)
	must(t, l.Close())

	if isRoot() {
		must(t, unix.Mknod(p("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(t, unix.Mknod(p("blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 200))))
		must(t, os.WriteFile(p("owned"), []byte("owned"), 0o644))
		must(t, os.Lchown(p("owned"), testUID, testGID))
		must(t, os.Symlink("owned", p("ownedlink")))
		must(t, os.Lchown(p("ownedlink"), testUID, testGID))
		must(t, os.Mkdir(p("owneddir"), 0o700))
		must(t, os.Lchown(p("owneddir"), testUID, testGID))
		// chown cleared setuid: set it again, on a file of another user.
		must(t, os.WriteFile(p("owned-setuid"), nil, 0o755))
		must(t, os.Lchown(p("owned-setuid"), testUID, testGID))
		must(t, os.Chmod(p("owned-setuid"), 0o755|fs.ModeSetuid|fs.ModeSetgid))
		// trusted.* and security.* work on symlinks too (as root).
		must(t, unix.Lsetxattr(p("link"), "trusted.linkattr", []byte("on a symlink"), 0))
		must(t, unix.Lsetxattr(p("regular"), "security.bunker", []byte("sec"), 0))
	}
	if fx.withXattrs {
		must(t, unix.Lsetxattr(p("regular"), "user.b", []byte("second"), 0))
		must(t, unix.Lsetxattr(p("regular"), "user.a", []byte{0, 1, 2, 0xff}, 0))
		must(t, unix.Lsetxattr(p("regular"), "user.empty", nil, 0))
		must(t, unix.Lsetxattr(p("emptydir"), "user.dir", []byte("on a dir"), 0))
		must(t, unix.Lsetxattr(p(nonUTF8Name), "user.\xfe\xff", []byte("odd name"), 0))
	} else {
		t.Logf("user.* xattrs not supported in %s: round trip runs without them", src)
	}

	// Times last, children before parents.
	i := 0
	must(t, filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		must(t, err)
		if d.IsDir() {
			return nil
		}
		i++
		setTimesForTest(t, path, i)
		return nil
	}))
	for _, d := range []string{"dir", "emptydir", "sticky", "setgiddir", "owneddir"} {
		if _, err := os.Lstat(p(d)); err == nil {
			i++
			setTimesForTest(t, p(d), i)
		}
	}
	return fx
}

// readTree reads the nodes of all entries below root by path, keyed by
// their slash-separated relative path. It checks Mode against os.Lstat.
func readTree(t *testing.T, r *Reader, root string) map[string]*tree.Node {
	t.Helper()
	nodes := map[string]*tree.Node{}
	var walk func(dir, rel string)
	walk = func(dir, rel string) {
		entries, err := os.ReadDir(dir)
		must(t, err)
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			fi, err := e.Info()
			must(t, err)
			n, err := r.Node(p, fi, true)
			must(t, err)
			if n.Mode != uint32(fi.Mode()) {
				t.Errorf("%s: Mode %v, os.Lstat says %v", p, fs.FileMode(n.Mode), fi.Mode())
			}
			// Without fi, Node lstat's itself and must agree.
			n2, err := r.Node(p, nil, true)
			must(t, err)
			if diff := diffNodes(n, n2, atimeStable(n)); diff != "" {
				t.Errorf("%s: Node with and without FileInfo differ: %s", p, diff)
			}
			nodes[path2(rel, e.Name())] = n
			if e.IsDir() {
				walk(p, path2(rel, e.Name()))
			}
		}
	}
	walk(root, "")
	return nodes
}

func path2(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}

// jsonRoundTrip sends a node through its snapshot encoding.
func jsonRoundTrip(t *testing.T, n *tree.Node) *tree.Node {
	t.Helper()
	b, err := json.Marshal(n)
	must(t, err)
	var out tree.Node
	must(t, json.Unmarshal(b, &out))
	return &out
}

// copyContent writes the content of the regular file src through a
// FileWriter in chunks of the given size.
func copyContent(t *testing.T, src *os.File, w *FileWriter, chunk int) {
	t.Helper()
	buf := make([]byte, chunk)
	var off int64
	for {
		n, err := io.ReadFull(src, buf)
		if n > 0 {
			_, werr := w.WriteAt(buf[:n], off)
			must(t, werr)
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		must(t, err)
	}
	must(t, w.Close())
	must(t, src.Close())
}

// restorePath restores the tree below src into dst with the path API:
// read a node, send it through JSON, Create, write content, Apply (dirs
// after their children). Hard links are restored with Link.
func restorePath(t *testing.T, r *Reader, rs *Restorer, src, dst string) {
	t.Helper()
	links := map[uint64]string{} // source inode -> restored path
	var walk func(srcDir, dstDir string)
	walk = func(srcDir, dstDir string) {
		entries, err := os.ReadDir(srcDir)
		must(t, err)
		for _, e := range entries {
			sp, dp := filepath.Join(srcDir, e.Name()), filepath.Join(dstDir, e.Name())
			orig, err := r.Node(sp, nil, true)
			must(t, err)
			n := jsonRoundTrip(t, orig)
			if n.Type == tree.TypeFile && n.Links > 1 {
				if first, ok := links[orig.Inode]; ok {
					must(t, Link(first, dp))
					continue
				}
				links[orig.Inode] = dp
			}
			must(t, rs.Create(dp, n))
			switch n.Type {
			case tree.TypeFile:
				if n.Size > 0 {
					in, err := OpenFile(sp)
					must(t, err)
					w, err := CreateFileWriter(dp, int64(n.Size))
					must(t, err)
					copyContent(t, in, w, 64<<10)
				}
			case tree.TypeDir:
				walk(sp, dp)
			}
			if err := rs.Apply(dp, n); err != nil {
				t.Errorf("Apply %s: %v", dp, err)
			}
		}
	}
	walk(src, dst)
}

// diffNodes compares the fields a restore must reproduce. Inode, DeviceID
// and ChangeTime differ by nature.
func diffNodes(want, got *tree.Node, withAtime bool) string {
	var d []string
	add := func(field string, w, g any) { d = append(d, field+": want "+fmtAny(w)+", got "+fmtAny(g)) }
	if want.Name != got.Name {
		add("Name", want.Name, got.Name)
	}
	if want.Type != got.Type {
		add("Type", want.Type, got.Type)
	}
	if want.Mode != got.Mode {
		add("Mode", fs.FileMode(want.Mode), fs.FileMode(got.Mode))
	}
	if !want.ModTime.Equal(got.ModTime) {
		add("ModTime", want.ModTime, got.ModTime)
	}
	if withAtime && !want.AccessTime.Equal(got.AccessTime) {
		add("AccessTime", want.AccessTime, got.AccessTime)
	}
	if want.UID != got.UID || want.GID != got.GID {
		add("UID:GID", [2]uint32{want.UID, want.GID}, [2]uint32{got.UID, got.GID})
	}
	if want.User != got.User || want.Group != got.Group {
		add("User:Group", want.User+":"+want.Group, got.User+":"+got.Group)
	}
	if want.Links != got.Links {
		add("Links", want.Links, got.Links)
	}
	if want.Size != got.Size {
		add("Size", want.Size, got.Size)
	}
	if want.LinkTarget != got.LinkTarget {
		add("LinkTarget", want.LinkTarget, got.LinkTarget)
	}
	if want.Device != got.Device {
		add("Device", want.Device, got.Device)
	}
	if !slices.EqualFunc(want.Xattrs, got.Xattrs, func(a, b tree.Xattr) bool {
		return a.Name == b.Name && bytes.Equal(a.Value, b.Value)
	}) {
		add("Xattrs", want.Xattrs, got.Xattrs)
	}
	return strings.Join(d, "; ")
}

// atimeStable reports whether reading a node leaves its atime alone:
// listing a directory and reading a symlink update their atime (relatime),
// while file content is read with O_NOATIME.
func atimeStable(n *tree.Node) bool {
	return n.Type != tree.TypeDir && n.Type != tree.TypeSymlink
}

func fmtAny(v any) string {
	if s, ok := v.(fmt.Stringer); ok {
		return s.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	return string(b)
}

func TestRoundTripPath(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	fx := makeSource(t, src)
	r := NewReader()
	want := readTree(t, r, src)
	checkSourceNodes(t, want, fx)

	rs := NewRestorer()
	restorePath(t, r, rs, src, dst)
	got := readTree(t, r, dst)
	compareTrees(t, want, got)
	checkSparse(t, filepath.Join(dst, "sparse"))
}

func compareTrees(t *testing.T, want, got map[string]*tree.Node) {
	t.Helper()
	for name, w := range want {
		if w.Type == tree.TypeSocket {
			if g, ok := got[name]; ok {
				t.Errorf("%q: socket was restored as %q", short(name), g.Type)
			}
			continue
		}
		g, ok := got[name]
		if !ok {
			t.Errorf("%q: not restored", short(name))
			continue
		}
		if diff := diffNodes(w, g, atimeStable(w)); diff != "" {
			t.Errorf("%q: %s", short(name), diff)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%q: restored but not in the source", short(name))
		}
	}
}

// short abbreviates the very long keys of the deep-path test.
func short(key string) string {
	if len(key) > 120 {
		return fmt.Sprintf("…(%d bytes)…%s", len(key)-80, key[len(key)-80:])
	}
	return key
}

// checkSourceNodes checks what the Reader reported against what
// makeSource made, so the round trip cannot pass by being wrong twice.
func checkSourceNodes(t *testing.T, nodes map[string]*tree.Node, fx fixture) {
	t.Helper()
	get := func(name string) *tree.Node {
		n, ok := nodes[name]
		if !ok {
			t.Fatalf("no node for %q", name)
		}
		return n
	}
	tests := []struct {
		name  string
		check func(n *tree.Node) bool
		what  string
	}{
		{"regular", func(n *tree.Node) bool { return n.Type == tree.TypeFile && n.Size == 12 && n.Mode == 0o644 }, "12-byte file 0644"},
		{"empty", func(n *tree.Node) bool { return n.Type == tree.TypeFile && n.Size == 0 }, "empty file"},
		{"emptydir", func(n *tree.Node) bool { return n.Type == tree.TypeDir && n.Size == 0 && n.Links == 2 }, "empty dir"},
		{"dir/setuid", func(n *tree.Node) bool { return fs.FileMode(n.Mode) == 0o755|fs.ModeSetuid }, "setuid"},
		{"dir/setgid", func(n *tree.Node) bool { return fs.FileMode(n.Mode) == 0o755|fs.ModeSetgid }, "setgid"},
		{"sticky", func(n *tree.Node) bool { return fs.FileMode(n.Mode) == 0o777|fs.ModeDir|fs.ModeSticky }, "sticky dir"},
		{"setgiddir", func(n *tree.Node) bool { return fs.FileMode(n.Mode) == 0o775|fs.ModeDir|fs.ModeSetgid }, "setgid dir"},
		{"link", func(n *tree.Node) bool { return n.Type == tree.TypeSymlink && n.LinkTarget == "regular" }, "symlink"},
		{"dangling", func(n *tree.Node) bool { return n.LinkTarget == "does/not/exist" }, "dangling symlink"},
		{"badlink", func(n *tree.Node) bool { return n.LinkTarget == nonUTF8Target }, "non-UTF-8 target"},
		{"hard1", func(n *tree.Node) bool { return n.Links == 2 && n.Inode == nodes["hard2"].Inode }, "hard link pair"},
		{"fifo", func(n *tree.Node) bool { return n.Type == tree.TypeFIFO && fs.FileMode(n.Mode).Perm() == 0o640 }, "fifo 0640"},
		{"sock", func(n *tree.Node) bool { return n.Type == tree.TypeSocket }, "socket"},
		{nonUTF8Name, func(n *tree.Node) bool { return string(n.Name) == nonUTF8Name && n.Size == 14 }, "non-UTF-8 name"},
		{"sparse", func(n *tree.Node) bool { return n.Size == sparseSize }, "sparse size"},
		{"regular", func(n *tree.Node) bool {
			return n.ModTime.Nanosecond()%1000 != 0 && n.ModTime.Location() == time.UTC && n.ModTime.Year() == 2001
		}, "ns mtime in UTC"},
		{"regular", func(n *tree.Node) bool { return n.UID == 0 || !isRoot() }, "uid"},
		{"regular", func(n *tree.Node) bool { return n.User != "" && n.Group != "" }, "user and group names"},
		{"regular", func(n *tree.Node) bool { return !n.ChangeTime.IsZero() && n.Inode != 0 && n.DeviceID != 0 }, "ctime, inode, st_dev"},
	}
	if isRoot() {
		tests = append(tests, []struct {
			name  string
			check func(n *tree.Node) bool
			what  string
		}{
			{"null", func(n *tree.Node) bool { return n.Type == tree.TypeCharDev && n.Device == unix.Mkdev(1, 3) }, "char device 1,3"},
			{"blk", func(n *tree.Node) bool { return n.Type == tree.TypeDev && n.Device == unix.Mkdev(7, 200) }, "block device 7,200"},
			{"owned", func(n *tree.Node) bool { return n.UID == testUID && n.GID == testGID && n.User == "" }, "uid 1234 gid 5678"},
			{"ownedlink", func(n *tree.Node) bool { return n.UID == testUID && n.GID == testGID }, "symlink owner"},
			{"owned-setuid", func(n *tree.Node) bool {
				return fs.FileMode(n.Mode) == 0o755|fs.ModeSetuid|fs.ModeSetgid && n.UID == testUID
			}, "setuid of another user"},
			{"link", func(n *tree.Node) bool { return hasXattr(n, "trusted.linkattr", "on a symlink") }, "trusted xattr on symlink"},
			{"regular", func(n *tree.Node) bool { return hasXattr(n, "security.bunker", "sec") }, "security xattr"},
		}...)
	}
	if fx.withXattrs {
		tests = append(tests, []struct {
			name  string
			check func(n *tree.Node) bool
			what  string
		}{
			{"regular", func(n *tree.Node) bool {
				return hasXattr(n, "user.a", "\x00\x01\x02\xff") && hasXattr(n, "user.b", "second") && hasXattr(n, "user.empty", "")
			}, "user xattrs"},
			{"regular", func(n *tree.Node) bool {
				return slices.IsSortedFunc(n.Xattrs, func(a, b tree.Xattr) int { return strings.Compare(string(a.Name), string(b.Name)) })
			}, "xattrs sorted"},
			{"emptydir", func(n *tree.Node) bool { return hasXattr(n, "user.dir", "on a dir") }, "dir xattr"},
			{nonUTF8Name, func(n *tree.Node) bool { return hasXattr(n, "user.\xfe\xff", "odd name") }, "non-UTF-8 xattr name"},
		}...)
	}
	for _, tt := range tests {
		if n := get(tt.name); !tt.check(n) {
			t.Errorf("%q: want %s, got %s", tt.name, tt.what, fmtAny(n))
		}
	}
}

func hasXattr(n *tree.Node, name, value string) bool {
	for _, x := range n.Xattrs {
		if string(x.Name) == name {
			return string(x.Value) == value
		}
	}
	return false
}

// checkSparse asserts that the restored sparse file has its content and
// takes far less space than its size.
func checkSparse(t *testing.T, p string) {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Stat(p, &st))
	if st.Size != sparseSize {
		t.Errorf("%s: size %d, want %d", p, st.Size, sparseSize)
	}
	if used := st.Blocks * 512; used > 1<<20 {
		t.Errorf("%s: %d bytes allocated for %d bytes with one 4 KiB extent: not sparse", p, used, st.Size)
	}
	b, err := os.ReadFile(p)
	must(t, err)
	want := make([]byte, sparseSize)
	copy(want[sparseSize/2:], bytes.Repeat([]byte("x"), 4096))
	if !bytes.Equal(b, want) {
		t.Errorf("%s: content differs", p)
	}
}

func TestSocketIsSkipped(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sock")
	n := &tree.Node{Name: "sock", Type: tree.TypeSocket, Mode: uint32(fs.ModeSocket | 0o755)}
	rs := NewRestorer()
	if err := rs.Create(p, n); err != nil {
		t.Fatalf("Create(socket) = %v", err)
	}
	if err := rs.Apply(p, n); err != nil {
		t.Fatalf("Apply(socket) = %v", err)
	}
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket restore left something at %s: %v", p, err)
	}
}

func TestCreateErrors(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "file"), nil, 0o600))
	rs := NewRestorer()
	tests := []struct {
		name string
		node tree.Node
	}{
		{"file", tree.Node{Type: tree.TypeFile}},                             // exists
		{"file", tree.Node{Type: tree.TypeDir}},                              // exists as a file
		{"missing/x", tree.Node{Type: tree.TypeFIFO}},                        // no parent
		{"bad", tree.Node{Type: "whatever"}},                                 // unknown type
		{"emptylink", tree.Node{Type: tree.TypeSymlink, LinkTarget: ""}},     // empty target
		{"missing/dir", tree.Node{Type: tree.TypeDir}},                       // no parent
		{"missing/dev", tree.Node{Type: tree.TypeCharDev, Device: 1<<8 | 3}}, // no parent
	}
	for _, tt := range tests {
		p := filepath.Join(dir, tt.name)
		err := rs.Create(p, &tt.node)
		if err == nil {
			t.Errorf("Create(%s, %s) succeeded", tt.name, tt.node.Type)
			continue
		}
		if !strings.Contains(err.Error(), p) {
			t.Errorf("Create(%s) error %q does not name the path", tt.name, err)
		}
	}
	if err := rs.Create(filepath.Join(dir, "x"), nil); err == nil {
		t.Error("Create(nil node) succeeded")
	}
	if err := rs.Apply(filepath.Join(dir, "missing"), &tree.Node{Type: tree.TypeFile}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Apply(missing) = %v, want fs.ErrNotExist", err)
	}
	// An existing directory is fine for Create.
	must(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
	if err := rs.Create(filepath.Join(dir, "d"), &tree.Node{Type: tree.TypeDir}); err != nil {
		t.Errorf("Create(existing dir) = %v", err)
	}
}

func TestXattrNamespaces(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		ns       string
		symlink  bool
		needRoot bool
	}{
		{"user", false, false},
		{"user", true, false}, // Linux refuses user.* on symlinks: expect EPERM
		{"trusted", false, true},
		{"trusted", true, true},
		{"security", false, true},
	}
	r, rs := NewReader(), NewRestorer()
	for i, tt := range tests {
		name := tt.ns
		if tt.symlink {
			name += "-symlink"
		}
		t.Run(name, func(t *testing.T) {
			if tt.needRoot && !isRoot() {
				t.Skip("needs root")
			}
			src := filepath.Join(dir, name+"-src")
			dst := filepath.Join(dir, name+"-dst")
			if tt.symlink {
				must(t, os.Symlink("target", src))
			} else {
				must(t, os.WriteFile(src, nil, 0o644))
			}
			attr := tt.ns + ".test" + string(rune('a'+i))
			err := unix.Lsetxattr(src, attr, []byte("value"), 0)
			if tt.ns == "user" && tt.symlink {
				if !errors.Is(err, unix.EPERM) {
					t.Errorf("user xattr on symlink: %v, want EPERM", err)
				}
				return
			}
			if err != nil {
				if isNotSupported(err) {
					t.Skipf("%s.* xattrs not supported in %s: %v", tt.ns, dir, err)
				}
				t.Fatal(err)
			}
			n, err := r.Node(src, nil, true)
			must(t, err)
			if !hasXattr(n, attr, "value") {
				t.Fatalf("Node xattrs = %s, want %s", fmtAny(n.Xattrs), attr)
			}
			n.Name = tree.RawString(filepath.Base(dst))
			must(t, rs.Create(dst, n))
			must(t, rs.Apply(dst, n))
			got, err := r.Node(dst, nil, true)
			must(t, err)
			if diff := diffNodes(n, got, true); diff != "" {
				t.Errorf("restored: %s", diff)
			}
		})
	}
}

func TestApplyXattrErrorKeepsGoing(t *testing.T) {
	// A failing xattr must not stop mode and times from being applied.
	p := filepath.Join(t.TempDir(), "f")
	must(t, os.WriteFile(p, nil, 0o600))
	n := &tree.Node{
		Type:    tree.TypeFile,
		Mode:    0o640,
		ModTime: ts(1),
		Xattrs:  []tree.Xattr{{Name: "system.bunker-bogus", Value: []byte("x")}},
	}
	rs := &Restorer{Xattrs: true}
	err := rs.Apply(p, n)
	if err == nil || !strings.Contains(err.Error(), "system.bunker-bogus") {
		t.Errorf("Apply error = %v, want one naming the xattr", err)
	}
	got, err2 := NewReader().Node(p, nil, false)
	must(t, err2)
	if got.Mode != 0o640 || !got.ModTime.Equal(ts(1)) {
		t.Errorf("after failed xattr: mode %v mtime %v, want 0640 %v", fs.FileMode(got.Mode), got.ModTime, ts(1))
	}
}

func TestOpenFileRejectsSpecial(t *testing.T) {
	dir := t.TempDir()
	must(t, unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
	must(t, os.Symlink("fifo", filepath.Join(dir, "link")))
	must(t, os.Mkdir(filepath.Join(dir, "dir"), 0o700))
	for _, name := range []string{"fifo", "link", "dir", "missing"} {
		done := make(chan error, 1)
		go func() {
			f, err := OpenFile(filepath.Join(dir, name))
			if err == nil {
				f.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("OpenFile(%s) succeeded", name)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("OpenFile(%s) blocked", name)
		}
	}
}
