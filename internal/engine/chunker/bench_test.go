package chunker

import (
	"bytes"
	"io"
	"testing"
)

// benchChunker chunks data with p once per iteration, reusing the Chunker
// and the chunk buffer as a backup would.
func benchChunker(b *testing.B, p Params, data []byte) {
	rd := bytes.NewReader(data)
	c := New(rd, p)
	var chunk []byte
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	chunks := 0
	for b.Loop() {
		rd.Reset(data)
		c.Reset(rd)
		for {
			var err error
			chunk, err = c.Next(chunk)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			chunks++
		}
	}
	b.ReportMetric(float64(len(data))*float64(b.N)/float64(chunks), "B/chunk")
}

// BenchmarkChunker measures Next end to end (reading from a bytes.Reader,
// boundary search, copying each chunk out) for the default sizes on
// several kinds of input, and for small sizes where the Min skip saves
// little and nearly every byte goes through the hash loop.
func BenchmarkChunker(b *testing.B) {
	const size = 64 << 20
	seed := testSeed()
	small := Params{Min: 2 << 10, Avg: 8 << 10, Max: 64 << 10, Seed: seed}
	for _, bc := range []struct {
		name string
		p    Params
		data func() []byte
	}{
		{"default/random", DefaultParams(seed), func() []byte { return randomBytes("bench", size) }},
		{"default/pgbench", DefaultParams(seed), func() []byte { return pgbenchDump(size) }},
		{"default/zero-runs", DefaultParams(seed), func() []byte { return zeroRuns("bench", size, 1<<10, 16<<10, 512<<10, 4<<20) }},
		{"default/zeros", DefaultParams(seed), func() []byte { return make([]byte, size) }},
		{"8KiB/random", small, func() []byte { return randomBytes("bench", size) }},
	} {
		b.Run(bc.name, func(b *testing.B) { benchChunker(b, bc.p, bc.data()) })
	}
}

// BenchmarkScan measures the bare boundary search, the gear-hash loop, on
// 8 MiB of random data: no reader, no copies, no Min skip, and a mask that
// never matches so that every byte is hashed and tested.
func BenchmarkScan(b *testing.B) {
	data := randomBytes("bench", 8<<20)
	tab := NewTable(testSeed())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, ok := scan(&tab.gear, data, 0, len(data), 0, ^uint64(0), DefaultAvg); ok {
			b.Fatal("the all-ones mask matched")
		}
	}
}

// BenchmarkNewTable measures deriving a gear table from a seed.
func BenchmarkNewTable(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewTable(testSeed())
	}
}
