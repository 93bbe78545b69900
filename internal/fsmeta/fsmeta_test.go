package fsmeta

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

func TestNodeTypeOf(t *testing.T) {
	tests := []struct {
		mode    fs.FileMode
		want    tree.NodeType
		wantErr bool
	}{
		{0o644, tree.TypeFile, false},
		{fs.ModeSetuid | 0o755, tree.TypeFile, false},
		{fs.ModeDir | fs.ModeSticky | 0o777, tree.TypeDir, false},
		{fs.ModeSymlink | 0o777, tree.TypeSymlink, false},
		{fs.ModeNamedPipe | 0o600, tree.TypeFIFO, false},
		{fs.ModeDevice | 0o600, tree.TypeDev, false},
		{fs.ModeDevice | fs.ModeCharDevice | 0o666, tree.TypeCharDev, false},
		{fs.ModeSocket | 0o755, tree.TypeSocket, false},
		{fs.ModeIrregular, "", true},
		{fs.ModeCharDevice, "", true}, // ModeCharDevice without ModeDevice is not a thing
	}
	for _, tt := range tests {
		got, err := NodeTypeOf(tt.mode)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("NodeTypeOf(%v) = %q, %v; want %q, error %v", tt.mode, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestUnixPerm(t *testing.T) {
	tests := []struct {
		mode fs.FileMode
		want uint32
	}{
		{0o644, 0o644},
		{fs.ModeSetuid | 0o755, 0o4755},
		{fs.ModeSetgid | 0o755, 0o2755},
		{fs.ModeDir | fs.ModeSticky | 0o777, 0o1777},
		{fs.ModeDir | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky | 0o700, 0o7700},
		{fs.ModeSymlink | 0o777, 0o777},
	}
	for _, tt := range tests {
		if got := unixPerm(tt.mode); got != tt.want {
			t.Errorf("unixPerm(%v) = %#o, want %#o", tt.mode, got, tt.want)
		}
	}
}

func TestIsZero(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want bool
	}{
		{"nil", nil, true},
		{"empty", []byte{}, true},
		{"one zero", []byte{0}, true},
		{"one nonzero", []byte{1}, false},
		{"7 zeros", make([]byte, 7), true},
		{"8 zeros", make([]byte, 8), true},
		{"33 zeros", make([]byte, 33), true},
		{"1MiB zeros", make([]byte, 1<<20), true},
	}
	// A single non-zero byte at every position of buffers around the
	// 8- and 32-byte strides must be found.
	for _, size := range []int{1, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100} {
		for pos := range size {
			b := make([]byte, size)
			b[pos] = 0x80
			tests = append(tests, struct {
				name string
				b    []byte
				want bool
			}{name: "size/pos", b: b, want: false})
		}
	}
	for _, tt := range tests {
		if got := IsZero(tt.b); got != tt.want {
			t.Errorf("%s: IsZero(len %d, first non-zero at %d) = %v, want %v",
				tt.name, len(tt.b), bytes.IndexFunc(tt.b, func(r rune) bool { return r != 0 }), got, tt.want)
		}
	}
}

func BenchmarkIsZero(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if !IsZero(buf) {
			b.Fatal("not zero")
		}
	}
}

func TestReaderNameCache(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix user database")
	}
	r := NewReader()
	if got := r.UserName(0); got != "root" {
		t.Errorf("UserName(0) = %q, want root", got)
	}
	if got := r.GroupName(0); got != "root" {
		t.Errorf("GroupName(0) = %q, want root", got)
	}
	const unknown = 3999999999
	if got := r.UserName(unknown); got != "" {
		t.Errorf("UserName(%d) = %q, want empty", uint32(unknown), got)
	}
	if got := r.GroupName(unknown); got != "" {
		t.Errorf("GroupName(%d) = %q, want empty", uint32(unknown), got)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if name, ok := r.users[unknown]; !ok || name != "" {
		t.Errorf("user cache for unknown id: %q, %v; want cached miss", name, ok)
	}
	if name, ok := r.groups[0]; !ok || name != "root" {
		t.Errorf("group cache for 0: %q, %v; want root", name, ok)
	}

	var zero Reader // the zero value works too
	if got := zero.UserName(0); got != "root" {
		t.Errorf("zero Reader: UserName(0) = %q, want root", got)
	}
}

func TestRestorerOwnerIDs(t *testing.T) {
	local := map[string]uint32{"user:alice": 1001, "group:staff": 50}
	lookup := func(kind, name string) (uint32, bool) {
		id, ok := local[kind+":"+name]
		return id, ok
	}
	tests := []struct {
		name             string
		byName           bool
		node             tree.Node
		wantUID, wantGID uint32
	}{
		{"numeric by default", false, tree.Node{UID: 1234, GID: 5678, User: "alice", Group: "staff"}, 1234, 5678},
		{"by name", true, tree.Node{UID: 1234, GID: 5678, User: "alice", Group: "staff"}, 1001, 50},
		{"unknown names keep ids", true, tree.Node{UID: 1234, GID: 5678, User: "bob", Group: "wheel"}, 1234, 5678},
		{"no names", true, tree.Node{UID: 7, GID: 8}, 7, 8},
		{"only user known", true, tree.Node{UID: 1, GID: 2, User: "alice", Group: "nogroup"}, 1001, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Restorer{ByName: tt.byName, lookup: lookup}
			for range 2 { // second round is served from the cache
				uid, gid := r.ownerIDs(&tt.node)
				if uid != tt.wantUID || gid != tt.wantGID {
					t.Errorf("ownerIDs = %d:%d, want %d:%d", uid, gid, tt.wantUID, tt.wantGID)
				}
			}
		})
	}
}

func TestAtRejectsBadNames(t *testing.T) {
	dirPath := t.TempDir()
	dir, err := os.Open(dirPath)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	r := NewRestorer()
	rd := NewReader()
	node := &tree.Node{Type: tree.TypeFile, Mode: 0o644}
	for _, name := range []string{"", ".", "..", "a/b", "../escape", "nul\x00byte"} {
		if err := r.CreateAt(dir, name, node); err == nil {
			t.Errorf("CreateAt(%q) succeeded", name)
		}
		if err := r.ApplyAt(dir, name, node); err == nil {
			t.Errorf("ApplyAt(%q) succeeded", name)
		}
		if _, err := rd.NodeAt(dir, name, false); err == nil {
			t.Errorf("NodeAt(%q) succeeded", name)
		}
		if _, err := OpenDirAt(dir, name); err == nil {
			t.Errorf("OpenDirAt(%q) succeeded", name)
		}
		if _, err := CreateFileWriterAt(dir, name, 0); err == nil {
			t.Errorf("CreateFileWriterAt(%q) succeeded", name)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dirPath), "escape")); err == nil {
		t.Error("file created outside the directory")
	}
	if _, err := rd.NodeAt(nil, "x", false); err == nil {
		t.Error("NodeAt(nil dir) succeeded")
	}
}

func TestNodeMissing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "missing")
	_, err := NewReader().Node(p, nil, true)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Node(missing) error = %v, want fs.ErrNotExist", err)
	}
}

func TestFileWriterBounds(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	w, err := CreateFileWriter(p, 10)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		data    []byte
		off     int64
		wantErr bool
	}{
		{"inside", []byte("abc"), 0, false},
		{"up to the end", []byte("de"), 8, false},
		{"zero chunk", make([]byte, 3), 3, false},
		{"past the end", []byte("xyz"), 9, true},
		{"negative offset", []byte("x"), -1, true},
		{"offset past size", nil, 11, true},
		{"empty at end", nil, 10, false},
	}
	for _, tt := range tests {
		_, err := w.WriteAt(tt.data, tt.off)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: WriteAt error = %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte("abc\x00\x00\x00\x00\x00de"); !bytes.Equal(got, want) {
		t.Errorf("content = %q, want %q", got, want)
	}
	if _, err := CreateFileWriter(p, -1); err == nil {
		t.Error("CreateFileWriter with negative size succeeded")
	}
}
