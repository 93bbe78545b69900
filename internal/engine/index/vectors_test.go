package index

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
)

// The golden vectors of testdata/vectors: index.bin names the two pack
// vectors and supersedes a made-up file ee…ee.

const vectorsDir = "../../../testdata/vectors"

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func vectorKey(t testing.TB) *crypto.Key {
	t.Helper()
	var v struct {
		MasterKey string `json:"master_key"`
	}
	if err := json.Unmarshal(readVector(t, "vectors.json"), &v); err != nil {
		t.Fatal(err)
	}
	mk, _ := hex.DecodeString(v.MasterKey)
	k, err := crypto.NewKey(mk)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVectorIndexFile(t *testing.T) {
	key := vectorKey(t)
	b := readVector(t, "index.bin")
	if !bytes.Equal(b[:8], []byte{'B', 'N', 'K', 'R', 1, byte(format.TypeIndex), 0, 0}) {
		t.Fatalf("index header % x", b[:8])
	}
	f, err := DecodeFile(key, b)
	if err != nil {
		t.Fatal(err)
	}
	dataPack, treePack := readVector(t, "pack-data.bin"), readVector(t, "pack-tree.bin")
	if !slices.Equal(f.Packs, []ID{pack.Hash(dataPack), pack.Hash(treePack)}) {
		t.Fatalf("packs %v", f.Packs)
	}
	if !slices.Equal(f.Supersedes, []ID{ID(bytes.Repeat([]byte{0xee}, 32))}) {
		t.Fatalf("supersedes %v", f.Supersedes)
	}
	var want []FileEntry
	for i, data := range [][]byte{dataPack, treePack} {
		entries, _, err := pack.Parse(key, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			want = append(want, FileEntry{Pack: uint32(i), Entry: e})
		}
	}
	// Entries are stored sorted by (ID, type).
	slices.SortFunc(want, func(a, b FileEntry) int { return compareID(a.ID, b.ID) })
	if !slices.Equal(f.Entries, want) {
		t.Fatalf("entries\n%+v\nwant\n%+v", f.Entries, want)
	}
	// The plaintext layout: three counts and fixed-size records.
	plain, err := key.Open(nil, b[8:], b[:8])
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != 12+32*3+49*len(want) {
		t.Fatalf("index plaintext is %d bytes", len(plain))
	}
	// Loaded into an Index, every blob is found in its pack.
	x := New()
	x.AddFile(f)
	for _, e := range want {
		loc, ok := x.Lookup(e.ID, e.Type)
		if !ok || loc.Pack != f.Packs[e.Pack] || loc.Entry != e.Entry {
			t.Fatalf("lookup %s: %+v %v", e.ID.Short(), loc, ok)
		}
	}
}
