package objstore

import (
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/storage"
)

func TestKey(t *testing.T) {
	tests := []struct {
		prefix string
		h      storage.Handle
		want   string
	}{
		{"", storage.Handle{Type: storage.ConfigFile}, "config"},
		{"repo", storage.Handle{Type: storage.ConfigFile}, "repo/config"},
		{"a/b", storage.Handle{Type: storage.PackFile, Name: "abcd"}, "a/b/packs/ab/abcd"},
		{"", storage.Handle{Type: storage.PackFile, Name: "abcd"}, "packs/ab/abcd"},
		{"a", storage.Handle{Type: storage.PackFile, Name: "x"}, "a/packs/x/x"},
		{"a", storage.Handle{Type: storage.KeyFile, Name: "k1"}, "a/keys/k1"},
		{"", storage.Handle{Type: storage.SnapshotFile, Name: "s"}, "snapshots/s"},
	}
	for _, tc := range tests {
		if got := NewLayout(tc.prefix).Key(tc.h); got != tc.want {
			t.Errorf("NewLayout(%q).Key(%v) = %q, want %q", tc.prefix, tc.h, got, tc.want)
		}
	}
	if got := (Layout{}).Key(storage.Handle{Type: storage.ConfigFile}); got != "config" {
		t.Errorf("zero Layout: config key = %q, want %q", got, "config")
	}
}

func TestRootAndDir(t *testing.T) {
	for prefix, want := range map[string][2]string{
		"":    {"", "packs/"},
		"a":   {"a/", "a/packs/"},
		"a/b": {"a/b/", "a/b/packs/"},
	} {
		l := NewLayout(prefix)
		if got := l.Root(); got != want[0] {
			t.Errorf("NewLayout(%q).Root() = %q, want %q", prefix, got, want[0])
		}
		if got := l.Dir(storage.PackFile); got != want[1] {
			t.Errorf("NewLayout(%q).Dir(packs) = %q, want %q", prefix, got, want[1])
		}
	}
}

func TestListPrefix(t *testing.T) {
	l := NewLayout("r")
	for _, ft := range storage.AllTypes {
		got, ok := l.ListPrefix(ft)
		want := l.Dir(ft)
		if ft == storage.ConfigFile {
			want = "r/config"
		}
		if !ok || got != want {
			t.Errorf("ListPrefix(%s) = %q, %v; want %q", ft, got, ok, want)
		}
	}
	if got, ok := l.ListPrefix("other"); ok {
		t.Errorf("ListPrefix(other) = %q, true; want false", got)
	}
}

// TestHandleOf checks that HandleOf inverts Key and accepts nothing else.
func TestHandleOf(t *testing.T) {
	for _, prefix := range []string{"", "repo/sub"} {
		l := NewLayout(prefix)
		for _, ft := range storage.AllTypes {
			names := []string{"a", "ab", "abc", "0123abcd", "ab12-x.y_z"} // "a" is its own shard
			if ft == storage.ConfigFile {
				names = []string{""}
			}
			for _, name := range names {
				h := storage.Handle{Type: ft, Name: name}
				if got, ok := l.HandleOf(l.Key(h)); !ok || got != h {
					t.Errorf("prefix %q: HandleOf(Key(%v)) = %v, %v", prefix, h, got, ok)
				}
			}
		}
		root := l.Root()
		for _, key := range []string{
			"",
			"packs",
			"packs/",
			"packs/ab",         // no shard folder
			"packs/ab/",        // empty name
			"packs/zz",         // no shard folder
			"packs/xy/ab12",    // wrong shard
			"packs/cd/ef/cdef", // too deep
			"keys/sub/k",       // too deep
			"keys/UPPER",       // invalid name
			"keys/",            // empty name
			"snapshots/.tmp-1", // invalid name
			"config2",          // not a type folder
			"config/x",         // the config has no name
			"config/",          //
			".bunker-probe-x",  // a probe left behind
			"other/k",          // unknown type
		} {
			if h, ok := l.HandleOf(root + key); ok {
				t.Errorf("prefix %q: HandleOf(%q) = %v, want none", prefix, root+key, h)
			}
		}
	}
	// Keys of another prefix, or of a longer prefix sharing its start.
	l := NewLayout("repo")
	for _, key := range []string{"other/keys/k", "repo2/keys/k", "keys/k", "/repo/keys/k"} {
		if h, ok := l.HandleOf(key); ok {
			t.Errorf("prefix repo: HandleOf(%q) = %v, want none", key, h)
		}
	}
	if h, ok := l.HandleOf("repo/keys/k"); !ok || h != (storage.Handle{Type: storage.KeyFile, Name: "k"}) {
		t.Errorf("prefix repo: HandleOf(repo/keys/k) = %v, %v", h, ok)
	}
	// The root layout sees the keys of prefixed repositories as foreign.
	if h, ok := (Layout{}).HandleOf("repo/keys/k"); ok {
		t.Errorf("root: HandleOf(repo/keys/k) = %v, want none", h)
	}
}

func TestShard(t *testing.T) {
	for name, want := range map[string]string{"": "", "a": "a", "ab": "ab", "abcdef": "ab"} {
		if got := storage.PackShard(name); got != want {
			t.Errorf("PackShard(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestCleanPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"":         "",
		"/":        "",
		"//":       "",
		"a":        "a",
		"/a/b/":    "a/b",
		"//a/b//":  "a/b",
		"a.b/..c":  "a.b/..c",
		"ünï/çødé": "ünï/çødé",
	} {
		if got, err := CleanPrefix(in); err != nil || got != want {
			t.Errorf("CleanPrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"a//b", "/a/../b", "..", "../a", "a/..", ".", "./a", "a/.", "a/./b",
		"a\x00b", "a\nb", "a\x7f", "\x01",
		strings.Repeat("a", MaxPrefixLen+1),
	} {
		if got, err := CleanPrefix(in); err == nil || !strings.Contains(err.Error(), "invalid prefix") {
			t.Errorf("CleanPrefix(%q) = %q, %v; want an invalid prefix error", in, got, err)
		}
	}
	if got, err := CleanPrefix(strings.Repeat("a", MaxPrefixLen)); err != nil || len(got) != MaxPrefixLen {
		t.Errorf("CleanPrefix of %d bytes = %v", MaxPrefixLen, err)
	}
}
