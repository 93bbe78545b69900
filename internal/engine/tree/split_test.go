package tree

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// store is an in-memory blob store keyed by the SHA-256 of the content.
type store struct {
	blobs map[ID][]byte
	saves int
}

func newStore() *store { return &store{blobs: map[ID][]byte{}} }

func (s *store) save(b []byte) (ID, error) {
	id := ID(sha256.Sum256(b))
	s.saves++
	s.blobs[id] = bytes.Clone(b)
	return id, nil
}

func (s *store) load(id ID) ([]byte, error) {
	b, ok := s.blobs[id]
	if !ok {
		return nil, fmt.Errorf("blob %s not found", id.Short())
	}
	return b, nil
}

func bigTree(n int) *Tree {
	t := &Tree{}
	mt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := 0; i < n; i++ {
		var c ID
		c[0], c[1] = byte(i), byte(i>>8)
		t.Nodes = append(t.Nodes, &Node{Name: RawString(fmt.Sprintf("file-%06d.go", i)), Type: TypeFile, Mode: 0o644,
			ModTime: mt, ChangeTime: mt.Add(time.Duration(i)), Inode: uint64(1000 + i), Links: 1, Size: 100, Content: []ID{c}})
	}
	return t
}

func clone(t *Tree) *Tree {
	out := &Tree{}
	for _, n := range t.Nodes {
		nn := *n
		out.Nodes = append(out.Nodes, &nn)
	}
	return out
}

func TestSaveSmallTreeWhole(t *testing.T) {
	s := newStore()
	tr := bigTree(20)
	id, err := Save(tr, s.save)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := tr.Encode()
	if s.saves != 1 || !bytes.Equal(s.blobs[id], want) {
		t.Fatalf("a small tree must be stored whole as its canonical encoding (%d saves)", s.saves)
	}
	got, chunks, err := Load(id, s.load)
	if err != nil || chunks != nil || !reflect.DeepEqual(got.Nodes, tr.Nodes) {
		t.Fatalf("load: %v, chunks %v", err, chunks)
	}
}

func TestSaveSplitRoundTrip(t *testing.T) {
	s := newStore()
	tr := bigTree(5000)
	id, err := Save(tr, s.save)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := Decode(s.blobs[id])
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Nodes) != 0 || len(idx.Chunks) < 20 {
		t.Fatalf("index has %d nodes and %d chunks", len(idx.Nodes), len(idx.Chunks))
	}
	if !bytes.HasPrefix(s.blobs[id], []byte(`{"nodes":[],"chunks":["`)) {
		t.Fatalf("index encoding %.60s", s.blobs[id])
	}
	for _, c := range idx.Chunks {
		if n := len(s.blobs[c]); n > SplitThreshold*4 {
			t.Errorf("chunk %s is %d bytes", c.Short(), n)
		}
		// Every chunk is in canonical form.
		ct, err := Decode(s.blobs[c])
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := ct.Encode(); !bytes.Equal(again, s.blobs[c]) {
			t.Fatalf("chunk %s is not canonical", c.Short())
		}
	}
	got, chunks, err := Load(id, s.load)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(chunks, idx.Chunks) {
		t.Fatal("Load must return the chunk IDs")
	}
	if !reflect.DeepEqual(got.Nodes, tr.Nodes) {
		t.Fatal("joined listing differs from the saved one")
	}
	// Saving the same listing again stores the same blobs.
	again, err := Save(clone(tr), s.save)
	if err != nil || again != id {
		t.Fatalf("resave: %v, id %s vs %s", err, again.Short(), id.Short())
	}
}

// newBlobs saves tr into s and returns how many blobs s did not hold yet.
func newBlobs(t *testing.T, s *store, tr *Tree) int {
	t.Helper()
	before := len(s.blobs)
	if _, err := Save(tr, s.save); err != nil {
		t.Fatal(err)
	}
	return len(s.blobs) - before
}

func TestSplitLocalChanges(t *testing.T) {
	s := newStore()
	base := bigTree(5000)
	newBlobs(t, s, base)

	changed := clone(base)
	changed.Nodes[2500].Size = 101
	if n := newBlobs(t, s, changed); n != 2 {
		t.Errorf("changing one entry's metadata stored %d new blobs, want 2 (its chunk and the index)", n)
	}

	inserted := clone(base)
	if err := inserted.Insert(&Node{Name: "file-001234.go.orig", Type: TypeFile, ModTime: time.Unix(0, 0).UTC()}); err != nil {
		t.Fatal(err)
	}
	if n := newBlobs(t, s, inserted); n > 3 {
		t.Errorf("inserting one entry stored %d new blobs, want at most 3", n)
	}

	removed := clone(base)
	removed.Nodes = append(removed.Nodes[:100:100], removed.Nodes[101:]...)
	if n := newBlobs(t, s, removed); n > 3 {
		t.Errorf("removing one entry stored %d new blobs, want at most 3", n)
	}
}

// The chunk boundaries decide which blobs later backups share with earlier
// ones: a writer that cut differently would store every large directory
// again. Pin them.
func TestSplitBoundariesPinned(t *testing.T) {
	s := newStore()
	id, err := Save(bigTree(3000), s.save)
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := Decode(s.blobs[id])
	var sizes []int
	for _, c := range idx.Chunks {
		ct, err := Decode(s.blobs[c])
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(ct.Nodes))
	}
	got := fmt.Sprint(sizes)
	const want = "[6 18 11 17 17 37 19 15 54 17 5 47 21 30 18 44 10 9 87 5 16 36 12 8 46 7 23 10 15 7 30 41 4 24 34 25 5 32 65 36 22 7 38 23 20 14 15 17 6 23 12 6 12 23 6 5 6 45 34 12 20 24 14 21 10 12 49 9 46 21 11 19 21 8 38 23 7 8 28 16 36 5 14 50 6 8 12 27 14 4 15 10 4 21 36 32 6 5 36 5 40 14 33 19 7 10 19 9 27 32 38 34 58 4 22 33 34 31 15 11 5 23 8 31 20 49 16 27 41 4 13 6 15 8 13 21 20 74 21 4 31]"
	if got != want {
		t.Errorf("chunk sizes changed:\n got %s\nwant %s", got, want)
	}
}

func TestSplitHugeNodes(t *testing.T) {
	// Entries with large xattrs: chunks are cut by size too.
	s := newStore()
	tr := bigTree(300)
	for _, n := range tr.Nodes {
		n.Xattrs = []Xattr{{Name: "user.blob", Value: bytes.Repeat([]byte{byte(len(n.Name))}, 16<<10)}}
	}
	id, err := Save(tr, s.save)
	if err != nil {
		t.Fatal(err)
	}
	for bid, b := range s.blobs {
		if bid != id && len(b) > chunkMaxBytes+64<<10 {
			t.Errorf("chunk of %d bytes", len(b))
		}
	}
	got, _, err := Load(id, s.load)
	if err != nil || len(got.Nodes) != 300 {
		t.Fatalf("load: %v", err)
	}
}

func TestLoadRejectsBadSplitTrees(t *testing.T) {
	s := newStore()
	a, _ := s.save([]byte(`{"nodes":[{"name":"a","type":"file","mode":0,"mtime":"2026-01-01T00:00:00Z","uid":0,"gid":0}]}` + "\n"))
	b, _ := s.save([]byte(`{"nodes":[{"name":"b","type":"file","mode":0,"mtime":"2026-01-01T00:00:00Z","uid":0,"gid":0}]}` + "\n"))
	empty, _ := s.save([]byte(`{"nodes":[]}` + "\n"))
	index := func(ids ...ID) ID {
		var sb strings.Builder
		sb.WriteString(`{"nodes":[],"chunks":[`)
		for i, c := range ids {
			if i > 0 {
				sb.WriteString(",")
			}
			fmt.Fprintf(&sb, "%q", c.String())
		}
		sb.WriteString("]}\n")
		x, _ := s.save([]byte(sb.String()))
		return x
	}
	ok := index(a, b)
	if got, _, err := Load(ok, s.load); err != nil || len(got.Nodes) != 2 {
		t.Fatalf("valid split tree: %v", err)
	}
	nested := index(ok, b)
	mixed, _ := s.save([]byte(fmt.Sprintf(`{"nodes":[{"name":"a","type":"file","mode":0,"mtime":"2026-01-01T00:00:00Z","uid":0,"gid":0}],"chunks":[%q]}`, b.String())))
	var missing ID
	missing[0] = 0xee
	for name, id := range map[string]ID{
		"nested":       nested,
		"empty chunk":  index(a, empty),
		"out of order": index(b, a),
		"duplicate":    index(a, a),
		"missing":      index(a, missing),
		"mixed":        mixed,
	} {
		if _, _, err := Load(id, s.load); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Save writes a small tree byte for byte as Encode does: the canonical
// form pinned by testdata/vectors/tree-blob.json.
func TestSaveCanonicalVector(t *testing.T) {
	b, tr := vectorTree(t)
	s := newStore()
	id, err := Save(tr, s.save)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.blobs[id], b) {
		t.Fatalf("Save wrote\n%s\nwant\n%s", s.blobs[id], b)
	}
	if _, err := Save(&Tree{}, s.save); err != nil || !bytes.Equal(s.blobs[ID(sha256.Sum256([]byte("{\"nodes\":[]}\n")))], []byte("{\"nodes\":[]}\n")) {
		t.Fatalf("empty tree: %v", err)
	}
	unsorted := &Tree{Nodes: []*Node{{Name: "b", Type: TypeFile}, {Name: "a", Type: TypeFile}}}
	if _, err := Save(unsorted, s.save); err == nil {
		t.Fatal("Save accepted an unsorted tree")
	}
}
