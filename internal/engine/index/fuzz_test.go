package index

import (
	"reflect"
	"slices"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
)

// checkFile asserts what DecodeFile promises about an accepted file.
func checkFile(t *testing.T, key *crypto.Key, f *File) {
	t.Helper()
	for i, e := range f.Entries {
		if !e.Type.Valid() || int(e.Pack) >= len(f.Packs) || e.Length <= crypto.Overhead || e.RawLength > pack.MaxBlobSize || e.Offset < format.HeaderSize {
			t.Fatalf("accepted entry %d: %+v", i, e)
		}
	}
	// Re-encoding (which sorts the entries) decodes to the same file.
	sorted := &File{Packs: f.Packs, Supersedes: f.Supersedes, Entries: slices.Clone(f.Entries)}
	again, err := DecodeFile(key, EncodeFile(key, sorted))
	if err != nil {
		t.Fatalf("re-encoded file does not decode: %v", err)
	}
	if !reflect.DeepEqual(again, sorted) {
		t.Fatal("re-encoded file decodes differently")
	}
	// Loading it into an Index finds every entry. (An entry repeated at
	// the same pack and offset is recorded once, whatever lengths the
	// copies claim: such a file is inconsistent, and the blob's AEAD
	// decides which length is right when it is read.)
	x := New()
	x.AddFile(f)
	for _, e := range f.Entries {
		found := false
		for _, l := range x.LookupAll(e.ID, e.Type) {
			if l.Pack == f.Packs[e.Pack] && l.Offset == e.Offset {
				found = true
			}
		}
		if !found {
			t.Fatalf("entry %+v not found after AddFile", e)
		}
	}
	// Each gives every entry the index holds, with the full IDs the file
	// names, whatever prefixes the file's IDs share.
	n := 0
	err = x.Each(Files(f), func(l Location) bool {
		if len(x.LookupAll(l.ID, l.Type)) == 0 {
			t.Fatalf("Each gives %+v, which LookupAll does not know", l)
		}
		n++
		return true
	})
	if err != nil || n != x.Len() {
		t.Fatalf("Each gives %d of %d entries: %v", n, x.Len(), err)
	}
}

func FuzzDecodeFile(f *testing.F) {
	key := vectorKey(f)
	f.Add(readVector(f, "index.bin"))
	f.Add(EncodeFile(key, &File{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := DecodeFile(key, b)
		if err == nil {
			checkFile(t, key, file)
		}
	})
}

// FuzzIndexPlaintext seals the fuzz input as an index file so that the
// parser behind the AEAD sees hostile plaintexts.
func FuzzIndexPlaintext(f *testing.F) {
	key := vectorKey(f)
	b := readVector(f, "index.bin")
	plain, err := key.Open(nil, b[8:], b[:8])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(plain)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	hdr := format.NewHeader(format.TypeIndex, 0).Bytes()
	f.Fuzz(func(t *testing.T, plain []byte) {
		file, err := DecodeFile(key, key.Seal(slices.Clone(hdr), plain, hdr))
		if err == nil {
			checkFile(t, key, file)
		}
	})
}
