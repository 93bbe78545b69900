package pack

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"
)

// The golden vectors of testdata/vectors (generated once by the repository
// package's TestVectors -update-golden). These tests check that the stored
// packs still decode to the same blobs.

const vectorsDir = "../../../testdata/vectors"

type vectors struct {
	MasterKey  string `json:"master_key"`
	IDKey      string `json:"id_key"`
	TreeBlobID string `json:"tree_blob_id"`
	Blobs      []struct {
		Plaintext string `json:"plaintext_hex"`
		ID        string `json:"id"`
		Flag      byte   `json:"flag"`
		Offset    uint32 `json:"offset"`
		Length    uint32 `json:"length"`
	} `json:"blobs"`
}

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadVectors(t testing.TB) (vectors, *crypto.Key) {
	t.Helper()
	var v vectors
	if err := json.Unmarshal(readVector(t, "vectors.json"), &v); err != nil {
		t.Fatal(err)
	}
	mk, _ := hex.DecodeString(v.MasterKey)
	k, err := crypto.NewKey(mk)
	if err != nil {
		t.Fatal(err)
	}
	return v, k
}

func keyedID(t testing.TB, idKey string, b []byte) ID {
	t.Helper()
	k, _ := hex.DecodeString(idKey)
	h, err := blake3.NewKeyed(k)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = h.Write(b)
	var id ID
	h.Sum(id[:0])
	return id
}

func TestVectorDataPack(t *testing.T) {
	v, key := loadVectors(t)
	data := readVector(t, "pack-data.bin")
	if !bytes.Equal(data[:8], []byte{'B', 'N', 'K', 'R', 1, byte(format.TypePack), byte(DataBlob), 0}) {
		t.Fatalf("pack header % x", data[:8])
	}
	entries, typ, err := Parse(key, data)
	if err != nil {
		t.Fatal(err)
	}
	if typ != DataBlob || len(entries) != len(v.Blobs) {
		t.Fatalf("type %v, %d entries, want data and %d", typ, len(entries), len(v.Blobs))
	}
	codec, err := NewCodec(key, zstd.SpeedFastest)
	if err != nil {
		t.Fatal(err)
	}
	for i, vb := range v.Blobs {
		e := entries[i]
		pt, _ := hex.DecodeString(vb.Plaintext)
		if e.ID.String() != vb.ID || e.Offset != vb.Offset || e.Length != vb.Length || e.RawLength != uint32(len(pt)) || e.Type != DataBlob {
			t.Fatalf("entry %d is %+v, want %+v", i, e, vb)
		}
		if id := keyedID(t, v.IDKey, pt); id != e.ID {
			t.Fatalf("blob %d: keyed BLAKE3 %s, trailer says %s", i, id, e.ID)
		}
		got, err := codec.OpenBlob(nil, DataBlob, e.ID, data[e.Offset:e.Offset+e.Length], int(e.RawLength))
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("blob %d opens to %q, %v", i, got, err)
		}
		// The flag byte is the first plaintext byte of the sealed blob.
		inner, err := key.Open(nil, data[e.Offset:e.Offset+e.Length], blobAAD(DataBlob, e.ID))
		if err != nil || inner[0] != vb.Flag {
			t.Fatalf("blob %d: flag %d, want %d (%v)", i, inner[0], vb.Flag, err)
		}
		// A blob's AAD binds type and ID.
		if _, err := codec.OpenBlob(nil, TreeBlob, e.ID, data[e.Offset:e.Offset+e.Length], int(e.RawLength)); err == nil {
			t.Fatalf("blob %d opened as a tree blob", i)
		}
	}
	// The trailer length field and its AAD.
	tlen := int(format.NewDecoder(data[len(data)-4:], "").U32())
	if tlen != crypto.Overhead+4+len(entries)*EntrySize {
		t.Fatalf("trailer length %d", tlen)
	}
	aad := append(append([]byte("TRAILER"), data[:8]...), 0)
	plain, err := key.Open(nil, data[len(data)-4-tlen:len(data)-4], aad)
	if err != nil {
		t.Fatal(err)
	}
	if n := format.NewDecoder(plain, "").U32(); int(n) != len(entries) {
		t.Fatalf("trailer count %d", n)
	}
	// Every suffix that holds the trailer is enough; a shorter one asks for more.
	for _, tail := range []int{tlen + 4, tlen + 5, len(data) - 8} {
		if got, _, _, err := ParseTrailer(key, data[:8], data[len(data)-tail:], int64(len(data))); err != nil || len(got) != len(entries) {
			t.Fatalf("tail %d: %v", tail, err)
		}
	}
	if _, _, need, err := ParseTrailer(key, data[:8], data[len(data)-tlen:], int64(len(data))); err != ErrNeedMore || need != tlen+4 {
		t.Fatalf("short tail: need %d, %v", need, err)
	}
}

func TestVectorTreePack(t *testing.T) {
	v, key := loadVectors(t)
	data := readVector(t, "pack-tree.bin")
	entries, typ, err := Parse(key, data)
	if err != nil {
		t.Fatal(err)
	}
	tb := readVector(t, "tree-blob.json")
	if typ != TreeBlob || len(entries) != 1 || entries[0].ID.String() != v.TreeBlobID || entries[0].RawLength != uint32(len(tb)) {
		t.Fatalf("tree pack: %v %+v", typ, entries)
	}
	if keyedID(t, v.IDKey, tb).String() != v.TreeBlobID {
		t.Fatal("tree blob ID is not the keyed BLAKE3 of its plaintext")
	}
	codec, _ := NewCodec(key, zstd.SpeedFastest)
	e := entries[0]
	got, err := codec.OpenBlob(nil, TreeBlob, e.ID, data[e.Offset:e.Offset+e.Length], int(e.RawLength))
	if err != nil || !bytes.Equal(got, tb) {
		t.Fatalf("tree blob: %v", err)
	}
	h := Hash(data)
	if Name(h) != hex.EncodeToString(h[:]) || Name(h) != h.String() {
		t.Fatal("pack name is not the lower-case hex of its BLAKE3-256")
	}
}
