package format

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

func vectorSeeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, n := range []string{"config.bin", "key-test.bin", "pack-data.bin", "index.bin", "snapshot.bin", "plan.bin"} {
		b, err := os.ReadFile("../../../testdata/vectors/" + n)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func FuzzParseHeader(f *testing.F) {
	for _, b := range vectorSeeds(f) {
		f.Add(b[:HeaderSize], b[5])
	}
	f.Add([]byte("BNKR\x02\x01\x00\x00"), byte(1))
	f.Add([]byte("BNKR"), byte(3))
	f.Fuzz(func(t *testing.T, b []byte, want byte) {
		h, err := ParseHeader(b, ObjectType(want))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNewerFormat) {
				t.Fatalf("error %v is neither ErrCorrupt nor ErrNewerFormat", err)
			}
			return
		}
		if len(b) < HeaderSize || !bytes.Equal(b[:4], Magic[:]) || h.Version != Version || h.Type != ObjectType(want) || b[7] != 0 {
			t.Fatalf("accepted bad header % x as %+v", b, h)
		}
		if !bytes.Equal(h.Bytes(), b[:HeaderSize]) {
			t.Fatalf("header %+v encodes to % x, parsed from % x", h, h.Bytes(), b[:HeaderSize])
		}
		_ = h.Type.String()
	})
}

// FuzzDecoder drives a Decoder over data with reads chosen by ops.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 7, 7, 7, 7}, []byte{4, 4, 0})
	f.Add(bytes.Repeat([]byte{0xff}, 40), []byte{1, 3, 2})
	f.Add([]byte{2, 0, 0, 0}, []byte{5, 32, 3, 3})
	f.Fuzz(func(t *testing.T, data, ops []byte) {
		d := NewDecoder(data, "fuzz")
		for i := 0; i < len(ops); i++ {
			before, failed := d.Offset(), d.Err() != nil
			var n int
			switch ops[i] % 6 {
			case 0:
				d.U8()
				n = 1
			case 1:
				d.U32()
				n = 4
			case 2:
				d.U64()
				n = 8
			case 3:
				d.ID()
				n = 32
			case 4:
				elem := 1
				if i+1 < len(ops) {
					i++
					elem = int(ops[i])
				}
				c := d.Count(elem)
				if d.Err() == nil && c*elem > len(data)-d.Offset() {
					t.Fatalf("count %d of %d-byte elements exceeds the %d remaining bytes", c, elem, len(data)-d.Offset())
				}
				n = 4
			case 5:
				_ = d.Finish()
				continue
			}
			switch {
			case failed && (d.Offset() != before || d.Err() == nil):
				t.Fatal("decoder moved or forgot its error after an error")
			case !failed && d.Err() == nil && d.Offset() != before+n:
				t.Fatalf("read of %d bytes moved from %d to %d", n, before, d.Offset())
			case d.Err() != nil && !errors.Is(d.Err(), ErrCorrupt):
				t.Fatalf("error %v is not ErrCorrupt", d.Err())
			}
			if d.Offset() > len(data) {
				t.Fatalf("offset %d past the end %d", d.Offset(), len(data))
			}
		}
		if err := d.Finish(); err == nil && d.Offset() != len(data) {
			t.Fatal("Finish accepted trailing bytes")
		}
	})
}

func FuzzParseID(f *testing.F) {
	f.Add(strings.Repeat("0a", 32))
	f.Add(strings.Repeat("F", 64))
	f.Add("xyz")
	f.Add(strings.Repeat("g", 64))
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			if !id.IsZero() && len(s) != 64 {
				t.Fatalf("failed parse of %q left %s", s, id)
			}
			return
		}
		if id.String() != strings.ToLower(s) {
			t.Fatalf("%q parsed to %s", s, id)
		}
		var again ID
		txt, _ := id.MarshalText()
		if err := again.UnmarshalText(txt); err != nil || again != id {
			t.Fatalf("text round trip of %s: %v", id, err)
		}
		if len(id.Short()) != 8 {
			t.Fatal("short form is not 8 digits")
		}
	})
}
