package tree

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// jsonNode is the reference encoding appendNode must reproduce.
func jsonNode(n *Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func checkAppendNode(t *testing.T, n *Node) {
	t.Helper()
	want, werr := jsonNode(n)
	got, gerr := appendNode([]byte("prefix"), n)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("node %+v: encoding/json error %v, appendNode error %v", n, werr, gerr)
	}
	if werr != nil {
		return
	}
	if !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("node %+v:\nappendNode    %s\nencoding/json prefix%s", n, got, want)
	}
}

func TestAppendNodeMatchesJSON(t *testing.T) {
	mt := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	sub := ID{1, 2, 3}
	east := time.FixedZone("east", 5*3600+30*60)
	full := &Node{Name: "f", Type: TypeFile, Mode: 0o4755, ModTime: mt, AccessTime: mt.Add(time.Second), ChangeTime: mt.In(east),
		UID: 1000, GID: 100, User: "alice", Group: "staff", Inode: 42, DeviceID: 2049, Links: 2, Size: 1 << 40,
		Content: []ID{{0xff}, {0x0a, 0xbc}}, LinkTarget: "../x", Device: 7,
		Xattrs: []Xattr{{Name: "user.a", Value: []byte("v")}, {Name: "user.empty", Value: []byte{}}, {Name: "user.nil"}},
		Error:  "read: input/output error"}
	cases := []*Node{
		full,
		{Name: "d", Type: TypeDir, Mode: 0o755 | 1<<31, ModTime: mt, Subtree: &sub},
		{Name: "zero", Type: TypeFile},
		{Name: "caf\u00e9 \u65e5\u672c", Type: TypeFile, ModTime: mt},
		{Name: "a<b>&c", Type: TypeFile, ModTime: mt},
		{Name: "tab\there", Type: TypeFile, ModTime: mt},
		{Name: "quote\"back\\slash", Type: TypeFile, ModTime: mt},
		{Name: "del\x7f", Type: TypeFile, ModTime: mt},
		{Name: "sep\u2028\u2029", Type: TypeFile, ModTime: mt},
		{Name: "bad\xff\xfe", Type: TypeFile, ModTime: mt, LinkTarget: "\xc3"},
		{Name: "f", Type: TypeFile, ModTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Name: "f", Type: TypeFile, ModTime: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Name: "f", Type: TypeFile, ModTime: mt.In(time.FixedZone("far", 24*3600))},
		{Name: "f", Type: TypeFile, ModTime: mt.In(time.FixedZone("west", -(23*3600 + 59*60)))},
		{Name: "f", Type: TypeFile, ModTime: time.Unix(1700000000, 123456789)},
		{Name: "f", Type: TypeFile, ModTime: mt, User: "<u>", Group: "g\n", Error: "e&"},
		{Name: "x", Type: TypeFile, ModTime: mt, Xattrs: []Xattr{{Name: "user.\xff", Value: []byte{0, 1, 2}}}},
		nil,
	}
	for i, n := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkAppendNode(t, n) })
	}
	// Ordinary nodes take the direct path, not the reflective fallback.
	for _, n := range append(realisticTree(3).Nodes, full, cases[1], cases[3]) {
		if _, ok := appendNodeFast(nil, n); !ok {
			t.Errorf("node %q fell back to encoding/json", n.Name)
		}
	}
}

func FuzzAppendNode(f *testing.F) {
	f.Add("name", "file", "user", "group", "target", "err", "user.x", []byte("v"), uint32(0o644), int64(1700000000), int64(5), 3600, uint64(7), true)
	f.Add("a<&>\u2028", "dir", "", "", "", "", "", []byte(nil), uint32(0), int64(-62135596801), int64(0), 0, uint64(0), false)
	f.Add("\xff", "x\x00", "\t", "\"", "\\", "\u00e9", "\xc3", []byte{}, ^uint32(0), int64(253402300800), int64(999999999), -86400, ^uint64(0), true)
	f.Fuzz(func(t *testing.T, name, typ, user, group, target, errStr, xname string, xval []byte, mode uint32, sec, nsec int64, zone int, num uint64, withX bool) {
		tz := time.FixedZone("z", zone)
		mt := time.Unix(sec, nsec).In(tz)
		n := &Node{Name: RawString(name), Type: NodeType(typ), Mode: mode, ModTime: mt, ChangeTime: mt.Add(time.Duration(num % 1e9)),
			UID: uint32(num), GID: uint32(num >> 32), User: user, Group: group, Inode: num, Size: num >> 3, Links: num & 3,
			LinkTarget: RawString(target), Error: errStr}
		if num&1 == 1 {
			n.Content = []ID{{byte(num)}, {byte(num >> 8)}}
			n.AccessTime = mt
		} else {
			n.Subtree = &ID{byte(num >> 16)}
		}
		if withX {
			n.Xattrs = []Xattr{{Name: RawString(xname), Value: xval}}
		}
		checkAppendNode(t, n)
	})
}

// realisticTree is a directory of source files as a backup would record it.
func realisticTree(n int) *Tree {
	t := &Tree{}
	mt := time.Unix(1764000000, 123456789)
	for i := 0; i < n; i++ {
		var c ID
		for j := range c {
			c[j] = byte(i*31 + j*7)
		}
		t.Nodes = append(t.Nodes, &Node{Name: RawString(fmt.Sprintf("source_file_%05d.go", i)), Type: TypeFile, Mode: 0o644,
			ModTime: mt.Add(time.Duration(i) * time.Millisecond), ChangeTime: mt.Add(time.Duration(i) * time.Second), UID: 1000, GID: 1000,
			User: "builder", Group: "builder", Inode: uint64(5000000 + i), DeviceID: 2049, Links: 1, Size: uint64(1000 + i*37), Content: []ID{c}})
	}
	return t
}

// BenchmarkSave measures encoding a 200-entry directory for storage.
func BenchmarkSave(b *testing.B) {
	t := realisticTree(200)
	enc, _ := t.Encode()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := Save(t, func([]byte) (ID, error) { return ID{}, nil }); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendNodeVsJSON(b *testing.B) {
	nodes := realisticTree(200).Nodes
	b.Run("append", func(b *testing.B) {
		var dst []byte
		for b.Loop() {
			dst = dst[:0]
			for _, n := range nodes {
				dst, _ = appendNode(dst, n)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		for b.Loop() {
			buf.Reset()
			for _, n := range nodes {
				enc.Encode(n)
			}
		}
	})
}

// TestDecodeCanonicalRoundTrip checks that trees as Save writes them take
// the fast decoding path and come back equal to what encoding/json makes
// of the same bytes.
func TestDecodeCanonicalRoundTrip(t *testing.T) {
	mt := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("east", 5*3600+30*60))
	sub := ID{9}
	tr := realisticTree(50)
	tr.Nodes = append(tr.Nodes,
		&Node{Name: "zz-dir", Type: TypeDir, Mode: 0o755 | 1<<31, ModTime: mt, AccessTime: mt, Subtree: &sub},
		&Node{Name: "zz-link", Type: TypeSymlink, ModTime: mt, LinkTarget: "caf\u00e9/../x", Error: "lstat: gone"},
		&Node{Name: "zz-dev", Type: TypeCharDev, ModTime: mt, Device: 1<<32 + 5, Links: 3},
		&Node{Name: "zz-empty", Type: TypeFile, ModTime: time.Unix(0, 0).UTC()})
	tr.Sort()
	store := newStore()
	id, err := Save(tr, store.save)
	if err != nil {
		t.Fatal(err)
	}
	got, chunks, err := Load(id, store.load)
	if err != nil || len(chunks) == 0 {
		t.Fatalf("load: %v (%d chunks)", err, len(chunks))
	}
	for bid, b := range store.blobs {
		fast, ok := decodeCanonical(b)
		if !ok {
			t.Fatalf("blob %s took the encoding/json path: %s", bid.Short(), b)
		}
		var ref Tree
		if err := json.Unmarshal(b, &ref); err != nil || !reflect.DeepEqual(fast, &ref) {
			t.Fatalf("blob %s: fast path and encoding/json differ (%v)", bid.Short(), err)
		}
	}
	if len(got.Nodes) != len(tr.Nodes) {
		t.Fatalf("loaded %d nodes, saved %d", len(got.Nodes), len(tr.Nodes))
	}
	for i := range got.Nodes {
		a, b := got.Nodes[i], tr.Nodes[i]
		if a.Name != b.Name || !a.ModTime.Equal(b.ModTime) || a.Size != b.Size || a.Device != b.Device || a.LinkTarget != b.LinkTarget {
			t.Fatalf("node %d: loaded %+v, saved %+v", i, a, b)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	enc, _ := realisticTree(200).Encode()
	b.Run("canonical", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, ok := decodeCanonical(enc); !ok {
				b.Fatal("not canonical")
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			var t Tree
			if err := json.Unmarshal(enc, &t); err != nil {
				b.Fatal(err)
			}
		}
	})
}
