package pack

import (
	"bytes"
	"errors"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/klauspost/compress/zstd"
)

// checkEntries asserts what ParseTrailer promises about accepted entries.
func checkEntries(t *testing.T, entries []Entry, typ BlobType, packSize int64, tlen int64) {
	t.Helper()
	if !typ.Valid() {
		t.Fatalf("accepted blob type %d", typ)
	}
	next := int64(format.HeaderSize)
	for i, e := range entries {
		if e.Type != typ || int64(e.Offset) != next || e.Length < crypto.Overhead+1 || e.RawLength > MaxBlobSize {
			t.Fatalf("accepted entry %d: %+v (next %d)", i, e, next)
		}
		next += int64(e.Length)
	}
	if tlen >= 0 && next != packSize-4-tlen {
		t.Fatalf("blobs end at %d, trailer starts at %d", next, packSize-4-tlen)
	}
}

func samplePack(t testing.TB, key *crypto.Key, typ BlobType, blobs ...[]byte) []byte {
	codec, err := NewCodec(key, zstd.SpeedFastest)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(typ, 0)
	for i, b := range blobs {
		id := ID{byte(i)}
		sealed, _ := codec.SealBlob(nil, nil, typ, id, b)
		w.Add(typ, id, sealed, len(b))
	}
	data, _, _ := w.Finalize(key)
	return data
}

func FuzzParseTrailer(f *testing.F) {
	_, key := loadVectors(f)
	for _, name := range []string{"pack-data.bin", "pack-tree.bin"} {
		data := readVector(f, name)
		f.Add(data[:8], data[8:], int64(len(data)))
		f.Add(data[:8], data[len(data)-40:], int64(len(data)))
	}
	empty := samplePack(f, key, DataBlob)
	f.Add(empty[:8], empty, int64(len(empty)))
	f.Fuzz(func(t *testing.T, header, tail []byte, packSize int64) {
		entries, typ, need, err := ParseTrailer(key, header, tail, packSize)
		switch {
		case errors.Is(err, ErrNeedMore):
			if need <= len(tail) || int64(need) > packSize-format.HeaderSize {
				t.Fatalf("asks for a tail of %d bytes (have %d) of a %d-byte pack", need, len(tail), packSize)
			}
		case err == nil:
			checkEntries(t, entries, typ, packSize, -1)
		}
	})
}

func FuzzParse(f *testing.F) {
	_, key := loadVectors(f)
	f.Add(readVector(f, "pack-data.bin"))
	f.Add(readVector(f, "pack-tree.bin"))
	f.Add(samplePack(f, key, DataBlob))
	f.Add(samplePack(f, key, TreeBlob, []byte("{}")))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, typ, err := Parse(key, data)
		if err == nil {
			tlen := int64(format.NewDecoder(data[len(data)-4:], "").U32())
			checkEntries(t, entries, typ, int64(len(data)), tlen)
		}
	})
}

// FuzzTrailerPlaintext seals the fuzz input as the trailer of a pack with
// a body of bodyLen bytes, so that the entry checks behind the AEAD are
// reached.
func FuzzTrailerPlaintext(f *testing.F) {
	_, key := loadVectors(f)
	for _, name := range []string{"pack-data.bin", "pack-tree.bin"} {
		data := readVector(f, name)
		tlen := int(format.NewDecoder(data[len(data)-4:], "").U32())
		aad := trailerAAD(data[:8])
		plain, err := key.Open(nil, data[len(data)-4-tlen:len(data)-4], aad)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(plain, uint16(len(data)-4-tlen-8), data[6])
	}
	f.Add([]byte{0, 0, 0, 0}, uint16(0), byte(1))
	f.Fuzz(func(t *testing.T, plain []byte, bodyLen uint16, sub byte) {
		hdr := format.NewHeader(format.TypePack, sub).Bytes()
		data := append(hdr, make([]byte, bodyLen)...)
		sealed := key.Seal(nil, plain, trailerAAD(hdr))
		var e format.Encoder
		e.U32(uint32(len(sealed)))
		data = append(append(data, sealed...), e.B...)
		entries, typ, err := Parse(key, data)
		if err == nil {
			checkEntries(t, entries, typ, int64(len(data)), int64(len(sealed)))
			if sub != byte(typ) {
				t.Fatalf("pack of sub-type %d parsed as %v", sub, typ)
			}
		}
	})
}

// FuzzOpenBlob feeds sealed bytes (mostly failing authentication) and,
// with seal set, seals the fuzz input first so that the flag byte and
// the zstd decoder see hostile payloads.
func FuzzOpenBlob(f *testing.F) {
	_, key := loadVectors(f)
	codec, err := NewCodec(key, zstd.SpeedFastest)
	if err != nil {
		f.Fatal(err)
	}
	data := readVector(f, "pack-data.bin")
	entries, _, err := Parse(key, data)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		sealed := data[e.Offset : e.Offset+e.Length]
		f.Add(sealed, int(e.RawLength), false)
		inner, err := key.Open(nil, sealed, blobAAD(DataBlob, e.ID))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(inner, int(e.RawLength), true)
	}
	frame, _ := codec.enc.AppendFrame([]byte{1}, bytes.Repeat([]byte("z"), 5000))
	f.Add(frame, 5000, true)
	f.Add([]byte{2, 1, 2, 3}, 3, true)
	id := ID{1, 2, 3}
	f.Fuzz(func(t *testing.T, b []byte, rawLen int, seal bool) {
		sealed := b
		if seal {
			sealed = key.Seal(nil, b, blobAAD(DataBlob, id))
		}
		out, err := codec.OpenBlob([]byte("prefix"), DataBlob, id, sealed, rawLen)
		if err == nil && (len(out) != len("prefix")+rawLen || string(out[:6]) != "prefix") {
			t.Fatalf("opened %d bytes, want prefix and %d", len(out), rawLen)
		}
	})
}
