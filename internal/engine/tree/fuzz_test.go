package tree

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

func FuzzDecode(f *testing.F) {
	b, err := os.ReadFile("../../../testdata/vectors/tree-blob.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"nodes":[]}`))
	f.Add([]byte(`{"nodes":null}`))
	f.Add([]byte(`{"nodes":[{"name":"a","type":"dir"}]}`))
	f.Add([]byte(`{"nodes":[{"name":{"b64":"/w=="},"type":"file","mtime":"2026-01-01T00:00:00Z"},{"name":"b","type":"symlink","linktarget":{"b64":""}}]}`))
	f.Add([]byte(`{"nodes":[null]}`))
	canon, err := realisticTree(3).Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(canon)
	f.Add([]byte(`{"nodes":[],"chunks":["` + strings.Repeat("ab", 32) + `"]}` + "\n"))
	f.Add([]byte(`{"nodes":[{"name":"a","type":"file","mode":420,"mtime":"2026-01-01T00:00:00+01:00","uid":0,"gid":0,"user":"u","size":5,"content":[],"linktarget":"x","device":1,"error":"e"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		// The canonical fast path decodes exactly what encoding/json does.
		if fast, ok := decodeCanonical(b); ok {
			var ref Tree
			if err := json.Unmarshal(b, &ref); err != nil {
				t.Fatalf("fast path accepted what encoding/json rejects (%v): %q", err, b)
			}
			if !reflect.DeepEqual(fast, &ref) {
				t.Fatalf("fast path and encoding/json differ on %q:\n%+v\n%+v", b, fast, &ref)
			}
		}
		tr, err := Decode(b)
		if err != nil {
			return
		}
		for i, n := range tr.Nodes {
			if ValidName(string(n.Name)) != nil || (i > 0 && tr.Nodes[i-1].Name >= n.Name) || (n.Type == TypeDir && n.Subtree == nil) {
				t.Fatalf("accepted node %d: %+v", i, n)
			}
		}
		// The canonical encoding of an accepted tree is a fixed point.
		enc, err := tr.Encode()
		if err != nil {
			return // e.g. a time that JSON cannot represent again
		}
		tr2, err := Decode(enc)
		if err != nil {
			t.Fatalf("canonical encoding %s does not decode: %v", enc, err)
		}
		enc2, err := tr2.Encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("canonical encoding is not stable:\n%s\n%s (%v)", enc, enc2, err)
		}
	})
}

func FuzzRawString(f *testing.F) {
	f.Add([]byte(`"plain"`), "caf\xe9")
	f.Add([]byte(`{"b64":"Y2Fm6Q=="}`), "")
	f.Add([]byte(`{"b64":"!!"}`), "\xff")
	f.Add([]byte(`null`), "a\x00b")
	f.Add([]byte(`{"b64":null,"x":1}`), "\u2028<&>")
	f.Fuzz(func(t *testing.T, b []byte, s string) {
		var r RawString
		if err := r.UnmarshalJSON(b); err == nil {
			enc, err := json.Marshal(r)
			if err != nil {
				t.Fatalf("decoded %q does not encode: %v", r, err)
			}
			var again RawString
			if err := json.Unmarshal(enc, &again); err != nil || again != r {
				t.Fatalf("%q -> %s -> %q (%v)", r, enc, again, err)
			}
		}
		// Every byte string survives a round trip exactly.
		enc, err := json.Marshal(RawString(s))
		if err != nil {
			t.Fatal(err)
		}
		var back RawString
		if err := json.Unmarshal(enc, &back); err != nil || string(back) != s {
			t.Fatalf("%q -> %s -> %q (%v)", s, enc, back, err)
		}
		// Inside a node as well.
		n := Node{Name: RawString(s), LinkTarget: RawString(s), Xattrs: []Xattr{{Name: RawString(s)}}}
		js, err := json.Marshal(&n)
		if err != nil {
			t.Fatal(err)
		}
		var m Node
		if err := json.Unmarshal(js, &m); err != nil || !reflect.DeepEqual(m.Name, n.Name) || m.LinkTarget != n.LinkTarget || m.Xattrs[0].Name != n.Xattrs[0].Name {
			t.Fatalf("node round trip of %q: %s (%v)", s, js, err)
		}
	})
}

// FuzzLoad feeds Load a tree blob and up to three more blobs, stored under
// the IDs 01 00…, 02 00…, 03 00… so that a tree index can name them.
func FuzzLoad(f *testing.F) {
	id := func(i byte) string { var x ID; x[0] = i; return x.String() }
	leaf := func(name string) string {
		return `{"nodes":[{"name":"` + name + `","type":"file","mode":0,"mtime":"2026-01-01T00:00:00Z","uid":0,"gid":0}]}` + "\n"
	}
	sep := "\xff\x00"
	f.Add([]byte(`{"nodes":[],"chunks":["` + id(1) + `","` + id(2) + `"]}` + sep + leaf("a") + sep + leaf("b")))
	f.Add([]byte(`{"nodes":[],"chunks":["` + id(2) + `","` + id(1) + `"]}` + sep + leaf("a") + sep + leaf("b")))
	f.Add([]byte(`{"nodes":[],"chunks":["` + id(1) + `"]}` + sep + `{"nodes":[],"chunks":["` + id(1) + `"]}`))
	f.Add([]byte(leaf("x")))
	f.Fuzz(func(t *testing.T, b []byte) {
		parts := bytes.SplitN(b, []byte(sep), 4)
		blobs := map[ID][]byte{}
		for i, p := range parts {
			var x ID
			x[0] = byte(i)
			blobs[x] = p
		}
		loads := 0
		tr, chunks, err := Load(ID{}, func(x ID) ([]byte, error) {
			loads++
			if p, ok := blobs[x]; ok {
				return p, nil
			}
			return nil, os.ErrNotExist
		})
		if err != nil {
			return
		}
		if loads != 1+len(chunks) {
			t.Fatalf("%d loads for %d chunks", loads, len(chunks))
		}
		for i, n := range tr.Nodes {
			if ValidName(string(n.Name)) != nil || (i > 0 && tr.Nodes[i-1].Name >= n.Name) {
				t.Fatalf("accepted node %d: %+v", i, n)
			}
		}
	})
}
