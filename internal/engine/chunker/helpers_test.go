package chunker

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"
)

// testSeed is the gear seed used by most tests.
func testSeed() [32]byte {
	var s [32]byte
	copy(s[:], "bunker chunker test seed 0000001")
	return s
}

// smallerUnder returns full, or small in -short mode and under the race
// detector.
func smallerUnder(full, small int) int {
	if testing.Short() || raceEnabled {
		return small
	}
	return full
}

// smallParams are the tiny sizes of the fuzz target and the reference
// comparisons: many chunks from little data.
func smallParams(seed [32]byte) Params {
	return Params{Min: 64, Avg: 256, Max: 1024, Seed: seed}
}

// newRand returns a deterministic ChaCha8 generator keyed by name.
func newRand(name string) *rand.ChaCha8 {
	var s [32]byte
	copy(s[:], name)
	return rand.NewChaCha8(s)
}

// randomBytes returns n pseudo-random bytes from the ChaCha8 stream keyed
// by name.
func randomBytes(name string, n int) []byte {
	b := make([]byte, n)
	_, _ = newRand(name).Read(b)
	return b
}

// pgbenchDump mimics the COPY data of pgbench_accounts: aid, bid,
// abalance and an 84-space filler per line, until n bytes.
func pgbenchDump(n int) []byte {
	b := make([]byte, 0, n+128)
	filler := bytes.Repeat([]byte{' '}, 84)
	for aid := 1; len(b) < n; aid++ {
		b = strconv.AppendInt(b, int64(aid), 10)
		b = append(b, '\t')
		b = strconv.AppendInt(b, int64((aid-1)/100000+1), 10)
		b = append(b, "\t0\t"...)
		b = append(b, filler...)
		b = append(b, '\n')
	}
	return b[:n]
}

// zeroRuns interleaves random segments of [randMin, randMax) bytes with
// zero runs of [zeroMin, zeroMax) bytes, until n bytes.
func zeroRuns(name string, n, randMin, randMax, zeroMin, zeroMax int) []byte {
	r := rand.New(newRand(name))
	b := make([]byte, 0, n+randMax+zeroMax)
	for len(b) < n {
		seg := make([]byte, randMin+r.IntN(randMax-randMin))
		for i := range seg {
			seg[i] = byte(r.Uint32())
		}
		b = append(b, seg...)
		b = append(b, make([]byte, zeroMin+r.IntN(zeroMax-zeroMin))...)
	}
	return b[:n]
}

// insertAt returns a copy of b with ins inserted at off.
func insertAt(b []byte, off int, ins []byte) []byte {
	out := make([]byte, 0, len(b)+len(ins))
	out = append(out, b[:off]...)
	out = append(out, ins...)
	return append(out, b[off:]...)
}

// chunkLens chunks everything rd delivers and returns the chunk lengths.
func chunkLens(t testing.TB, c *Chunker) []int {
	t.Helper()
	var lens []int
	var buf []byte
	for {
		var err error
		buf, err = c.Next(buf)
		if errors.Is(err, io.EOF) {
			return lens
		}
		if err != nil {
			t.Fatalf("Next after %d chunks: %v", len(lens), err)
		}
		lens = append(lens, len(buf))
	}
}

// chunkData splits data with p and returns the chunks (sub-slices of data).
func chunkData(t testing.TB, p Params, data []byte) [][]byte {
	t.Helper()
	var chunks [][]byte
	off := 0
	for _, n := range chunkLens(t, New(bytes.NewReader(data), p)) {
		chunks = append(chunks, data[off:off+n])
		off += n
	}
	if off != len(data) {
		t.Fatalf("chunks cover %d bytes, input has %d", off, len(data))
	}
	return chunks
}
