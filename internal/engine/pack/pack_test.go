package pack

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/klauspost/compress/zstd"
)

func newKey(t testing.TB) *crypto.Key {
	k, err := crypto.NewKey(crypto.Random(crypto.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func blobID(i int) ID {
	var id ID
	id[0], id[1], id[31] = byte(i>>8), byte(i), 0x77
	return id
}

// buildPack writes n blobs of random sizes and returns the pack, its ID,
// its entries and the plaintexts.
func buildPack(t testing.TB, key *crypto.Key, typ BlobType, n int) ([]byte, ID, []Entry, [][]byte) {
	codec, err := NewCodec(key, zstd.SpeedFastest)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	w := NewWriter(typ, 1<<20)
	if w.Size() != format.HeaderSize || w.Count() != 0 || w.Type() != typ {
		t.Fatal("new writer")
	}
	var plains [][]byte
	var scratch []byte
	for i := range n {
		b := make([]byte, rng.IntN(64))
		for j := range b {
			b[j] = byte(rng.IntN(4)) // compressible sometimes
		}
		var sealed []byte
		sealed, scratch = codec.SealBlob(nil, scratch, typ, blobID(i), b)
		before := w.Size()
		w.Add(typ, blobID(i), sealed, len(b))
		if w.Size() != before+len(sealed) || w.Count() != i+1 {
			t.Fatal("writer size or count")
		}
		plains = append(plains, b)
	}
	data, id, entries := w.Finalize(key)
	if id != Hash(data) || len(entries) != n {
		t.Fatal("Finalize: ID is not the hash of the pack, or entries lost")
	}
	return data, id, entries, plains
}

func TestWriterParseTrailerRoundTrip(t *testing.T) {
	key := newKey(t)
	codec, _ := NewCodec(key, zstd.SpeedFastest)
	for _, n := range []int{0, 1, 5, 1000, 3000} {
		for _, typ := range []BlobType{DataBlob, TreeBlob} {
			data, _, entries, plains := buildPack(t, key, typ, n)
			size := int64(len(data))
			tlen := crypto.Overhead + 4 + n*EntrySize
			if got := int(format.NewDecoder(data[len(data)-4:], "").U32()); got != tlen {
				t.Fatalf("n=%d: trailer length %d, want %d", n, got, tlen)
			}
			// The usual read: a TailSize tail, or the whole pack if smaller.
			tail := data[max(format.HeaderSize, len(data)-TailSize):]
			got, gotType, need, err := ParseTrailer(key, data[:format.HeaderSize], tail, size)
			if tlen+4 > len(tail) {
				// 3000 entries do not fit 64 KiB: the caller is told how much.
				if !errors.Is(err, ErrNeedMore) || need != tlen+4 {
					t.Fatalf("n=%d: need %d, %v; want %d, ErrNeedMore", n, need, err, tlen+4)
				}
				got, gotType, _, err = ParseTrailer(key, data[:format.HeaderSize], data[len(data)-need:], size)
			}
			if err != nil || gotType != typ || len(got) != n {
				t.Fatalf("n=%d %v: %d entries, type %v, %v", n, typ, len(got), gotType, err)
			}
			for i, e := range got {
				if e != entries[i] {
					t.Fatalf("entry %d: %+v, want %+v", i, e, entries[i])
				}
				pt, err := codec.OpenBlob(nil, typ, e.ID, data[e.Offset:e.Offset+e.Length], int(e.RawLength))
				if err != nil || !bytes.Equal(pt, plains[i]) {
					t.Fatalf("blob %d: %v", i, err)
				}
			}
			if all, _, err := Parse(key, data); err != nil || len(all) != n {
				t.Fatalf("Parse: %d, %v", len(all), err)
			}
		}
	}
}

func TestParseTrailerErrors(t *testing.T) {
	key := newKey(t)
	data, _, _, _ := buildPack(t, key, DataBlob, 10)
	hdr := data[:format.HeaderSize]
	size := int64(len(data))
	corrupt := func(name string, header, tail []byte, size int64) {
		t.Helper()
		_, _, _, err := ParseTrailer(key, header, tail, size)
		if err == nil || errors.Is(err, ErrNeedMore) {
			t.Errorf("%s: %v", name, err)
		}
	}
	corrupt("short header", hdr[:7], data, size)
	corrupt("index header", format.NewHeader(format.TypeIndex, 1).Bytes(), data, size)
	corrupt("unknown blob type", format.NewHeader(format.TypePack, 3).Bytes(), data, size)
	corrupt("tree header on a data pack", format.NewHeader(format.TypePack, byte(TreeBlob)).Bytes(), data, size)
	corrupt("tail of 3 bytes", hdr, data[len(data)-3:], size)
	corrupt("tail longer than the pack", hdr, data, size-1)
	corrupt("truncated pack", hdr, data[:len(data)-1], size-1)
	for _, i := range []int{len(data) - 5, len(data) - 30, len(data) - 60} {
		bad := bytes.Clone(data)
		bad[i] ^= 0x10
		corrupt("flipped trailer byte", hdr, bad, size)
	}
	// A length field pointing before the first blob, or at nothing.
	for _, tl := range []uint32{0, crypto.Overhead + 3, uint32(size), 1<<32 - 1} {
		bad := bytes.Clone(data)
		var e format.Encoder
		e.U32(tl)
		copy(bad[len(bad)-4:], e.B)
		corrupt("trailer length", hdr, bad, size)
	}
	// The trailer is bound to the header by its AAD: the same pack with a
	// different header byte fails authentication, not just a check.
	other := bytes.Clone(data)
	other[6] = byte(TreeBlob)
	if _, _, _, err := ParseTrailer(key, other[:8], other, size); !errors.Is(err, crypto.ErrUnauthenticated) {
		t.Errorf("re-typed pack: %v", err)
	}
	// A pack with blobs removed from the middle (body shorter than the
	// trailer says) is refused.
	cut := append(bytes.Clone(data[:format.HeaderSize]), data[format.HeaderSize+50:]...)
	corrupt("body cut", hdr, cut, int64(len(cut)))
	// Another key.
	if _, _, _, err := ParseTrailer(newKey(t), hdr, data, size); !errors.Is(err, crypto.ErrUnauthenticated) {
		t.Errorf("wrong key: %v", err)
	}
	if _, _, err := Parse(key, data[:5]); err == nil {
		t.Error("5-byte pack parsed")
	}
}

func TestSealOpenBlob(t *testing.T) {
	key := newKey(t)
	codec, err := NewCodec(key, zstd.SpeedDefault)
	if err != nil {
		t.Fatal(err)
	}
	id := blobID(1)
	random := crypto.Random(5000)
	zeros := make([]byte, 5000)
	for _, tc := range []struct {
		name string
		data []byte
		flag byte
	}{
		{"empty", nil, 0},
		{"incompressible", random, 0},
		{"compressible", zeros, 1},
		{"one byte", []byte{9}, 0},
	} {
		sealed, _ := codec.SealBlob([]byte("dst"), nil, DataBlob, id, tc.data)
		if string(sealed[:3]) != "dst" {
			t.Fatalf("%s: SealBlob must append to dst", tc.name)
		}
		sealed = sealed[3:]
		inner, err := key.Open(nil, sealed, blobAAD(DataBlob, id))
		if err != nil || inner[0] != tc.flag {
			t.Fatalf("%s: flag %d, want %d (%v)", tc.name, inner[0], tc.flag, err)
		}
		if tc.flag == 0 && len(sealed) != len(tc.data)+1+crypto.Overhead {
			t.Fatalf("%s: raw blob of %d bytes sealed to %d", tc.name, len(tc.data), len(sealed))
		}
		if tc.flag == 1 && len(sealed) >= len(tc.data) {
			t.Fatalf("%s: compressed blob not smaller", tc.name)
		}
		got, err := codec.OpenBlob([]byte("x"), DataBlob, id, sealed, len(tc.data))
		if err != nil || !bytes.Equal(got[1:], tc.data) || got[0] != 'x' {
			t.Fatalf("%s: open: %v", tc.name, err)
		}
		for _, bad := range []int{len(tc.data) + 1, len(tc.data) - 1, -1, MaxBlobSize + 1} {
			if _, err := codec.OpenBlob(nil, DataBlob, id, sealed, bad); !errors.Is(err, format.ErrCorrupt) {
				t.Fatalf("%s: wrong length %d: %v", tc.name, bad, err)
			}
		}
		if _, err := codec.OpenBlob(nil, DataBlob, blobID(2), sealed, len(tc.data)); !errors.Is(err, crypto.ErrUnauthenticated) {
			t.Fatalf("%s: other ID: %v", tc.name, err)
		}
		if _, err := codec.OpenBlob(nil, TreeBlob, id, sealed, len(tc.data)); !errors.Is(err, crypto.ErrUnauthenticated) {
			t.Fatalf("%s: other type: %v", tc.name, err)
		}
	}
	// Hostile payloads behind a valid seal: unknown flag, empty payload,
	// garbage zstd.
	for _, inner := range [][]byte{{}, {2, 1}, {1, 0x28, 0xb5, 0x2f, 0xfd, 0xff}} {
		s := key.Seal(nil, inner, blobAAD(DataBlob, id))
		if _, err := codec.OpenBlob(nil, DataBlob, id, s, 1); !errors.Is(err, format.ErrCorrupt) {
			t.Fatalf("payload % x: %v", inner, err)
		}
	}
}

func TestHashAndName(t *testing.T) {
	// BLAKE3-256 of the empty input (from the BLAKE3 reference vectors).
	if got := Name(Hash(nil)); got != "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262" {
		t.Fatalf("BLAKE3-256 of nothing: %s", got)
	}
	if DataBlob.String() != "data" || TreeBlob.String() != "tree" || BlobType(9).Valid() || BlobType(0).Valid() {
		t.Fatal("blob types")
	}
}
