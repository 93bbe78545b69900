package chunker

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
)

// FuzzChunker chunks arbitrary input with small sizes (Min 64, Avg 256,
// Max 1024), fed through a reader that splits it as the fuzzer chooses,
// and checks that the chunks add up to the input, respect the size bounds
// and agree with the reference implementation.
func FuzzChunker(f *testing.F) {
	f.Add([]byte{}, uint16(0))
	f.Add([]byte("hello"), uint16(1))
	f.Add(make([]byte, 3000), uint16(7))
	f.Add(randomBytes("fuzz", 5000), uint16(100))
	f.Add(pgbenchDump(5000), uint16(3))
	f.Add(allByteRuns(300), uint16(0))
	f.Add(zeroRuns("fuzz", 6000, 1, 200, 1, 700), uint16(999))
	p := smallParams(testSeed())
	tab := NewTable(p.Seed)
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		var rd io.Reader = bytes.NewReader(data)
		if split > 0 {
			rd = &splitReader{r: rd, sizes: []int{int(split % 97), int(split>>7) + 1, int(split % 13)}}
		}
		c := NewWithTable(rd, p, tab)
		var all []byte
		var lens []int
		var buf []byte
		for {
			var err error
			buf, err = c.Next(buf)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			lens = append(lens, len(buf))
			all = append(all, buf...)
		}
		if !bytes.Equal(all, data) {
			t.Fatalf("chunks (%d bytes) do not add up to the input (%d bytes)", len(all), len(data))
		}
		for i, n := range lens {
			if n == 0 || n > p.Max || (n < p.Min && i != len(lens)-1) {
				t.Fatalf("chunk %d of %d has %d bytes", i, len(lens), n)
			}
		}
		if want := refChunkLens(tab, p, data); !slices.Equal(lens, want) {
			t.Fatalf("chunk lengths %v differ from the reference %v", lens, want)
		}
	})
}

// splitReader returns reads of the given sizes in turn (0 means an empty
// read).
type splitReader struct {
	r     io.Reader
	sizes []int
	n     int
}

func (s *splitReader) Read(p []byte) (int, error) {
	size := s.sizes[s.n%len(s.sizes)]
	s.n++
	return s.r.Read(p[:min(len(p), size)])
}
