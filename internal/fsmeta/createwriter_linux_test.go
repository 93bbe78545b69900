//go:build linux

package fsmeta

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCreateFileWriterAtNeverOpensWhatIsThere (issue 14): a restore
// writes a file's content under a name it has just checked is free; what a
// hostile snapshot or an old target put there meanwhile — a FIFO (opening
// it for writing blocks forever), a device node (its content would go to
// the device), a link out, an older file — is refused with fs.ErrExist,
// never opened, and left as it was.
func TestCreateFileWriterAtNeverOpensWhatIsThere(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.WriteFile(outside, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dirPath := filepath.Join(base, "dir")
	if err := os.Mkdir(dirPath, 0o700); err != nil {
		t.Fatal(err)
	}
	plant := map[string]func(p string) error{
		"fifo": func(p string) error {
			if err := unix.Mkfifo(p, 0o600); err != nil {
				return err
			}
			// A reader, so that a regression fails rather than hangs.
			r, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK, 0)
			if err == nil {
				t.Cleanup(func() { r.Close() })
			}
			return err
		},
		"link":     func(p string) error { return os.Symlink(outside, p) },
		"dangling": func(p string) error { return os.Symlink(filepath.Join(base, "ghost"), p) },
		"older":    func(p string) error { return os.WriteFile(p, []byte("older\n"), 0o600) },
		"hardlink": func(p string) error { return os.Link(outside, p) },
	}
	if os.Geteuid() == 0 {
		// /dev/null: harmless if the check ever fails.
		plant["chardev"] = func(p string) error { return unix.Mknod(p, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))) }
	}
	dir, err := os.Open(dirPath)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	for name, mk := range plant {
		p := filepath.Join(dirPath, name)
		if err := mk(p); err != nil {
			t.Fatal(err)
		}
		before, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		w, err := CreateFileWriterAt(dir, name, 6)
		if err == nil {
			w.WriteAt([]byte("pwned\n"), 0)
			w.Close()
			t.Errorf("%s: opened for writing", name)
		} else if !errors.Is(err, fs.ErrExist) {
			t.Errorf("%s: error %v, want fs.ErrExist", name, err)
		}
		if after, err := os.Lstat(p); err != nil || !os.SameFile(before, after) || after.Mode() != before.Mode() {
			t.Errorf("%s: changed: %v", name, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(base, "ghost")); err == nil {
		t.Error("created the dangling link's target")
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "precious\n" {
		t.Errorf("the file outside holds %q, %v", b, err)
	}
	w, err := CreateFileWriterAt(dir, "new", 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(dirPath, "new")); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 || fi.Size() != 3 {
		t.Errorf("new file: %v, %v", fi, err)
	}
}
