package chunker

import (
	"testing"

	"github.com/zeebo/blake3"
)

// TestInsertResync checks the property deduplication depends on: after a
// small insertion, the chunker finds its old boundaries again, so only the
// chunks around the edit are new. It uses 64 MiB inputs that defeat naive
// chunkers (long runs of zeros, a space-padded table dump) besides random
// data, and inserts 100 bytes near the start and in the middle.
//
// Every edit may create at most two new chunks (the one holding the
// insertion and, when the insertion splits a long zero run, the one holding
// the end of that run, whose run cuts moved). An insertion near the start
// must add less than three average chunks (3*Avg) of new bytes. One in the
// middle, less than three chunks of that input's mean size: inputs whose
// windows are mostly uniform have fewer cut points, so bigger chunks.
func TestInsertResync(t *testing.T) {
	size := smallerUnder(64<<20, 16<<20)
	p := DefaultParams(testSeed())
	ins := randomBytes("inserted bytes", 100)
	tests := []struct {
		name string
		data []byte
	}{
		{"random", randomBytes("resync random", size)},
		// pgbench_accounts: "aid\tbid\t0\t" + 84 spaces + "\n".
		{"pgbench-dump", pgbenchDump(size)},
		// Random blocks of 64 KiB-1 MiB between zero runs of 1-8 MiB.
		{"zero-runs-dense", zeroRuns("resync dense", size, 64<<10, 1<<20, 1<<20, 8<<20)},
		// Random blocks of 1-16 KiB between zero runs of 512 KiB-4 MiB:
		// too little entropy for hash cut points in most Max windows.
		{"zero-runs-sparse", zeroRuns("resync sparse", size, 1<<10, 16<<10, 512<<10, 4<<20)},
		// Random blocks of 1-2000 bytes between zero runs of 100-5000
		// bytes.
		{"zero-runs-short", zeroRuns("resync short", size, 1, 2000, 100, 5000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig, count := chunkSet(t, p, tt.data)
			mean := len(tt.data) / count
			for _, at := range []struct{ off, limit int }{
				{12345, 3 * p.Avg},
				{size / 2, 3 * max(p.Avg, mean)},
			} {
				edited := insertAt(tt.data, at.off, ins)
				newBytes, newChunks, total := 0, 0, 0
				seen := make(map[[32]byte]bool)
				for _, c := range chunkData(t, p, edited) {
					total++
					id := blake3.Sum256(c)
					if !orig[id] && !seen[id] {
						newBytes += len(c)
						newChunks++
					}
					seen[id] = true
				}
				t.Logf("%d bytes inserted at %d: %d of %d chunks new, %d bytes (%.2f MiB; limit %.2f MiB)",
					len(ins), at.off, newChunks, total, newBytes, float64(newBytes)/(1<<20), float64(at.limit)/(1<<20))
				if newChunks > 2 || newBytes >= at.limit {
					t.Errorf("insert at %d: %d new chunks, %d bytes; want at most 2 and < %d bytes",
						at.off, newChunks, newBytes, at.limit)
				}
			}
		})
	}
}

// chunkSet returns the IDs of the chunks of data and their number.
func chunkSet(t *testing.T, p Params, data []byte) (map[[32]byte]bool, int) {
	t.Helper()
	set := make(map[[32]byte]bool)
	chunks := chunkData(t, p, data)
	for _, c := range chunks {
		set[blake3.Sum256(c)] = true
	}
	return set, len(chunks)
}
