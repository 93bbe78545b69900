package mongodb

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func sampleDocs(t testing.TB) []bson.Raw {
	t.Helper()
	return []bson.Raw{
		mustMarshal(t, bson.D{{Key: "_id", Value: 1}}),
		mustMarshal(t, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "nested", Value: bson.D{{Key: "a", Value: bson.A{1, "x", 2.5}}}}}),
		mustMarshal(t, bson.D{{Key: "big", Value: bytes.Repeat([]byte{7}, 200<<10)}}),
		emptyDoc,
	}
}

func concat(docs []bson.Raw) []byte {
	var b []byte
	for _, d := range docs {
		b = append(b, d...)
	}
	return b
}

func TestDocReader(t *testing.T) {
	docs := sampleDocs(t)
	data := concat(docs)
	dr := NewDocReader(iotest.HalfReader(bytes.NewReader(data)))
	for i, want := range docs {
		got, err := dr.Next()
		if err != nil {
			t.Fatalf("doc %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("doc %d differs", i)
		}
	}
	if _, err := dr.Next(); err != io.EOF {
		t.Fatalf("after the last: %v", err)
	}
	if dr.Offset() != int64(len(data)) {
		t.Fatalf("offset %d, want %d", dr.Offset(), len(data))
	}

	for name, bad := range map[string][]byte{
		"truncated header":   data[:len(docs[0])+2],
		"truncated document": data[:len(data)-1],
		"size too small":     {4, 0, 0, 0},
		"size negative":      {0xff, 0xff, 0xff, 0xff, 0},
		"size too large":     {0, 0, 0, 0x7f, 0},
		"no terminator":      {5, 0, 0, 0, 1},
		"bad element":        {8, 0, 0, 0, 0x42, 'a', 0, 0},
	} {
		dr := NewDocReader(bytes.NewReader(bad))
		var err error
		for err == nil {
			_, err = dr.Next()
		}
		if err == io.EOF {
			t.Errorf("%s: read to the end without an error", name)
		} else if !strings.Contains(err.Error(), "at byte") {
			t.Errorf("%s: error does not say where: %v", name, err)
		}
	}
}

func TestDocStream(t *testing.T) {
	docs := sampleDocs(t)
	i := 0
	var buf []byte
	st := &docStream{next: func() ([]byte, error) {
		if i == len(docs) {
			return nil, io.EOF
		}
		i++
		// The slice need only be valid until the next call, as a
		// cursor's: reuse one buffer.
		buf = append(buf[:0], docs[i-1]...)
		return buf, nil
	}}
	got, err := io.ReadAll(iotest.OneByteReader(st))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, concat(docs)) || st.docs != int64(len(docs)) || st.bytes != int64(len(got)) {
		t.Fatalf("stream gave %d bytes, %d docs", len(got), st.docs)
	}

	boom := errors.New("cursor died")
	n := 0
	st = &docStream{next: func() ([]byte, error) {
		if n++; n > 2 {
			return nil, boom
		}
		return docs[0], nil
	}}
	if _, err := io.ReadAll(st); !errors.Is(err, boom) {
		t.Fatalf("a cursor error was not passed on: %v", err)
	}
	st = &docStream{next: func() ([]byte, error) { return []byte{9, 0, 0, 0, 0}, nil }}
	if _, err := io.ReadAll(st); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("a malformed document was passed on: %v", err)
	}
}

// FuzzDocReader: never panics, never returns a document that is not
// valid BSON, and consumes exactly the documents it returns.
func FuzzDocReader(f *testing.F) {
	f.Add(concat(sampleDocs(f)[:2]))
	f.Add([]byte{5, 0, 0, 0, 0, 5, 0, 0, 0})
	f.Add([]byte(mustMarshal(f, bson.D{{Key: "ts", Value: bson.Timestamp{T: 1, I: 2}}, {Key: "o", Value: bson.D{{Key: "x", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}}}}})))
	f.Fuzz(func(t *testing.T, data []byte) {
		dr := NewDocReader(bytes.NewReader(data))
		var total int64
		for {
			doc, err := dr.Next()
			if err != nil {
				if err == io.EOF && total != int64(len(data)) {
					t.Fatalf("EOF after %d of %d bytes", total, len(data))
				}
				return
			}
			if err := doc.Validate(); err != nil {
				t.Fatalf("returned an invalid document: %v", err)
			}
			if !bytes.Equal(doc, data[total:total+int64(len(doc))]) {
				t.Fatal("returned bytes that are not the input's")
			}
			total += int64(len(doc))
			if dr.Offset() != total {
				t.Fatalf("offset %d, consumed %d", dr.Offset(), total)
			}
		}
	})
}
