package chunker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/zeebo/blake3"
)

func TestValidate(t *testing.T) {
	seed := testSeed()
	tests := []struct {
		name    string
		p       Params
		wantErr string // substring; empty for valid params
	}{
		{"default", DefaultParams(seed), ""},
		{"small", smallParams(seed), ""},
		{"largest", Params{Min: 8 << 20, Avg: 32 << 20, Max: 64 << 20}, ""},
		{"zero", Params{}, "Min must be at least 64"},
		{"min too small", Params{Min: 63, Avg: 256, Max: 1024}, "Min must be at least 64"},
		{"negative", Params{Min: -1, Avg: 256, Max: 1024}, "Min must be at least 64"},
		{"max too large", Params{Min: 1 << 20, Avg: 2 << 20, Max: 64<<20 + 1}, "Max must be at most"},
		{"min == avg", Params{Min: 256, Avg: 256, Max: 1024}, "Min < Avg < Max"},
		{"avg == max", Params{Min: 64, Avg: 1024, Max: 1024}, "Min < Avg < Max"},
		{"min > max", Params{Min: 4096, Avg: 256, Max: 1024}, "Min < Avg < Max"},
		{"avg not power of two", Params{Min: 64, Avg: 300, Max: 1024}, "power of two"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParamsFormattingHidesSeed(t *testing.T) {
	var seed [32]byte
	for i := range seed {
		seed[i] = 0xab
	}
	p := DefaultParams(seed)
	p.Min = 1 // invalid, so that Validate's message is checked too
	for _, s := range []string{
		fmt.Sprint(p), fmt.Sprintf("%v %+v %#v %s", p, p, p, p), p.Validate().Error(),
		New(nil, p).perr.Error(),
	} {
		if strings.Contains(s, "171") || strings.Contains(strings.ToLower(s), "abab") {
			t.Errorf("formatted params leak the seed: %s", s)
		}
	}
}

func TestMasks(t *testing.T) {
	tests := []struct {
		avg          int
		maskS, maskL uint64
	}{
		{1 << 20, 0xfffffc0000000000, 0xffffc00000000000},
		{256, 0xffc0000000000000, 0xfc00000000000000},
		{32 << 20, 0xffffffe000000000, 0xfffffe0000000000},
	}
	for _, tt := range tests {
		s, l := Params{Avg: tt.avg}.masks()
		if s != tt.maskS || l != tt.maskL {
			t.Errorf("masks(Avg %d) = %#x, %#x, want %#x, %#x", tt.avg, s, l, tt.maskS, tt.maskL)
		}
	}
	for n := 1; n <= 63; n++ {
		if m := topMask(n); bitsSet(m) != n || m != refMask(n) {
			t.Errorf("topMask(%d) = %#x", n, m)
		}
	}
}

func bitsSet(m uint64) int {
	n := 0
	for ; m != 0; m &= m - 1 {
		n++
	}
	return n
}

// TestTableConstruction checks the gear table against the construction in
// the package documentation, computed through the streaming BLAKE3 API, and
// pins the documented test vector.
func TestTableConstruction(t *testing.T) {
	for _, seed := range [][32]byte{{}, testSeed()} {
		h := blake3.NewDeriveKey("bunker chunker gear v1")
		_, _ = h.Write(seed[:])
		out := make([]byte, 2048)
		if _, err := h.Digest().Read(out); err != nil {
			t.Fatal(err)
		}
		tab := NewTable(seed)
		for i, g := range tab.gear {
			if want := binary.LittleEndian.Uint64(out[8*i:]); g != want {
				t.Fatalf("seed %x: gear[%d] = %#x, want %#x", seed, i, g, want)
			}
		}
	}
	tab := NewTable([32]byte{})
	for _, v := range []struct {
		i    int
		want uint64
	}{{0, 0x5f26d7f9cd511e7b}, {1, 0x9bd9583694a61531}, {255, 0xf7fc832c4e262fc6}} {
		if tab.gear[v.i] != v.want {
			t.Errorf("zero seed: gear[%d] = %#x, want %#x (doc.go test vector)", v.i, tab.gear[v.i], v.want)
		}
	}
	other := testSeed()
	other[31] ^= 1
	if NewTable(other).gear == NewTable(testSeed()).gear {
		t.Error("seeds differing in one bit give the same table")
	}
}

// readers returns the ways TestMatchesReference feeds input to a Chunker.
func readers() []struct {
	name string
	wrap func(io.Reader) io.Reader
} {
	return []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one-byte", iotest.OneByteReader},
		{"half", iotest.HalfReader},
		{"data-err", iotest.DataErrReader},
		{"odd-sizes", func(r io.Reader) io.Reader { return &oddReader{r: r} }},
	}
}

// oddReader returns reads of cycling odd sizes, sometimes with no data.
type oddReader struct {
	r io.Reader
	n int
}

func (o *oddReader) Read(p []byte) (int, error) {
	o.n++
	size := []int{0, 7, 1, 4093, 65537, 300000, 13}[o.n%7]
	return o.r.Read(p[:min(len(p), size)])
}

func TestMatchesReference(t *testing.T) {
	seed := testSeed()
	mid := Params{Min: 8 << 10, Avg: 32 << 10, Max: 128 << 10, Seed: seed}
	tests := []struct {
		name string
		p    Params
		data []byte
	}{
		{"small/random", smallParams(seed), randomBytes("ref", 300<<10)},
		{"small/zeros", smallParams(seed), make([]byte, 100<<10)},
		{"small/pgbench", smallParams(seed), pgbenchDump(200 << 10)},
		{"small/zero-runs", smallParams(seed), zeroRuns("ref", 300<<10, 1, 300, 1, 3000)},
		{"small/periodic", smallParams(seed), bytes.Repeat(randomBytes("period", 777), 300)},
		{"small/runs-of-all-bytes", smallParams(seed), allByteRuns(2000)},
		{"small/short", smallParams(seed), randomBytes("short", 1000)},
		{"small/exactly-min", smallParams(seed), randomBytes("short", 64)},
		{"small/exactly-max", smallParams(seed), make([]byte, 1024)},
		{"small/max-plus-one", smallParams(seed), make([]byte, 1025)},
		{"small/one-byte", smallParams(seed), []byte{42}},
		{"mid/random", mid, randomBytes("ref", 3<<20)},
		{"mid/pgbench", mid, pgbenchDump(3 << 20)},
		{"mid/zero-runs", mid, zeroRuns("ref", 3<<20, 1<<10, 64<<10, 1<<10, 400<<10)},
		{"mid/periodic", mid, bytes.Repeat(randomBytes("period", 4099), 700)},
		{"default/zero-runs", DefaultParams(seed), zeroRuns("ref", smallerUnder(24<<20, 12<<20), 1<<10, 32<<10, 256<<10, 6<<20)},
		{"default/random", DefaultParams(seed), randomBytes("ref", smallerUnder(12<<20, 10<<20))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := NewTable(tt.p.Seed)
			want := refChunkLens(tab, tt.p, tt.data)
			for _, r := range readers() {
				if raceEnabled && len(tt.data) > 4<<20 && r.name != "odd-sizes" {
					continue
				}
				if r.name == "one-byte" && len(tt.data) > smallerUnder(4<<20, 512<<10) {
					continue
				}
				got := chunkLens(t, NewWithTable(r.wrap(bytes.NewReader(tt.data)), tt.p, tab))
				if !slices.Equal(got, want) {
					t.Fatalf("%s reader: chunk lengths differ from the reference\n got %v\nwant %v", r.name, head(got), head(want))
				}
			}
		})
	}
}

// allByteRuns returns runs of every byte value, of lengths up to n.
func allByteRuns(n int) []byte {
	var b []byte
	for v := range 256 {
		b = append(b, bytes.Repeat([]byte{byte(v)}, 1+(v*7919)%n)...)
	}
	return b
}

func head(l []int) []int {
	if len(l) > 40 {
		return l[:40]
	}
	return l
}

func TestEmptyInput(t *testing.T) {
	c := New(bytes.NewReader(nil), smallParams(testSeed()))
	buf := make([]byte, 10, 100)
	got, err := c.Next(buf)
	if err != io.EOF || len(got) != 0 || cap(got) != 100 {
		t.Fatalf("Next on empty input = %d bytes (cap %d), %v; want 0 bytes of buf, io.EOF", len(got), cap(got), err)
	}
	if _, err := c.Next(nil); err != io.EOF {
		t.Fatalf("second Next = %v, want io.EOF", err)
	}
}

func TestChunkBoundsAndContent(t *testing.T) {
	for _, p := range []Params{smallParams(testSeed()), DefaultParams(testSeed())} {
		size := smallerUnder(20<<20, 8<<20)
		for _, data := range [][]byte{randomBytes("bounds", size), make([]byte, size), pgbenchDump(size)} {
			var all []byte
			chunks := chunkData(t, p, data)
			for i, c := range chunks {
				if (len(c) < p.Min && i != len(chunks)-1) || len(c) > p.Max || len(c) == 0 {
					t.Fatalf("params %v: chunk %d of %d has %d bytes", p, i, len(chunks), len(c))
				}
				all = append(all, c...)
			}
			if !bytes.Equal(all, data) {
				t.Fatalf("params %v: chunks do not add up to the input", p)
			}
		}
	}
}

// TestDistribution checks chunk sizes on random input: the mean is close
// to Avg and the sizes are concentrated around it.
func TestDistribution(t *testing.T) {
	size := smallerUnder(64<<20, 16<<20)
	for _, p := range []Params{
		DefaultParams(testSeed()),
		{Min: 2 << 10, Avg: 8 << 10, Max: 64 << 10, Seed: testSeed()},
	} {
		lens := chunkLens(t, New(bytes.NewReader(randomBytes("distribution", size)), p))
		body := lens[:len(lens)-1]
		var sum, below, above int
		for _, n := range body {
			sum += n
			if n < p.Min || n > p.Max {
				t.Fatalf("%v: chunk of %d bytes", p, n)
			}
			if n < p.Avg/2+p.Min/2 {
				below++
			}
			if n > 2*p.Avg {
				above++
			}
		}
		mean := float64(sum) / float64(len(body))
		t.Logf("%v: %d chunks, mean %.0f (%.3f Avg), %d under (Min+Avg)/2, %d over 2*Avg",
			p, len(lens), mean, mean/float64(p.Avg), below, above)
		if mean < 0.8*float64(p.Avg) || mean > 1.2*float64(p.Avg) {
			t.Errorf("%v: mean chunk size %.0f is not within 20%% of Avg", p, mean)
		}
		if frac := float64(above) / float64(len(body)); frac > 0.05 {
			t.Errorf("%v: %.1f%% of chunks are over 2*Avg", p, 100*frac)
		}
	}
}

// TestUniformInput checks that runs of one byte are cut every Avg bytes
// (run cuts) and never at hash cut points, for every byte value, including
// those whose fixed point passes a mask (frequent with the small masks).
func TestUniformInput(t *testing.T) {
	for _, p := range []Params{smallParams(testSeed()), smallParams([32]byte{}), DefaultParams(testSeed())} {
		tab := NewTable(p.Seed)
		maskS, maskL := p.masks()
		passing := 0
		for v := range 256 {
			if fp := -tab.gear[v]; fp&maskS == 0 || fp&maskL == 0 {
				passing++
			}
			n := 5*p.Avg + p.Min + 3
			if p.Avg > 1<<16 && v%51 != 0 {
				continue // a few byte values are enough at full size
			}
			data := bytes.Repeat([]byte{byte(v)}, n)
			lens := chunkLens(t, NewWithTable(bytes.NewReader(data), p, tab))
			want := []int{p.Avg, p.Avg, p.Avg, p.Avg, p.Avg, p.Min + 3}
			if !slices.Equal(lens, want) {
				t.Fatalf("%v: %d bytes %#02x: chunks %v, want %v", p, n, v, lens, want)
			}
		}
		t.Logf("%v: %d byte values have a fixed point that passes a mask", p, passing)
	}
}

// errAfter delivers data, then fails with err (in the same Read call as
// the last bytes if together is set).
type errAfter struct {
	data     []byte
	err      error
	together bool
	step     int
}

func (e *errAfter) Read(p []byte) (int, error) {
	n := copy(p, e.data[:min(len(e.data), e.step)])
	e.data = e.data[n:]
	if len(e.data) == 0 && (e.together || n == 0) {
		return n, e.err
	}
	return n, nil
}

func TestReadError(t *testing.T) {
	errBoom := errors.New("boom")
	p := smallParams(testSeed())
	data := randomBytes("read error", 10000)
	for _, together := range []bool{false, true} {
		for _, step := range []int{1, 333, 100000} {
			t.Run(fmt.Sprintf("together=%v/step=%d", together, step), func(t *testing.T) {
				c := New(&errAfter{data: data, err: errBoom, together: together, step: step}, p)
				var got []byte
				var buf []byte
				var err error
				for {
					buf, err = c.Next(buf)
					if err != nil {
						break
					}
					got = append(got, buf...)
				}
				if !errors.Is(err, errBoom) || errors.Is(err, io.EOF) {
					t.Fatalf("Next error = %v, want one wrapping %v", err, errBoom)
				}
				if !strings.Contains(err.Error(), "offset 10000") {
					t.Errorf("error %q does not say where the read failed", err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("chunks before the error hold %d bytes, want the %d bytes read", len(got), len(data))
				}
				// The chunks are those of the data alone.
				want := refChunkLens(NewTable(p.Seed), p, data)
				if lens := chunkLens(t, New(bytes.NewReader(data), p)); !slices.Equal(lens, want) {
					t.Fatalf("chunk lengths %v, want %v", lens, want)
				}
				if _, err2 := c.Next(nil); !errors.Is(err2, errBoom) {
					t.Fatalf("Next after the error = %v, want the error again", err2)
				}
				c.Reset(bytes.NewReader(data))
				if lens := chunkLens(t, c); !slices.Equal(lens, want) {
					t.Fatalf("after Reset: chunk lengths %v, want %v", lens, want)
				}
			})
		}
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

type badCountReader struct{}

func (badCountReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

func TestBrokenReaders(t *testing.T) {
	for _, tt := range []struct {
		name string
		rd   io.Reader
		want string
	}{
		{"no progress", zeroReader{}, io.ErrNoProgress.Error()},
		{"bad count", badCountReader{}, "invalid count"},
	} {
		_, err := New(tt.rd, smallParams(testSeed())).Next(nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Next = %v, want error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestInvalidConfiguration(t *testing.T) {
	p := smallParams(testSeed())
	bad := p
	bad.Avg = 100
	other := testSeed()
	other[0]++
	for _, tt := range []struct {
		name string
		c    *Chunker
		want string
	}{
		{"invalid params", New(bytes.NewReader([]byte("x")), bad), "power of two"},
		{"invalid params with table", NewWithTable(bytes.NewReader([]byte("x")), bad, NewTable(p.Seed)), "power of two"},
		{"nil table", NewWithTable(bytes.NewReader([]byte("x")), p, nil), "nil table"},
		{"wrong table", NewWithTable(bytes.NewReader([]byte("x")), p, NewTable(other)), "different seed"},
	} {
		for range 2 {
			if _, err := tt.c.Next(nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: Next = %v, want error containing %q", tt.name, err, tt.want)
			}
			tt.c.Reset(bytes.NewReader([]byte("y"))) // stays invalid
		}
	}
}

func TestResetReuse(t *testing.T) {
	p := smallParams(testSeed())
	c := New(nil, p)
	for i, data := range [][]byte{randomBytes("a", 50000), nil, pgbenchDump(30000), randomBytes("b", 10)} {
		want := refChunkLens(NewTable(p.Seed), p, data)
		rd := bytes.NewReader(data)
		// Leave the previous stream half read: Reset must drop it.
		_, _ = c.Next(nil)
		c.Reset(rd)
		if got := chunkLens(t, c); !slices.Equal(got, want) {
			t.Fatalf("stream %d after Reset: %v, want %v", i, head(got), head(want))
		}
	}
}

// TestNextReusesBuffer checks that Next appends to buf[:0] and allocates
// nothing in the steady state.
func TestNextReusesBuffer(t *testing.T) {
	p := DefaultParams(testSeed())
	data := randomBytes("reuse", 24<<20)
	rd := bytes.NewReader(data)
	c := New(rd, p)
	buf := make([]byte, 3, p.Max)
	got, err := c.Next(buf)
	if err != nil || &got[0] != &buf[:1][0] {
		t.Fatalf("Next did not return the chunk in buf's memory (err %v)", err)
	}
	if !bytes.Equal(got, data[:len(got)]) {
		t.Fatal("first chunk is not the start of the input")
	}
	allocs := testing.AllocsPerRun(3, func() {
		rd.Reset(data)
		c.Reset(rd)
		for {
			if buf, err = c.Next(buf); err != nil {
				break
			}
		}
	})
	if allocs != 0 {
		t.Errorf("chunking a stream with a reused Chunker allocates %.0f times", allocs)
	}
}

// Shrink between streams drops a grown buffer without changing the chunks
// of the next stream.
func TestShrinkBetweenStreams(t *testing.T) {
	p := smallParams(testSeed())
	big := randomBytes("shrink-big", 20*p.Max)
	next := randomBytes("shrink-next", 5*p.Max+123)
	want := refChunkLens(NewTable(p.Seed), p, next)
	c := New(bytes.NewReader(big), p)
	chunkLens(t, c)
	if cap(c.buf) < 2*p.Max {
		t.Fatalf("buffer did not grow: %d", cap(c.buf))
	}
	c.Shrink(p.Max)
	if c.buf != nil {
		t.Fatal("Shrink kept the buffer")
	}
	c.Reset(bytes.NewReader(next))
	if lens := chunkLens(t, c); !slices.Equal(lens, want) {
		t.Fatalf("after Shrink: chunk lengths %v, want %v", lens, want)
	}
	c.Shrink(1 << 30) // below the limit: kept
	if c.buf == nil {
		t.Fatal("Shrink dropped a buffer under the limit")
	}
}
