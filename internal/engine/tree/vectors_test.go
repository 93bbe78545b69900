package tree

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// tree-blob.json of testdata/vectors is the canonical encoding of a tree:
// decoding it and encoding again must give the same bytes, since a tree
// blob's ID is the keyed hash of exactly these bytes (a different encoding
// of the same tree would defeat deduplication of unchanged directories).
func TestVectorTreeBlob(t *testing.T) {
	b, tr := vectorTree(t)
	again, err := tr.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, b) {
		t.Fatalf("re-encoding differs:\n%s\n%s", again, b)
	}
	names := []string{"caf\xe9.txt", "dir", "empty", "fifo", "link", "tty", "unreadable", "\u00e9t\u00e9 <&>"}
	if len(tr.Nodes) != len(names) {
		t.Fatalf("%d nodes", len(tr.Nodes))
	}
	for i, n := range tr.Nodes {
		if string(n.Name) != names[i] {
			t.Fatalf("node %d named %q, want %q", i, n.Name, names[i])
		}
	}
	f := tr.Find("caf\xe9.txt")
	mt := time.Date(2025, 12, 31, 23, 59, 58, 999000000, time.UTC)
	if f.Type != TypeFile || f.Mode != 0o644 || !f.ModTime.Equal(mt) || !f.AccessTime.Equal(mt.Add(time.Second)) ||
		f.UID != 1000 || f.GID != 100 || f.User != "user" || f.Group != "users" || f.Inode != 4242 || f.DeviceID != 2049 ||
		f.Links != 2 || f.Size != 714 || len(f.Content) != 2 || len(f.Xattrs) != 2 ||
		f.Xattrs[1].Name != "user.\xff" || !bytes.Equal(f.Xattrs[1].Value, []byte{0, 1, 2}) {
		t.Fatalf("file node %+v", f)
	}
	if l := tr.Find("link"); l.LinkTarget != "\xff\xfetarget" || l.Type != TypeSymlink {
		t.Fatalf("symlink %+v", l)
	}
	if d := tr.Find("dir"); d.Subtree == nil || d.Subtree.String() != string(bytes.Repeat([]byte("5"), 64)) {
		t.Fatalf("dir %+v", d)
	}
	if c := tr.Find("tty"); c.Type != TypeCharDev || c.Device != 0x0501 {
		t.Fatalf("chardev %+v", c)
	}
	if u := tr.Find("unreadable"); u.Error != "open: permission denied" || u.Content != nil {
		t.Fatalf("error node %+v", u)
	}
	// The escape is used exactly for non-UTF-8 names; <, > and & in names
	// are written as \u003c, \u003e, \u0026 (json.Marshal's default).
	for _, s := range []string{`"name":{"b64":"Y2Fm6S50eHQ="}`, `"linktarget":{"b64":"//50YXJnZXQ="}`, `"name":"été \u003c\u0026\u003e"`} {
		if !bytes.Contains(b, []byte(s)) {
			t.Errorf("canonical encoding lacks %s", s)
		}
	}
	if b[len(b)-1] != '\n' || bytes.Count(b, []byte("\n")) != 1 {
		t.Error("canonical encoding is one line ending in a newline")
	}
}

// vectorTree reads and decodes testdata/vectors/tree-blob.json.
func vectorTree(t *testing.T) ([]byte, *Tree) {
	t.Helper()
	b, err := os.ReadFile("../../../testdata/vectors/tree-blob.json")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return b, tr
}
