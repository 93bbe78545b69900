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
// The new bytes must stay under three average chunks, except for an
// insertion into the middle of a long zero run (the middle insert of the
// zero-runs-dense/sparse inputs): that splits the run in two, which moves
// the grid of its run cuts, so the chunk that holds the end of the run
// changes as well as the one that holds the insertion. Four average chunks
// there.
func TestInsertResync(t *testing.T) {
	size := 64 << 20
	if testing.Short() {
		size = 16 << 20
	}
	p := DefaultParams(testSeed())
	tab := NewTable(p.Seed)
	ins := randomBytes("inserted bytes", 100)
	tests := []struct {
		name     string
		data     []byte
		midLimit int // limit for the insertion in the middle
	}{
		{"random", randomBytes("resync random", size), 3 * p.Avg},
		// pgbench_accounts: "aid\tbid\t0\t" + 84 spaces + "\n".
		{"pgbench-dump", pgbenchDump(size), 3 * p.Avg},
		// Random blocks of 64 KiB-1 MiB between zero runs of 1-8 MiB.
		{"zero-runs-dense", zeroRuns("resync dense", size, 64<<10, 1<<20, 1<<20, 8<<20), 4 * p.Avg},
		// Random blocks of 1-16 KiB between zero runs of 512 KiB-4 MiB:
		// too little entropy for hash cut points in most Max windows.
		{"zero-runs-sparse", zeroRuns("resync sparse", size, 1<<10, 16<<10, 512<<10, 4<<20), 4 * p.Avg},
		// Random bytes between zero runs of 100-5000 bytes.
		{"zero-runs-short", zeroRuns("resync short", size, 1, 2000, 100, 5000), 3 * p.Avg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := chunkSet(t, tab, p, tt.data)
			for _, at := range []struct{ off, limit int }{{12345, 3 * p.Avg}, {size / 2, tt.midLimit}} {
				off := at.off
				edited := insertAt(tt.data, off, ins)
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
				t.Logf("%d bytes inserted at %d: %d of %d chunks new, %d bytes (%.2f MiB)",
					len(ins), off, newChunks, total, newBytes, float64(newBytes)/(1<<20))
				if newBytes >= at.limit {
					t.Errorf("insert at %d: %d bytes of new chunks, want < %d", off, newBytes, at.limit)
				}
			}
		})
	}
}

func chunkSet(t *testing.T, tab *Table, p Params, data []byte) map[[32]byte]bool {
	t.Helper()
	set := make(map[[32]byte]bool)
	for _, c := range chunkData(t, p, data) {
		set[blake3.Sum256(c)] = true
	}
	return set
}
