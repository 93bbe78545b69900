//go:build linux || darwin

package exclude

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestExcludedByMarker(t *testing.T) {
	root := t.TempDir()
	mk := func(name string, files map[string]string) string {
		d := filepath.Join(root, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for n, content := range files {
			if err := os.WriteFile(filepath.Join(d, n), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	plain := mk("plain", map[string]string{"file": "x"})
	nobackup := mk("nobackup", map[string]string{".nobackup": ""})
	cache := mk("cache", map[string]string{CacheDirTagName: CacheDirTagSignature + "\n# a cache\n"})
	wrongSig := mk("wrongsig", map[string]string{CacheDirTagName: "Signature: 0000000000000000000000000000000\n"})
	short := mk("short", map[string]string{CacheDirTagName: "Signature"})
	custom := mk("custom", map[string]string{"TAG": "hello world"})
	tagDir := mk("tagdir", nil)
	if err := os.Mkdir(filepath.Join(tagDir, CacheDirTagName), 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := mk("fifo", nil)
	if err := unix.Mkfifo(filepath.Join(fifo, CacheDirTagName), 0o644); err != nil {
		t.Fatal(err)
	}
	symlink := mk("symlink", nil)
	if err := os.Symlink(filepath.Join(cache, CacheDirTagName), filepath.Join(symlink, CacheDirTagName)); err != nil {
		t.Fatal(err)
	}
	nobackupDir := mk("nobackupdir", nil)
	if err := os.Mkdir(filepath.Join(nobackupDir, ".nobackup"), 0o755); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		opts Options
		dir  string
		want bool
	}{
		{"no markers", Options{}, nobackup, false},
		{"name only", Options{IfPresent: []string{".nobackup"}}, nobackup, true},
		{"name only, any type", Options{IfPresent: []string{".nobackup"}}, nobackupDir, true},
		{"absent", Options{IfPresent: []string{".nobackup"}}, plain, false},
		{"cachedir tag", Options{ExcludeCaches: true}, cache, true},
		{"cachedir tag via IfPresent", Options{IfPresent: []string{CacheDirTagName + ":" + CacheDirTagSignature}}, cache, true},
		{"wrong signature", Options{ExcludeCaches: true}, wrongSig, false},
		{"short tag", Options{ExcludeCaches: true}, short, false},
		{"tag is a directory", Options{ExcludeCaches: true}, tagDir, false},
		{"tag is a FIFO", Options{ExcludeCaches: true}, fifo, false},
		{"tag is a symlink", Options{ExcludeCaches: true}, symlink, false},
		{"custom header", Options{IfPresent: []string{"TAG:hello"}}, custom, true},
		{"custom header mismatch", Options{IfPresent: []string{"TAG:world"}}, custom, false},
		{"second marker matches", Options{IfPresent: []string{".nobackup"}, ExcludeCaches: true}, cache, true},
		{"missing directory", Options{ExcludeCaches: true}, filepath.Join(root, "missing"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				got, err := m.ExcludedByMarker(tt.dir)
				if err != nil || got != tt.want {
					t.Errorf("ExcludedByMarker(%s) = %v, %v; want %v, nil", tt.dir, got, err, tt.want)
				}
				d, err := os.Open(tt.dir)
				if err != nil {
					return // missing directory
				}
				defer d.Close()
				got, err = m.ExcludedByMarkerAt(d)
				if err != nil || got != tt.want {
					t.Errorf("ExcludedByMarkerAt(%s) = %v, %v; want %v, nil", tt.dir, got, err, tt.want)
				}
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("marker check blocked")
			}
		})
	}

	// A path below a regular file is an error worth reporting.
	m, err := New(Options{ExcludeCaches: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.ExcludedByMarker(filepath.Join(plain, "file")); err == nil || got {
		t.Errorf("ExcludedByMarker(file) = %v, %v; want false and an error", got, err)
	}
	if _, err := m.ExcludedByMarkerAt(nil); err == nil {
		t.Error("ExcludedByMarkerAt(nil) succeeded")
	}
}
