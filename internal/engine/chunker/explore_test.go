package chunker

import (
	"crypto/sha256"
	"testing"
)

func TestExplore(t *testing.T) {
	p := DefaultParams(testSeed())
	const size = 64 << 20
	sets := map[string][]byte{
		"random":  randomBytes("random", size),
		"pgbench": pgbenchDump(size),
		"zdense":  zeroRuns("zdense", size, 64<<10, 1<<20, 1<<20, 8<<20),
		"zsparse": zeroRuns("zsparse", size, 1<<10, 16<<10, 512<<10, 4<<20),
	}
	ins := randomBytes("insert", 100)
	for name, d := range sets {
		a := chunkData(t, p, d)
		b := chunkData(t, p, insertAt(d, 12345, ins))
		seen := map[[32]byte]bool{}
		for _, c := range a {
			seen[sha256.Sum256(c)] = true
		}
		nb, nc := 0, 0
		for _, c := range b {
			if !seen[sha256.Sum256(c)] {
				nb += len(c)
				nc++
			}
		}
		t.Logf("%s: %d chunks, mean %d, new %d chunks %d bytes", name, len(a), size/len(a), nc, nb)
	}
}
