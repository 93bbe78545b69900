package vfs_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/vfs"
)

// TestConformance runs the same operations on the OS filesystem and on
// Mem and expects the same outcomes, so tests on Mem mean something for
// the real disk.
func TestConformance(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks and FIFOs need a Unix system")
	}
	for _, c := range []struct {
		name string
		fs   func(t *testing.T) (vfs.FS, string)
	}{
		{"os", func(t *testing.T) (vfs.FS, string) { return vfs.NewOS(), t.TempDir() }},
		{"mem", func(t *testing.T) (vfs.FS, string) { return vfs.NewMem(), "/base" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			fsys, base := c.fs(t)
			root := filepath.Join(base, "root")
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(fsys.MkdirAll(root))
			d, err := fsys.OpenDir(root)
			must(err)
			defer d.Close()

			mt := time.Unix(1600000000, 5).UTC()
			must(d.Create("sub", &tree.Node{Type: tree.TypeDir}))
			must(d.Create("sub", &tree.Node{Type: tree.TypeDir})) // an existing directory is fine
			must(d.Create("link", &tree.Node{Type: tree.TypeSymlink, LinkTarget: "sub"}))
			must(d.Create("fifo", &tree.Node{Type: tree.TypeFIFO}))

			w, err := d.CreateFile("f", 10)
			must(err)
			if _, err := w.WriteAt([]byte("world"), 5); err != nil {
				t.Fatal(err)
			}
			if _, err := w.WriteAt([]byte("too long"), 5); err == nil {
				t.Error("write past the size succeeded")
			}
			must(w.Close())
			if _, err := d.CreateFile("f", 1); !errors.Is(err, fs.ErrExist) {
				t.Errorf("CreateFile over a file: %v; want ErrExist", err)
			}
			must(d.Apply("f", &tree.Node{Type: tree.TypeFile, Mode: 0o640, ModTime: mt}, vfs.Meta{}))

			n, err := d.Node("f", false)
			must(err)
			if n.Type != tree.TypeFile || n.Size != 10 || fs.FileMode(n.Mode) != 0o640 || !n.ModTime.Equal(mt) || n.Links != 1 {
				t.Errorf("f: %+v", n)
			}
			f, err := d.OpenFile("f")
			must(err)
			b, err := io.ReadAll(f)
			must(err)
			if !bytes.Equal(b, append(make([]byte, 5), "world"...)) {
				t.Errorf("f holds %q", b)
			}
			if _, err := f.Seek(5, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			if b, _ := io.ReadAll(f); string(b) != "world" {
				t.Errorf("after seek: %q", b)
			}
			must(f.Close())

			// Nothing is opened through a link, nor a non-regular file read.
			if _, err := d.OpenDir("link"); err == nil {
				t.Error("OpenDir followed a symlink")
			}
			if _, err := d.OpenFile("link"); err == nil {
				t.Error("OpenFile followed a symlink")
			}
			if _, err := d.OpenFile("fifo"); err == nil {
				t.Error("OpenFile opened a FIFO")
			}
			if n, err := d.Node("link", false); err != nil || n.Type != tree.TypeSymlink || n.LinkTarget != "sub" {
				t.Errorf("link: %+v, %v", n, err)
			}
			// Names are single components.
			for _, bad := range []string{"..", "sub/../f", "", "."} {
				if _, err := d.Node(bad, false); err == nil {
					t.Errorf("Node(%q) succeeded", bad)
				}
				if err := d.Create(bad, &tree.Node{Type: tree.TypeFile}); err == nil {
					t.Errorf("Create(%q) succeeded", bad)
				}
			}

			sub, err := d.OpenDir("sub")
			must(err)
			defer sub.Close()
			must(d.Link("f", sub, "hard"))
			if n, err := sub.Node("hard", false); err != nil || n.Links != 2 {
				t.Errorf("hard link: %+v, %v", n, err)
			}
			must(d.Rename("f", sub, "hard")) // two names of one file: nothing happens
			must(d.Rename("f", sub, "moved"))
			if _, err := d.Lstat("f"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("f after rename: %v", err)
			}
			must(d.RemoveAll("sub"))
			must(d.RemoveAll("missing"))

			names, err := d.Names(-1)
			must(err)
			slices.Sort(names)
			if !slices.Equal(names, []string{"fifo", "link"}) {
				t.Errorf("names %v", names)
			}
			must(fsys.Apply(root, &tree.Node{Type: tree.TypeDir, Mode: uint32(fs.ModeDir | 0o750), ModTime: mt}, vfs.Meta{}))
			if n, err := fsys.Node(root, false); err != nil || fs.FileMode(n.Mode) != fs.ModeDir|0o750 || !n.ModTime.Equal(mt) {
				t.Errorf("root: %+v, %v", n, err)
			}
		})
	}
}

// TestMemNamesPaged: Names with n > 0 pages through the listing and ends
// with io.EOF, like os.File.Readdirnames.
func TestMemNamesPaged(t *testing.T) {
	m := vfs.NewMem()
	for _, n := range []string{"/c", "/a", "/b"} {
		if err := m.WriteFile(n, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d, err := m.OpenDir("/")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		names, err := d.Names(2)
		got = append(got, names...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("names %v", got)
	}
}
